//! The PATCH engine (RFC 7644 §3.5.2), with the leniencies Okta and Entra
//! need: case-insensitive op and attribute names, no-path replacements whose
//! object holds dotted or URN-qualified names, booleans sent as strings, and
//! a `remove` of `members` with a value list that removes only those members.
//!
//! It works on a copy of the stored attributes; the caller stores the result
//! only when every operation applied.

use serde_json::{Map, Value};

use crate::ResourceKind;
use crate::error::{ScimError, ScimType};
use crate::filter::{self, AttrPath, CompareOp, Filter, PatchPath};
use crate::resource::{canonical_element, canonical_value};
use crate::schema::{Attr, Mutability, key_of};

/// The most operations one PATCH request may carry.
pub const MAX_OPERATIONS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Remove,
    Replace,
}

/// Applies the operations of a PatchOp request body to `resource`, a stored
/// resource of `kind` with its `id`.
pub fn apply(
    kind: ResourceKind,
    resource: &mut Map<String, Value>,
    body: &Value,
) -> Result<(), ScimError> {
    let ops = operations(body)?;
    for (index, op) in ops.iter().enumerate() {
        apply_one(kind, resource, op).map_err(|e| annotate(e, index))?;
    }
    Ok(())
}

fn annotate(error: ScimError, index: usize) -> ScimError {
    match error {
        ScimError::BadRequest { scim_type, detail } => ScimError::BadRequest {
            scim_type,
            detail: format!("operation {index}: {detail}"),
        },
        other => other,
    }
}

fn operations(body: &Value) -> Result<&Vec<Value>, ScimError> {
    let map = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("a PATCH body must be a JSON object"))?;
    let ops = key_of(map, "Operations")
        .and_then(|k| map.get(k))
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::invalid_syntax("a PATCH body needs an \"Operations\" array"))?;
    if ops.is_empty() || ops.len() > MAX_OPERATIONS {
        return Err(ScimError::invalid_syntax(format!(
            "a PATCH body needs between 1 and {MAX_OPERATIONS} operations"
        )));
    }
    Ok(ops)
}

fn apply_one(
    kind: ResourceKind,
    resource: &mut Map<String, Value>,
    raw: &Value,
) -> Result<(), ScimError> {
    let map = raw
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("an operation must be an object"))?;
    let get = |name: &str| key_of(map, name).and_then(|k| map.get(k));
    let op = match get("op")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("add") => Op::Add,
        Some("remove") => Op::Remove,
        Some("replace") => Op::Replace,
        _ => {
            return Err(ScimError::invalid_syntax(
                "\"op\" must be \"add\", \"remove\" or \"replace\"",
            ));
        }
    };
    let value = get("value");
    if let Some(urn) = get("path")
        .and_then(Value::as_str)
        .and_then(|p| kind.extension(p.trim()))
    {
        return apply_extension(kind, resource, op, urn, value);
    }
    let path = match get("path") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) if p.trim().is_empty() => None,
        Some(Value::String(p)) => Some(
            filter::parse_patch_path(p.trim())
                .map_err(|e| ScimError::bad(ScimType::InvalidPath, format!("path: {e}")))?,
        ),
        Some(_) => {
            return Err(ScimError::bad(
                ScimType::InvalidPath,
                "\"path\" must be a string",
            ));
        }
    };
    match (path, op, value) {
        (None, Op::Remove, _) => Err(ScimError::bad(ScimType::NoTarget, "remove needs a path")),
        (None, _, Some(Value::Object(fields))) => {
            for (key, value) in fields {
                apply_member(kind, resource, op, key, value)?;
            }
            Ok(())
        }
        (None, _, _) => Err(ScimError::invalid_value(
            "an operation without a path needs an object value",
        )),
        (Some(_), Op::Add | Op::Replace, None) => {
            Err(ScimError::invalid_value("add and replace need a value"))
        }
        (Some(path), op, value) => apply_path(kind, resource, op, &path, value),
    }
}

/// An operation whose path is a whole extension schema: its value holds
/// that extension's attributes.
fn apply_extension(
    kind: ResourceKind,
    resource: &mut Map<String, Value>,
    op: Op,
    urn: &'static str,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    match (op, value) {
        (Op::Remove, _) => {
            resource.remove(urn);
            Ok(())
        }
        (_, Some(value)) => {
            if op == Op::Replace {
                resource.remove(urn);
            }
            apply_member(kind, resource, op, urn, value)
        }
        (_, None) => Err(ScimError::invalid_value("add and replace need a value")),
    }
}

