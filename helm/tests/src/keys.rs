//! The shapes of the files operators write: org-mesh.yaml (from the structs
//! in host/app/src/config.rs), the drift tuning file (host/policy's
//! `Tuning`) and the chart's values (values.schema.json). Each is a tree of
//! keys that a dotted path (`serve.sync_interval_secs`,
//! `connectors.github.webhook.secret`) either resolves in or not.

use std::collections::BTreeMap;
use std::path::Path;

use regex::Regex;
use serde_json::Value;

use crate::{read, without_tests};

/// One level of a file's shape.
#[derive(Debug, Clone)]
pub enum Shape {
    /// Named fields, nothing else.
    Fields(BTreeMap<String, Shape>),
    /// Any key, each value of the same shape.
    Map(Box<Shape>),
    /// A list; paths may name an item (`connectors.github`) or not.
    List(Box<Shape>),
    /// Free-form: a plugin's own `config`, a Kubernetes object.
    Any,
    /// A scalar.
    Leaf,
}

impl Shape {
    /// Whether a dotted path as prose writes it names something in this
    /// shape. A list's item may be named (`connectors.github.webhook`,
    /// `apiTokens.0.role`) as long as the path goes on past the name.
    pub fn resolves(&self, path: &[&str]) -> bool {
        self.walk(path, true)
    }

    /// Whether the keys of a YAML document name something in this shape;
    /// list items carry no names there.
    pub fn resolves_keys(&self, path: &[&str]) -> bool {
        self.walk(path, false)
    }

    fn walk(&self, path: &[&str], named_items: bool) -> bool {
        let Some((first, rest)) = path.split_first() else {
            return true;
        };
        match self {
            Shape::Any => true,
            Shape::Leaf => false,
            Shape::Map(inner) => inner.walk(rest, named_items),
            Shape::Fields(fields) => fields
                .get(*first)
                .is_some_and(|f| f.walk(rest, named_items)),
            Shape::List(inner) => {
                inner.walk(path, named_items)
                    || (named_items && !rest.is_empty() && inner.walk(rest, named_items))
            }
        }
    }

    /// The top-level keys.
    pub fn roots(&self) -> Vec<String> {
        match self {
            Shape::Fields(fields) => fields.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }
}

/// Builds a shape from Rust structs that serde reads: every `pub` field of
/// `root` and, through their types, of the structs they hold. Types it
/// does not find among `sources` are scalars, except `serde_json::Value`
/// (free-form) and `SecretSource` (`{env}` or `{file}`).
pub fn from_rust(sources: &[&str], root: &str) -> Result<Shape, String> {
    let structure = Regex::new(r"(?s)pub struct (\w+)\s*\{(.*?)\n\}").map_err(|e| e.to_string())?;
    let field = Regex::new(r"(?m)^\s*pub (\w+):\s*(.+?),?\s*$").map_err(|e| e.to_string())?;
    let mut structs: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for source in sources {
        let text: String = without_tests(source)
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for found in structure.captures_iter(&text) {
            let fields = field
                .captures_iter(&found[2])
                .map(|f| (f[1].to_string(), f[2].trim().to_string()))
                .collect();
            structs.insert(found[1].to_string(), fields);
        }
    }
    if !structs.contains_key(root) {
        return Err(format!("no struct {root} found; the sources moved"));
    }
    shape_of(root, &structs, 0)
}

fn shape_of(
    ty: &str,
    structs: &BTreeMap<String, Vec<(String, String)>>,
    depth: usize,
) -> Result<Shape, String> {
    if depth > 16 {
        return Err(format!("types nest too deep at {ty}"));
    }
    let ty = ty.trim();
    let inner = |prefix: &str| {
        ty.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix('>'))
            .map(str::trim)
    };
    if let Some(t) = inner("Option<").or_else(|| inner("Box<")) {
        return shape_of(t, structs, depth + 1);
    }
    if let Some(t) = inner("Vec<") {
        return Ok(Shape::List(Box::new(shape_of(t, structs, depth + 1)?)));
    }
    if let Some(t) = inner("BTreeMap<").or_else(|| inner("HashMap<")) {
        let value = t.split_once(',').map_or(t, |(_, v)| v);
        return Ok(Shape::Map(Box::new(shape_of(value, structs, depth + 1)?)));
    }
    let name = ty.rsplit("::").next().unwrap_or(ty);
    match name {
        "Value" => Ok(Shape::Any),
        "SecretSource" => Ok(Shape::Fields(
            [
                ("env".to_string(), Shape::Leaf),
                ("file".to_string(), Shape::Leaf),
            ]
            .into(),
        )),
        _ => match structs.get(name) {
            Some(fields) => Ok(Shape::Fields(
                fields
                    .iter()
                    .map(|(f, t)| Ok((f.clone(), shape_of(t, structs, depth + 1)?)))
                    .collect::<Result<_, String>>()?,
            )),
            None => Ok(Shape::Leaf),
        },
    }
}

