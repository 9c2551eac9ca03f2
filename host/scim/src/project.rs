//! `attributes` and `excludedAttributes` (RFC 7644 §3.4.2.5): trimming a
//! served resource to what the client asked for.

use serde_json::{Map, Value};

use crate::ResourceKind;
use crate::error::{ScimError, ScimType};
use crate::filter::{AttrPath, parse_attr_path};
use crate::schema::{Returned, key_of};

/// What to return of each resource.
#[derive(Debug, Clone, Default)]
pub struct Projection {
    attributes: Vec<AttrPath>,
    excluded: Vec<AttrPath>,
}

fn parse_list(list: &[String]) -> Result<Vec<AttrPath>, ScimError> {
    list.iter()
        .flat_map(|item| item.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            parse_attr_path(s, 0)
                .map_err(|e| ScimError::bad(ScimType::InvalidValue, format!("attribute list: {e}")))
        })
        .collect()
}

impl Projection {
    /// Parses comma-separated attribute lists, as sent in a query string or
    /// joined from a search request's arrays.
    pub fn parse(attributes: &[String], excluded: &[String]) -> Result<Self, ScimError> {
        Ok(Self {
            attributes: parse_list(attributes)?,
            excluded: parse_list(excluded)?,
        })
    }

    /// Trims `resource` in place.
    pub fn apply(&self, kind: ResourceKind, resource: &mut Value) {
        let Value::Object(map) = resource else {
            return;
        };
        if !self.attributes.is_empty() {
            let mut kept = Map::new();
            for (key, value) in map.iter() {
                if let Some(trimmed) = self.keep(kind, key, value) {
                    kept.insert(key.clone(), trimmed);
                }
            }
            *map = kept;
        }
        for path in &self.excluded {
            exclude(kind, map, path);
        }
    }

    /// The part of top-level attribute `key` the `attributes` list asks for.
    fn keep(&self, kind: ResourceKind, key: &str, value: &Value) -> Option<Value> {
        if key == "schemas"
            || kind
                .attr(None, key)
                .is_some_and(|a| a.returned == Returned::Always)
        {
            return Some(value.clone());
        }
        if let Some(urn) = kind.extension(key) {
            let inner = value.as_object()?;
            let mut kept = Map::new();
            for path in self.attributes.iter().filter(|p| in_schema(p, Some(urn))) {
                pick(inner, path, &mut kept);
            }
            let whole = self
                .attributes
                .iter()
                .any(|p| p.schema.is_none() && p.name.eq_ignore_ascii_case(urn));
            return match (whole, kept.is_empty()) {
                (true, _) => Some(value.clone()),
                (false, true) => None,
                (false, false) => Some(Value::Object(kept)),
            };
        }
        let mut kept = Map::new();
        let mut single = Map::new();
        single.insert(key.to_owned(), value.clone());
        for path in self
            .attributes
            .iter()
            .filter(|p| in_schema(p, None) || core(kind, p))
        {
            pick(&single, path, &mut kept);
        }
        kept.remove(key)
    }
}

fn core(kind: ResourceKind, path: &AttrPath) -> bool {
    path.schema
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case(kind.schema()))
}

fn in_schema(path: &AttrPath, urn: Option<&str>) -> bool {
    match (path.schema.as_deref(), urn) {
        (None, None) => true,
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => false,
    }
}

/// Copies the part of `source` that `path` names into `into`, merging with
/// what earlier paths copied.
fn pick(source: &Map<String, Value>, path: &AttrPath, into: &mut Map<String, Value>) {
    let Some(key) = key_of(source, &path.name) else {
        return;
    };
    let Some(value) = source.get(key) else {
        return;
    };
    let Some(sub) = &path.sub else {
        into.insert(key.clone(), value.clone());
        return;
    };
    let trim = |v: &Value| -> Value {
        let mut out = Map::new();
        if let Some(obj) = v.as_object()
            && let Some(k) = key_of(obj, sub)
            && let Some(inner) = obj.get(k)
        {
            out.insert(k.clone(), inner.clone());
        }
        Value::Object(out)
    };
    let trimmed = match value {
        Value::Array(items) => Value::Array(items.iter().map(trim).collect()),
        other => trim(other),
    };
    match (into.get_mut(key), trimmed) {
        (Some(Value::Object(old)), Value::Object(new)) => old.extend(new),
        (Some(Value::Array(old)), Value::Array(new)) => {
            for (o, n) in old.iter_mut().zip(new) {
                if let (Value::Object(o), Value::Object(n)) = (o, n) {
                    o.extend(n);
                }
            }
        }
        (_, trimmed) => {
            into.insert(key.clone(), trimmed);
        }
    }
}

fn exclude(kind: ResourceKind, map: &mut Map<String, Value>, path: &AttrPath) {
    let schema = path
        .schema
        .as_deref()
        .filter(|s| !s.eq_ignore_ascii_case(kind.schema()));
    if schema.is_none()
        && kind
            .attr(None, &path.name)
            .is_some_and(|a| a.returned == Returned::Always)
    {
        return;
    }
    let container = match schema.and_then(|s| kind.extension(s)) {
        Some(urn) => match map.get_mut(urn) {
            Some(Value::Object(inner)) => inner,
            _ => return,
        },
        None if schema.is_some() => return,
        None => map,
    };
    let Some(key) = key_of(container, &path.name).cloned() else {
        return;
    };
    match &path.sub {
        None => {
            container.remove(&key);
        }
        Some(sub) => match container.get_mut(&key) {
            Some(Value::Object(inner)) => {
                if let Some(k) = key_of(inner, sub).cloned() {
                    inner.remove(&k);
                }
            }
            Some(Value::Array(items)) => {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    if let Some(k) = key_of(item, sub).cloned() {
                        item.remove(&k);
                    }
                }
            }
            _ => {}
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "1",
            "userName": "a",
            "name": {"givenName": "A", "familyName": "B"},
            "emails": [{"value": "a@x", "type": "work"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "7", "department": "d"},
            "meta": {"resourceType": "User"},
        })
    }

    #[test]
    fn attributes_keep_id_and_named() {
        let p = Projection::parse(&["userName,name.givenName,EMAILS.value".into()], &[]).unwrap();
        let mut u = user();
        p.apply(ResourceKind::User, &mut u);
        assert_eq!(u["id"], "1");
        assert_eq!(u["userName"], "a");
        assert_eq!(u["name"], json!({"givenName": "A"}));
        assert_eq!(u["emails"], json!([{"value": "a@x"}]));
        assert!(u.get("meta").is_none());
    }

    #[test]
    fn attributes_with_extension_urn() {
        let p = Projection::parse(
            &["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber".into()],
            &[],
        )
        .unwrap();
        let mut u = user();
        p.apply(ResourceKind::User, &mut u);
        assert_eq!(
            u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            json!({"employeeNumber": "7"})
        );
        assert!(u.get("userName").is_none());
    }

    #[test]
    fn excluded_never_removes_id() {
        let p = Projection::parse(&[], &["id,Emails,name.familyName".into()]).unwrap();
        let mut u = user();
        p.apply(ResourceKind::User, &mut u);
        assert_eq!(u["id"], "1");
        assert!(u.get("emails").is_none());
        assert_eq!(u["name"], json!({"givenName": "A"}));
    }

    #[test]
    fn bad_attribute_name_is_rejected() {
        assert!(Projection::parse(&["a b".into()], &[]).is_err());
    }
}
