use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A property value of a node or an edge.
///
/// Timestamps keep the offset they were reported with, so a round trip
/// through any backend gives back the same instant and the same zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Value {
    Null,
    Boolean(bool),
    Integer(i64),
    Float(f64),
    Text(String),
    #[serde(with = "time::serde::rfc3339")]
    Timestamp(time::OffsetDateTime),
    Texts(Vec<String>),
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The value as plain JSON, as policy and reports see it.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Boolean(b) => (*b).into(),
            Value::Integer(i) => (*i).into(),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Text(s) => s.clone().into(),
            Value::Timestamp(t) => t
                .format(&time::format_description::well_known::Rfc3339)
                .map(serde_json::Value::String)
                .unwrap_or(serde_json::Value::Null),
            Value::Texts(v) => v.clone().into(),
        }
    }
}

/// Named property values, ordered by name so that equal sets compare and
/// serialise equally. An explicit `Null` is never stored: see
/// [`crate::Node::normalised`].
pub type Properties = BTreeMap<String, Value>;

/// Properties as one JSON object.
pub fn properties_to_json(props: &Properties) -> serde_json::Value {
    serde_json::Value::Object(
        props
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect(),
    )
}