/// One key of a no-path value object: an attribute, a dotted or
/// URN-qualified path, or an extension URN holding attributes.
fn apply_member(
    kind: ResourceKind,
    resource: &mut Map<String, Value>,
    op: Op,
    key: &str,
    value: &Value,
) -> Result<(), ScimError> {
    if key.eq_ignore_ascii_case("schemas") {
        return Ok(());
    }
    if let Some(urn) = kind.extension(key) {
        let Value::Object(inner) = value else {
            return Err(ScimError::invalid_value(format!(
                "{urn:?} needs an object value"
            )));
        };
        for (name, value) in inner {
            if name.eq_ignore_ascii_case("schemas") {
                continue;
            }
            let mut path = parse_key(name)?;
            path.attr.schema = Some(urn.to_owned());
            apply_path(kind, resource, op, &path, Some(value))?;
        }
        return Ok(());
    }
    apply_path(kind, resource, op, &parse_key(key)?, Some(value))
}

fn parse_key(key: &str) -> Result<PatchPath, ScimError> {
    filter::parse_patch_path(key)
        .map_err(|e| ScimError::bad(ScimType::InvalidPath, format!("attribute {key:?}: {e}")))
}

/// The place a path points at: the map holding the attribute, its canonical
/// key, and its definition when it has one.
struct Slot<'a> {
    container: &'a mut Map<String, Value>,
    key: String,
    attr: Option<&'static Attr>,
}

fn slot<'a>(
    kind: ResourceKind,
    resource: &'a mut Map<String, Value>,
    path: &AttrPath,
    create: bool,
) -> Result<Option<Slot<'a>>, ScimError> {
    let schema = path
        .schema
        .as_deref()
        .filter(|s| !s.eq_ignore_ascii_case(kind.schema()));
    let container = match schema {
        None => resource,
        Some(urn) => {
            let urn = kind.extension(urn).ok_or_else(|| {
                ScimError::bad(ScimType::InvalidPath, format!("unknown schema {urn:?}"))
            })?;
            if !resource.contains_key(urn) {
                if !create {
                    return Ok(None);
                }
                resource.insert(urn.to_owned(), Value::Object(Map::new()));
            }
            match resource.get_mut(urn) {
                Some(Value::Object(inner)) => inner,
                _ => {
                    return Err(ScimError::invalid_value(format!(
                        "{urn:?} is not an object"
                    )));
                }
            }
        }
    };
    let attr = kind.attr(schema, &path.name);
    let key = match attr {
        Some(attr) => attr.name.to_owned(),
        None => key_of(container, &path.name)
            .cloned()
            .unwrap_or_else(|| path.name.clone()),
    };
    Ok(Some(Slot {
        container,
        key,
        attr,
    }))
}

/// Decides what a write to a read-only attribute means: an `id` equal to the
/// resource's own (as Okta sends when renaming a group) and `meta` are
/// ignored, anything else is refused.
fn writable(
    resource: &Map<String, Value>,
    attr: Option<&'static Attr>,
    value: Option<&Value>,
) -> Result<bool, ScimError> {
    let Some(attr) = attr else {
        return Ok(true);
    };
    match (attr.name, attr.mutability) {
        ("id", _) => {
            if value.is_some_and(|v| Some(v) == resource.get("id")) {
                Ok(false)
            } else {
                Err(ScimError::bad(ScimType::Mutability, "\"id\" is read-only"))
            }
        }
        ("meta", _) => Ok(false),
        (name, Mutability::ReadOnly) => Err(ScimError::bad(
            ScimType::Mutability,
            format!("{name:?} is read-only"),
        )),
        _ => Ok(true),
    }
}

fn apply_path(
    kind: ResourceKind,
    resource: &mut Map<String, Value>,
    op: Op,
    path: &PatchPath,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let top = if path.attr.schema.is_none() {
        kind.attr(None, &path.attr.name)
    } else {
        None
    };
    if !writable(resource, top, value)? {
        return Ok(());
    }
    let create = op != Op::Remove;
    let Some(slot) = slot(kind, resource, &path.attr, create)? else {
        return Ok(());
    };
    if slot
        .attr
        .is_some_and(|a| a.mutability == Mutability::ReadOnly)
    {
        return Err(ScimError::bad(
            ScimType::Mutability,
            format!("{:?} is read-only", slot.key),
        ));
    }
    if let Some(filter) = &path.filter {
        let sub = path.sub.as_deref();
        return apply_filtered(slot, op, filter, sub, value);
    }
    match &path.attr.sub {
        Some(sub) => apply_sub(slot, op, sub, value),
        None => apply_attr(slot, op, value),
    }
}

