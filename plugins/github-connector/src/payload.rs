//! A webhook body read field by field, so that a malformed delivery of an
//! event the connector maps is refused with a message naming the event, its
//! action and the field at fault.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json};

use org_mesh_plugin::types::PluginError;

#[derive(Debug)]
pub struct Payload {
    /// `event.action`, or the event alone when it has no action (`push`).
    what: String,
    root: Json,
}

impl Payload {
    pub fn parse(event: &str, body: &[u8]) -> Result<Self, PluginError> {
        let root: Json = serde_json::from_slice(body).map_err(|e| {
            PluginError::InvalidInput(format!("{event}: the body is not JSON: {e}"))
        })?;
        if !root.is_object() {
            return Err(PluginError::InvalidInput(format!(
                "{event}: the body is not a JSON object"
            )));
        }
        let what = match root.get("action").and_then(Json::as_str) {
            Some(action) => format!("{event}.{action}"),
            None => event.to_string(),
        };
        Ok(Self { what, root })
    }

    pub fn what(&self) -> &str {
        &self.what
    }

    pub fn action(&self) -> Option<&str> {
        self.root.get("action").and_then(Json::as_str)
    }

    pub fn error(&self, path: &str, problem: &str) -> PluginError {
        PluginError::InvalidInput(format!("{}: {path} {problem}", self.what))
    }

    /// The value at a dotted path; an explicit null counts as absent, as
    /// GitHub writes null for many fields it has nothing for.
    pub fn at(&self, path: &str) -> Option<&Json> {
        let mut value = &self.root;
        for part in path.split('.') {
            value = value.get(part)?;
        }
        (!value.is_null()).then_some(value)
    }

    pub fn opt_text(&self, path: &str) -> Option<&str> {
        self.at(path).and_then(Json::as_str)
    }

    pub fn text(&self, path: &str) -> Result<&str, PluginError> {
        match self.at(path) {
            Some(Json::String(s)) if !s.is_empty() => Ok(s),
            Some(Json::String(_)) => Err(self.error(path, "is empty")),
            Some(_) => Err(self.error(path, "is not a string")),
            None => Err(self.error(path, "is missing")),
        }
    }

    pub fn object(&self, path: &str) -> Result<&Map<String, Json>, PluginError> {
        match self.at(path) {
            Some(Json::Object(map)) => Ok(map),
            Some(_) => Err(self.error(path, "is not an object")),
            None => Err(self.error(path, "is missing")),
        }
    }

    pub fn read<T: DeserializeOwned>(&self, path: &str) -> Result<T, PluginError> {
        self.opt_read(path)?
            .ok_or_else(|| self.error(path, "is missing"))
    }

    /// The value at the path in the connector's own type; absent is `None`,
    /// present but malformed is an error.
    pub fn opt_read<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, PluginError> {
        let Some(value) = self.at(path) else {
            return Ok(None);
        };
        T::deserialize(value)
            .map(Some)
            .map_err(|e| self.error(path, &format!("is malformed: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_event_action_and_field() {
        let p = Payload::parse("member", br#"{"action":"added","member":{"id":1}}"#);
        let Ok(p) = p else {
            panic!("a JSON object should parse: {p:?}");
        };
        let err = p.read::<crate::github::User>("member");
        assert!(
            matches!(&err, Err(PluginError::InvalidInput(m)) if m.starts_with("member.added: member is malformed") && m.contains("login")),
            "{err:?}"
        );
        let err = p.text("repository.full_name");
        assert!(
            matches!(&err, Err(PluginError::InvalidInput(m)) if m == "member.added: repository.full_name is missing"),
            "{err:?}"
        );
        assert!(matches!(
            Payload::parse("push", b"[1]"),
            Err(PluginError::InvalidInput(m)) if m == "push: the body is not a JSON object"
        ));
        assert!(matches!(
            Payload::parse("push", b"\xff"),
            Err(PluginError::InvalidInput(m)) if m.starts_with("push: the body is not JSON")
        ));
    }
}