/// The shape of org-mesh.yaml.
pub fn config(root: &Path) -> Result<Shape, String> {
    let config = read(&root.join("host/app/src/config.rs"))?;
    let runtime = read(&root.join("host/runtime/src/host/mod.rs"))?;
    from_rust(&[&config, &runtime], "Config")
}

/// The shape of the drift tuning file, policies/drift-rules.yaml.
pub fn tuning(root: &Path) -> Result<Shape, String> {
    from_rust(&[&read(&root.join("host/policy/src/tuning.rs"))?], "Tuning")
}

/// The shape of the chart's values, from its JSON schema.
pub fn values(root: &Path) -> Result<Shape, String> {
    let text = read(&root.join("helm/org-mesh/values.schema.json"))?;
    let schema: Value = serde_json::from_str(&text)
        .map_err(|e| format!("values.schema.json does not parse: {e}"))?;
    Ok(from_schema(&schema, &schema, 0))
}

fn from_schema(node: &Value, schema: &Value, depth: usize) -> Shape {
    if depth > 32 {
        return Shape::Any;
    }
    if let Some(reference) = node.get("$ref").and_then(Value::as_str) {
        let target = reference
            .strip_prefix("#/")
            .and_then(|p| p.split('/').try_fold(schema, |v, part| v.get(part)));
        return match target {
            Some(t) => from_schema(t, schema, depth + 1),
            None => Shape::Any,
        };
    }
    // allOf/anyOf: the keys of every branch are allowed.
    let mut fields = BTreeMap::new();
    for key in ["allOf", "anyOf", "oneOf"] {
        for branch in node
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Shape::Fields(f) = from_schema(branch, schema, depth + 1) {
                fields.extend(f);
            }
        }
    }
    if let Some(properties) = node.get("properties").and_then(Value::as_object) {
        for (name, sub) in properties {
            let shape = if sub == &Value::Bool(true) {
                fields.get(name).cloned().unwrap_or(Shape::Any)
            } else {
                from_schema(sub, schema, depth + 1)
            };
            fields.insert(name.clone(), shape);
        }
    }
    if !fields.is_empty() {
        return Shape::Fields(fields);
    }
    if let Some(items) = node.get("items") {
        return Shape::List(Box::new(from_schema(items, schema, depth + 1)));
    }
    match node.get("additionalProperties") {
        Some(Value::Object(_)) => Shape::Map(Box::new(from_schema(
            node.get("additionalProperties").unwrap_or(&Value::Null),
            schema,
            depth + 1,
        ))),
        _ if node.get("type") == Some(&Value::String("object".into())) => Shape::Any,
        _ => Shape::Leaf,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_structs_become_shapes() {
        let source = "pub struct Config {\n    /// doc {with braces}\n    pub serve: Option<Serve>,\n    pub list: Vec<Item>,\n    pub map: BTreeMap<String, SecretSource>,\n    pub free: serde_json::Value,\n}\n\npub struct Serve {\n    pub listen: String,\n}\n\npub struct Item {\n    pub name: String,\n}\n";
        let shape = from_rust(&[source], "Config").unwrap_or_else(|e| unreachable!("{e}"));
        assert!(shape.resolves(&["serve", "listen"]));
        assert!(!shape.resolves(&["serve", "port"]));
        assert!(shape.resolves(&["list", "name"]));
        assert!(shape.resolves(&["list", "<item>", "name"]));
        assert!(!shape.resolves(&["list", "other"]));
        assert!(!shape.resolves_keys(&["list", "<item>", "name"]));
        assert!(shape.resolves(&["map", "token", "file"]));
        assert!(!shape.resolves(&["map", "token", "value"]));
        assert!(shape.resolves(&["free", "anything", "at", "all"]));
        assert!(!shape.resolves(&["serve", "listen", "more"]));
    }

    #[test]
    fn schemas_become_shapes() {
        let schema = serde_json::json!({
            "definitions": {"s": {"type": "object", "properties": {"value": {"type": "string"}}}},
            "properties": {
                "a": {"type": "object", "properties": {"b": {"type": "integer"}}},
                "secrets": {"type": "object", "additionalProperties": {"$ref": "#/definitions/s"}},
                "free": {"type": "object"}
            }
        });
        let shape = from_schema(&schema, &schema, 0);
        assert!(shape.resolves(&["a", "b"]));
        assert!(!shape.resolves(&["a", "c"]));
        assert!(shape.resolves(&["secrets", "x", "value"]));
        assert!(!shape.resolves(&["secrets", "x", "other"]));
        assert!(shape.resolves(&["free", "x", "y"]));
    }
}