fn apply_attr(slot: Slot<'_>, op: Op, value: Option<&Value>) -> Result<(), ScimError> {
    let Slot {
        container,
        key,
        attr,
    } = slot;
    let multi =
        attr.is_some_and(|a| a.multi) || matches!(container.get(&key), Some(Value::Array(_)));
    match (op, value) {
        (Op::Remove, Some(Value::Array(listed))) if multi => {
            remove_listed(container, &key, listed);
            Ok(())
        }
        (Op::Remove, _) => {
            if attr.is_some_and(|a| a.required) {
                return Err(ScimError::bad(
                    ScimType::Mutability,
                    format!("{key:?} is required and cannot be removed"),
                ));
            }
            container.remove(&key);
            Ok(())
        }
        (_, None) => Err(ScimError::invalid_value("add and replace need a value")),
        (_, Some(Value::Null)) => {
            container.remove(&key);
            Ok(())
        }
        (Op::Add, Some(value)) if multi => {
            let new = canonical_items(attr, value)?;
            let items = array_at(container, &key)?;
            for item in new {
                if !items.iter().any(|old| same_item(old, &item)) {
                    items.push(item);
                }
            }
            Ok(())
        }
        (_, Some(value)) => {
            let value = canonical_value(attr, value.clone())?;
            match (container.get_mut(&key), value) {
                (Some(Value::Object(old)), Value::Object(new)) if !multi => {
                    old.extend(new);
                }
                (_, value) => {
                    container.insert(key, value);
                }
            }
            Ok(())
        }
    }
}

fn canonical_items(attr: Option<&'static Attr>, value: &Value) -> Result<Vec<Value>, ScimError> {
    let items = match value {
        Value::Array(items) => items.clone(),
        one => vec![one.clone()],
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match attr {
            Some(attr) => match canonical_value(Some(attr), item)? {
                Value::Array(mut one) => out.append(&mut one),
                other => out.push(other),
            },
            None => out.push(item),
        }
    }
    Ok(out)
}

/// The array stored at `key`, made one (wrapping a lone value) if needed.
fn array_at<'a>(
    container: &'a mut Map<String, Value>,
    key: &str,
) -> Result<&'a mut Vec<Value>, ScimError> {
    let entry = container
        .entry(key.to_owned())
        .or_insert_with(|| Value::Array(Vec::new()));
    if !entry.is_array() {
        let old = entry.take();
        *entry = Value::Array(vec![old]);
    }
    entry
        .as_array_mut()
        .ok_or_else(|| ScimError::invalid_value(format!("{key:?} is not multi-valued")))
}

