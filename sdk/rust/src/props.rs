//! Helpers for reading and writing the `properties` lists that nodes, edges
//! and actions carry.

use crate::types::{PluginError, Properties, Value};

/// Builds a property list without repeating `to_string()` and `Value::` at
/// every entry.
#[derive(Debug, Default)]
pub struct Props(Properties);

impl Props {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn text(mut self, name: &str, value: impl Into<String>) -> Self {
        self.0.push((name.to_string(), Value::Text(value.into())));
        self
    }

    pub fn opt_text(self, name: &str, value: Option<impl Into<String>>) -> Self {
        match value {
            Some(v) => self.text(name, v),
            None => self,
        }
    }

    pub fn boolean(mut self, name: &str, value: bool) -> Self {
        self.0.push((name.to_string(), Value::Boolean(value)));
        self
    }

    pub fn integer(mut self, name: &str, value: i64) -> Self {
        self.0.push((name.to_string(), Value::Integer(value)));
        self
    }

    pub fn timestamp(mut self, name: &str, rfc3339: impl Into<String>) -> Self {
        self.0
            .push((name.to_string(), Value::Timestamp(rfc3339.into())));
        self
    }

    pub fn texts(mut self, name: &str, values: Vec<String>) -> Self {
        self.0.push((name.to_string(), Value::Texts(values)));
        self
    }

    pub fn value(mut self, name: &str, value: Value) -> Self {
        self.0.push((name.to_string(), value));
        self
    }

    pub fn build(self) -> Properties {
        self.0
    }
}

/// The value of the named property, if present.
pub fn get<'a>(props: &'a Properties, name: &str) -> Option<&'a Value> {
    props.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// The named property as text, if it is text.
pub fn get_text<'a>(props: &'a Properties, name: &str) -> Option<&'a str> {
    match get(props, name) {
        Some(Value::Text(s)) => Some(s),
        _ => None,
    }
}

/// The named property as a boolean, if it is one.
pub fn get_bool(props: &Properties, name: &str) -> Option<bool> {
    match get(props, name) {
        Some(Value::Boolean(b)) => Some(*b),
        _ => None,
    }
}

/// An action parameter that must be a non-empty text, or the
/// `invalid-input` error executors answer with, naming the parameter.
pub fn required_text(name: &str, value: &Value) -> Result<String, PluginError> {
    match value {
        Value::Text(s) if !s.trim().is_empty() => Ok(s.clone()),
        other => Err(PluginError::InvalidInput(format!(
            "parameter {name}: {other:?} is not a non-empty text"
        ))),
    }
}
