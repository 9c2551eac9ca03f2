//! Bringing incoming resources to the one shape org-mesh stores: canonical
//! attribute spelling, booleans as booleans, no read-only or write-only
//! attributes, and a `schemas` list that matches what is present.

use serde_json::{Map, Value};

use crate::ResourceKind;
use crate::error::ScimError;
use crate::schema::{Attr, Mutability, Ty};

/// Parses `"true"`/`"false"` in any case, which Entra sends for `active`.
pub fn coerce_bool(name: &str, value: &Value) -> Result<bool, ScimError> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(ScimError::invalid_value(format!(
            "attribute {name:?} must be a boolean"
        ))),
    }
}

/// The canonical form of one attribute value, checked against its
/// definition when there is one.
pub fn canonical_value(attr: Option<&'static Attr>, value: Value) -> Result<Value, ScimError> {
    let Some(attr) = attr else {
        return Ok(value);
    };
    if attr.multi {
        let items = match value {
            Value::Array(items) => items,
            one => vec![one],
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items.into_iter().filter(|v| !v.is_null()) {
            out.push(canonical_element(attr, item)?);
        }
        return Ok(Value::Array(out));
    }
    canonical_element(attr, value)
}

/// The canonical form of one value of `attr`; for a multi-valued attribute,
/// of one of its values.
pub fn canonical_element(attr: &'static Attr, value: Value) -> Result<Value, ScimError> {
    match (attr.ty, value) {
        (Ty::Boolean, value) => Ok(Value::Bool(coerce_bool(attr.name, &value)?)),
        (Ty::Complex, Value::Object(map)) => Ok(Value::Object(canonical_map(attr.sub, map)?)),
        // Entra sends the enterprise manager as the manager's id alone,
        // not as `{"value": id}`; a complex attribute with a `value` takes
        // a plain value as that.
        (Ty::Complex, value @ (Value::String(_) | Value::Number(_)))
            if attr.sub.iter().any(|s| s.name == "value") =>
        {
            let mut map = Map::new();
            map.insert("value".to_owned(), value);
            Ok(Value::Object(canonical_map(attr.sub, map)?))
        }
        (Ty::Complex, _) => Err(ScimError::invalid_value(format!(
            "attribute {:?} must be an object",
            attr.name
        ))),
        (_, Value::Object(_) | Value::Array(_)) => Err(ScimError::invalid_value(format!(
            "attribute {:?} must be a single value",
            attr.name
        ))),
        (_, value) => Ok(value),
    }
}

/// Renames the keys of `map` to the spelling of `attrs`, canonicalising the
/// values of known attributes and dropping nulls, which mean "unassigned".
pub fn canonical_map(
    attrs: &'static [Attr],
    map: Map<String, Value>,
) -> Result<Map<String, Value>, ScimError> {
    let mut out = Map::new();
    for (key, value) in map {
        if value.is_null() {
            continue;
        }
        match attrs.iter().find(|a| a.name.eq_ignore_ascii_case(&key)) {
            Some(attr) => {
                out.insert(attr.name.to_owned(), canonical_value(Some(attr), value)?);
            }
            None => {
                out.insert(key, value);
            }
        }
    }
    Ok(out)
}

/// Turns a request body into the attributes to store: canonical names and
/// types, read-only and write-only attributes removed (the service sets `id`
/// and `meta`; passwords are never kept, since org-mesh authenticates no
/// one), and `schemas` rebuilt from what is present.
pub fn incoming(kind: ResourceKind, body: Value) -> Result<Map<String, Value>, ScimError> {
    let Value::Object(body) = body else {
        return Err(ScimError::invalid_syntax(
            "the request body must be a JSON object",
        ));
    };
    let mut core = Map::new();
    let mut extensions = Map::new();
    for (key, value) in body {
        if let Some(urn) = kind.extension(&key) {
            let Value::Object(inner) = value else {
                return Err(ScimError::invalid_value(format!(
                    "extension {urn:?} must be an object"
                )));
            };
            let attrs = crate::schema::ENTERPRISE_ATTRS;
            extensions.insert(urn.to_owned(), Value::Object(canonical_map(attrs, inner)?));
        } else if !key.eq_ignore_ascii_case("schemas") {
            core.insert(key, value);
        }
    }
    // Common attributes (id, externalId, meta) are not in the core table.
    let core = canonical_map(kind.core_attrs(), core)?;
    let mut out = canonical_map(crate::schema::COMMON_ATTRS, core)?;
    strip_unwritable(kind, &mut out);
    for (urn, ext) in extensions {
        out.insert(urn, ext);
    }
    rebuild_schemas(kind, &mut out);
    Ok(out)
}

/// Drops write-only attributes such as `password` that a PATCH may have
/// set: org-mesh never keeps them.
pub fn forget_write_only(kind: ResourceKind, map: &mut Map<String, Value>) {
    map.retain(|key, _| {
        kind.attr(None, key)
            .is_none_or(|attr| attr.mutability != Mutability::WriteOnly)
    });
}

fn strip_unwritable(kind: ResourceKind, map: &mut Map<String, Value>) {
    map.retain(|key, _| {
        kind.attr(None, key).is_none_or(|attr| {
            !matches!(
                attr.mutability,
                Mutability::ReadOnly | Mutability::WriteOnly
            )
        })
    });
}

/// Sets `schemas` to the core schema plus each extension that has content,
/// dropping empty extension objects.
pub fn rebuild_schemas(kind: ResourceKind, map: &mut Map<String, Value>) {
    let mut schemas = vec![Value::String(kind.schema().to_owned())];
    for urn in kind.extensions() {
        let empty = map
            .get(*urn)
            .is_none_or(|v| v.as_object().is_none_or(Map::is_empty));
        if empty {
            map.remove(*urn);
        } else {
            schemas.push(Value::String((*urn).to_owned()));
        }
    }
    map.insert("schemas".into(), Value::Array(schemas));
}

/// Removes empty multi-valued attributes and empty complex values that a
/// PATCH may leave behind.
pub fn prune(map: &mut Map<String, Value>) {
    map.retain(|_, v| match v {
        Value::Array(items) => !items.is_empty(),
        Value::Object(inner) => !inner.is_empty(),
        Value::Null => false,
        _ => true,
    });
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn incoming_canonicalises_names_and_booleans() {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:x:custom"],
            "UserName": "a@example.com",
            "ACTIVE": "False",
            "id": "client-chosen",
            "password": "secret",
            "emails": [{"Value": "a@example.com", "Primary": "true"}],
            "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER": {"EmployeeNumber": "7"},
        });
        let out = incoming(ResourceKind::User, body).unwrap();
        assert_eq!(out["userName"], "a@example.com");
        assert_eq!(out["active"], false);
        assert!(!out.contains_key("id"));
        assert!(!out.contains_key("password"));
        assert_eq!(out["emails"][0]["primary"], true);
        assert_eq!(out[crate::schema::ENTERPRISE_SCHEMA]["employeeNumber"], "7");
        assert_eq!(out["schemas"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn bad_boolean_is_invalid_value() {
        let err = incoming(
            ResourceKind::User,
            json!({"userName": "a", "active": "yes"}),
        )
        .unwrap_err();
        assert!(err.to_body()["scimType"] == "invalidValue");
    }

    #[test]
    fn non_object_body_is_invalid_syntax() {
        let err = incoming(ResourceKind::Group, json!([1])).unwrap_err();
        assert!(err.to_body()["scimType"] == "invalidSyntax");
    }
}
