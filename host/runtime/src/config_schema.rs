//! Checks an operator's plugin configuration against the manifest's schema.
//!
//! This is a deliberately small subset of JSON Schema: `type`, `properties`,
//! `required`, `additionalProperties` (a boolean), `enum`, `items`,
//! `minimum`, `maximum`, plus the annotations `description`, `title`,
//! `default`, `format` and `examples`, which are accepted and ignored. A
//! schema that uses anything else is refused when the manifest loads, so an
//! author never believes a constraint is enforced when it is not.

use serde_json::Value;

const KEYWORDS: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "enum",
    "items",
    "minimum",
    "maximum",
    "description",
    "title",
    "default",
    "format",
    "examples",
    "$schema",
];

/// Refuses a schema that uses keywords this checker does not enforce.
pub fn check_schema(schema: &Value) -> Result<(), String> {
    let Value::Object(map) = schema else {
        return Err("a schema must be an object".into());
    };
    for (key, value) in map {
        if !KEYWORDS.contains(&key.as_str()) {
            return Err(format!("keyword {key:?} is not supported"));
        }
        match key.as_str() {
            "properties" => {
                let Value::Object(props) = value else {
                    return Err("properties must be an object".into());
                };
                for (name, sub) in props {
                    check_schema(sub).map_err(|e| format!("properties.{name}: {e}"))?;
                }
            }
            "items" => check_schema(value).map_err(|e| format!("items: {e}"))?,
            "additionalProperties" if !value.is_boolean() => {
                return Err("additionalProperties must be true or false".into());
            }
            "type" => {
                let ok = value.as_str().is_some_and(|t| {
                    ["object", "string", "integer", "number", "boolean", "array"].contains(&t)
                });
                if !ok {
                    return Err(format!("type {value} is not supported"));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Every way `config` breaks `schema`, each naming the field.
pub fn validate(schema: &Value, config: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    walk(schema, config, "config", &mut problems);
    problems
}

fn walk(schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
    if let Some(expected) = schema.get("type").and_then(Value::as_str) {
        let ok = match expected {
            "object" => value.is_object(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "array" => value.is_array(),
            _ => true,
        };
        if !ok {
            problems.push(format!(
                "{at}: expected {expected}, found {}",
                kind_of(value)
            ));
            return;
        }
    }
    if let Some(Value::Array(allowed)) = schema.get("enum")
        && !allowed.contains(value)
    {
        problems.push(format!(
            "{at}: {value} is not one of {}",
            Value::Array(allowed.clone())
        ));
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            problems.push(format!("{at}: {n} is below the minimum {min}"));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            problems.push(format!("{at}: {n} is above the maximum {max}"));
        }
    }
    if let Value::Object(map) = value {
        let props = schema.get("properties").and_then(Value::as_object);
        if let Some(Value::Array(required)) = schema.get("required") {
            for name in required.iter().filter_map(Value::as_str) {
                if !map.contains_key(name) {
                    problems.push(format!("{at}.{name}: required but missing"));
                }
            }
        }
        let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
        for (name, sub_value) in map {
            match props.and_then(|p| p.get(name)) {
                Some(sub) => walk(sub, sub_value, &format!("{at}.{name}"), problems),
                None if closed => problems.push(format!("{at}.{name}: unknown field")),
                None => {}
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (value, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            walk(item_schema, item, &format!("{at}[{i}]"), problems);
        }
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_every_problem_with_its_field() {
        let schema = json!({
            "type": "object",
            "required": ["org"],
            "additionalProperties": false,
            "properties": {
                "org": {"type": "string"},
                "per_page": {"type": "integer", "minimum": 1, "maximum": 100},
                "mode": {"enum": ["a", "b"]}
            }
        });
        let problems = validate(&schema, &json!({"per_page": 500, "mode": "c", "colour": 1}));
        assert_eq!(
            problems,
            vec![
                "config.org: required but missing",
                "config.colour: unknown field",
                "config.mode: \"c\" is not one of [\"a\",\"b\"]",
                "config.per_page: 500 is above the maximum 100",
            ]
        );
        assert!(validate(&schema, &json!({"org": "acme"})).is_empty());
    }

    #[test]
    fn refuses_unenforced_keywords() {
        assert!(check_schema(&json!({"type": "object", "pattern": "x"})).is_err());
        assert!(check_schema(&json!({"properties": {"a": {"oneOf": []}}})).is_err());
        assert!(check_schema(&json!({"type": "object", "additionalProperties": {}})).is_err());
    }
}