/// Two values of a multi-valued attribute are the same member when their
/// `value` sub-attributes are equal, or when they are equal outright.
fn same_item(a: &Value, b: &Value) -> bool {
    match (item_value(a), item_value(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn item_value(v: &Value) -> Option<&Value> {
    let map = v.as_object()?;
    map.get(key_of(map, "value")?)
}

/// Entra's `remove` of `members` with a value list: only the listed values go.
fn remove_listed(container: &mut Map<String, Value>, key: &str, listed: &[Value]) {
    if let Some(Value::Array(items)) = container.get_mut(key) {
        items.retain(|item| !listed.iter().any(|l| same_item(item, l)));
        if items.is_empty() {
            container.remove(key);
        }
    }
}

fn apply_sub(slot: Slot<'_>, op: Op, sub: &str, value: Option<&Value>) -> Result<(), ScimError> {
    let Slot {
        container,
        key,
        attr,
    } = slot;
    let sub_attr = attr.and_then(|a| a.sub_attr(sub));
    if sub_attr.is_some_and(|a| a.mutability == Mutability::ReadOnly) {
        return Err(ScimError::bad(
            ScimType::Mutability,
            format!("\"{key}.{sub}\" is read-only"),
        ));
    }
    let sub_key = sub_attr.map_or_else(|| sub.to_owned(), |a| a.name.to_owned());
    if op == Op::Remove {
        match container.get_mut(&key) {
            Some(Value::Object(inner)) => {
                inner.remove(&sub_key);
                if inner.is_empty() {
                    container.remove(&key);
                }
            }
            Some(Value::Array(items)) => items.iter_mut().for_each(|item| {
                if let Value::Object(inner) = item {
                    inner.remove(&sub_key);
                }
            }),
            _ => {}
        }
        return Ok(());
    }
    let new = canonical_value(sub_attr, value.cloned().unwrap_or(Value::Null))?;
    match container
        .entry(key.clone())
        .or_insert_with(|| Value::Object(Map::new()))
    {
        Value::Object(inner) => {
            inner.insert(sub_key, new);
        }
        Value::Array(items) => {
            for item in items.iter_mut() {
                if let Value::Object(inner) = item {
                    inner.insert(sub_key.clone(), new.clone());
                }
            }
        }
        _ => {
            return Err(ScimError::bad(
                ScimType::InvalidPath,
                format!("{key:?} has no sub-attributes"),
            ));
        }
    }
    Ok(())
}

fn apply_filtered(
    slot: Slot<'_>,
    op: Op,
    filter: &Filter,
    sub: Option<&str>,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let Slot {
        container,
        key,
        attr,
    } = slot;
    let sub_attr = sub.and_then(|s| attr.and_then(|a| a.sub_attr(s)));
    let sub_key = sub.map(|s| sub_attr.map_or_else(|| s.to_owned(), |a| a.name.to_owned()));
    let new = match (op, value) {
        (Op::Remove, _) => None,
        (_, Some(v)) if sub.is_some() => Some(canonical_value(sub_attr, v.clone())?),
        (_, Some(v)) => Some(match attr {
            Some(attr) => canonical_element(attr, v.clone())?,
            None => v.clone(),
        }),
        (_, None) => return Err(ScimError::invalid_value("add and replace need a value")),
    };
    let items = match container.get_mut(&key) {
        Some(Value::Array(items)) => items,
        _ if op == Op::Remove => return Ok(()),
        _ => {
            container.insert(key.clone(), Value::Array(Vec::new()));
            array_at(container, &key)?
        }
    };
    let mut matched = false;
    let mut index = 0;
    while index < items.len() {
        let Some(item) = items.get_mut(index) else {
            break;
        };
        if !filter::value_matches(filter, attr, item) {
            index += 1;
            continue;
        }
        matched = true;
        match (&sub_key, &new) {
            (None, None) => {
                items.remove(index);
                continue;
            }
            (Some(s), None) => {
                if let Value::Object(inner) = item {
                    inner.remove(s);
                }
            }
            (Some(s), Some(v)) => {
                if let Value::Object(inner) = item {
                    inner.insert(s.clone(), v.clone());
                }
            }
            (None, Some(v)) => merge_into(item, v),
        }
        index += 1;
    }
    if !matched && let Some(v) = new {
        let created = seed_from(filter, sub_key.as_deref(), v).ok_or_else(|| {
            ScimError::bad(
                ScimType::NoTarget,
                format!("no value of {key:?} matches the filter"),
            )
        })?;
        items.push(created);
    }
    if items.is_empty() {
        container.remove(&key);
    }
    Ok(())
}

fn merge_into(item: &mut Value, new: &Value) {
    match (item, new) {
        (Value::Object(old), Value::Object(new)) => {
            old.extend(new.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        (item, new) => *item = new.clone(),
    }
}

/// A new value for a filter that matched nothing, built from the filter's
/// `eq` terms: `emails[type eq "work"].value` on a user without a work
/// email creates one, which is what Entra expects. Other filters give none.
fn seed_from(filter: &Filter, sub: Option<&str>, value: Value) -> Option<Value> {
    let mut seed = Map::new();
    let terms: Vec<&Filter> = match filter {
        Filter::And(terms) => terms.iter().collect(),
        one => vec![one],
    };
    for term in terms {
        match term {
            Filter::Compare(path, CompareOp::Eq, literal)
                if path.schema.is_none() && path.sub.is_none() =>
            {
                seed.insert(path.name.clone(), literal.clone());
            }
            _ => return None,
        }
    }
    match (sub, value) {
        (Some(sub), value) => {
            seed.insert(sub.to_owned(), value);
        }
        (None, Value::Object(fields)) => seed.extend(fields),
        (None, _) => return None,
    }
    Some(Value::Object(seed))
}

#[cfg(test)]
mod tests;
