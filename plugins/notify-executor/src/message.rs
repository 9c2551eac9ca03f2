//! The `notify.post` action: its parameters, and the Slack-compatible JSON
//! message they become.
//!
//! The text is Slack `mrkdwn`, and findings quote names that anyone may
//! choose (a repository called `<!channel>` for one), so `&`, `<` and `>`
//! are escaped as Slack asks: nothing in a finding can mention a channel,
//! ping people or disguise a link. Without fields the message is
//! `{"text": ...}`; with fields it also carries `blocks`, a section with
//! the text and a section with the fields, and `text` stays as the
//! notification fallback. Slack's limits are checked here, so a message is
//! refused whole rather than cut or rejected by the receiver.

use serde::Serialize;
use serde::ser::SerializeMap;

use org_mesh_plugin::types::{PluginError, Properties, Value};

pub const POST: &str = "notify.post";

/// Slack truncates a message's text beyond this many characters.
const MAX_TEXT: usize = 40_000;
/// Slack's limits for a section block's text, its fields, and each field.
const MAX_SECTION_TEXT: usize = 3_000;
const MAX_FIELDS: usize = 10;
const MAX_FIELD_TEXT: usize = 2_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Post {
    /// The URL the action names, if any, not yet checked.
    pub url: Option<String>,
    /// Escaped for `mrkdwn`.
    pub text: String,
    /// Each as its `mrkdwn` text, escaped.
    pub fields: Vec<String>,
}

fn invalid(message: String) -> PluginError {
    PluginError::InvalidInput(message)
}

/// Escapes the three characters Slack gives a meaning to in `mrkdwn`.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// `Label: value` becomes the label in bold above the value; anything
/// else is shown as it is.
fn field(raw: &str) -> String {
    match raw.split_once(':') {
        Some((label, value)) if !label.trim().is_empty() && !label.contains('*') => {
            format!("*{}*\n{}", escape(label.trim()), escape(value.trim()))
        }
        _ => escape(raw.trim()),
    }
}

impl Post {
    pub fn parse(kind: &str, parameters: &Properties) -> Result<Self, PluginError> {
        if kind != POST {
            return Err(invalid(format!(
                "action {kind:?} is not one this executor handles ({POST})"
            )));
        }
        let (mut url, mut text, mut fields) = (None, None, Vec::new());
        for (name, value) in parameters {
            match (name.as_str(), value) {
                ("url", Value::Text(u)) if !u.trim().is_empty() => url = Some(u.clone()),
                ("text", Value::Text(t)) if !t.trim().is_empty() => text = Some(t.clone()),
                ("fields", Value::Texts(list)) => fields = list.clone(),
                ("url" | "text", other) => {
                    return Err(invalid(format!(
                        "parameter {name}: {other:?} is not a non-empty text"
                    )));
                }
                ("fields", other) => {
                    return Err(invalid(format!(
                        "parameter fields: {other:?} is not a list of texts such as \"Severity: high\""
                    )));
                }
                (other, _) => return Err(invalid(format!("{POST} has no parameter {other}"))),
            }
        }
        let text =
            escape(&text.ok_or_else(|| invalid(format!("{POST} needs the parameter text")))?);
        let limit = if fields.is_empty() {
            MAX_TEXT
        } else {
            MAX_SECTION_TEXT
        };
        let length = text.chars().count();
        if length > limit {
            return Err(invalid(format!(
                "parameter text: {length} characters once escaped, more than the {limit} Slack \
                 takes{}",
                if fields.is_empty() {
                    ""
                } else {
                    " beside fields"
                }
            )));
        }
        if fields.len() > MAX_FIELDS {
            return Err(invalid(format!(
                "parameter fields: {} fields, more than the {MAX_FIELDS} Slack shows",
                fields.len()
            )));
        }
        let mut shown = Vec::with_capacity(fields.len());
        for (i, raw) in fields.iter().enumerate() {
            if raw.trim().is_empty() {
                return Err(invalid(format!("parameter fields: field {i} is empty")));
            }
            let f = field(raw);
            if f.chars().count() > MAX_FIELD_TEXT {
                return Err(invalid(format!(
                    "parameter fields: field {i} is longer than the {MAX_FIELD_TEXT} characters \
                     Slack takes"
                )));
            }
            shown.push(f);
        }
        Ok(Self {
            url,
            text,
            fields: shown,
        })
    }

    /// The JSON body, compact, `text` first. The idempotency key is added
    /// under `key_field` when the operator names one.
    pub fn payload(&self, key_field: Option<(&str, &str)>) -> String {
        let body = Payload {
            post: self,
            key_field,
        };
        // Strings and nested structs always serialise; the fallback keeps
        // this total rather than trusting that.
        serde_json::to_string(&body).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

#[derive(Serialize)]
struct Text<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

fn mrkdwn(text: &str) -> Text<'_> {
    Text {
        kind: "mrkdwn",
        text,
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Section {
        #[serde(skip_serializing_if = "Option::is_none")]
        text: Option<Text<'a>>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        fields: Vec<Text<'a>>,
    },
}

struct Payload<'a> {
    post: &'a Post,
    key_field: Option<(&'a str, &'a str)>,
}

impl Serialize for Payload<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("text", &self.post.text)?;
        if !self.post.fields.is_empty() {
            let blocks = [
                Block::Section {
                    text: Some(mrkdwn(&self.post.text)),
                    fields: Vec::new(),
                },
                Block::Section {
                    text: None,
                    fields: self.post.fields.iter().map(|f| mrkdwn(f)).collect(),
                },
            ];
            map.serialize_entry("blocks", &blocks)?;
        }
        if let Some((name, key)) = self.key_field {
            map.serialize_entry(name, key)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use org_mesh_plugin::props::Props;

    use super::*;

    fn parse(props: Props) -> Result<Post, PluginError> {
        Post::parse(POST, &props.build())
    }

    #[test]
    fn plain_text_is_escaped_and_sent_alone() {
        let post = parse(Props::new().text("text", "<!channel> a & b > c"));
        assert_eq!(
            post.map(|p| p.payload(None)).ok().as_deref(),
            Some(r#"{"text":"&lt;!channel&gt; a &amp; b &gt; c"}"#)
        );
    }

    #[test]
    fn fields_become_a_section_beside_the_text() {
        let post = parse(
            Props::new()
                .text("text", "octocat kept admin")
                .texts("fields", vec!["Severity: critical".into(), "<b>".into()]),
        );
        let payload = post.map(|p| p.payload(Some(("idempotency_key", "fix-1"))));
        assert_eq!(
            payload.ok().as_deref(),
            Some(concat!(
                r#"{"text":"octocat kept admin","blocks":["#,
                r#"{"type":"section","text":{"type":"mrkdwn","text":"octocat kept admin"}},"#,
                r#"{"type":"section","fields":[{"type":"mrkdwn","text":"*Severity*\ncritical"},"#,
                r#"{"type":"mrkdwn","text":"&lt;b&gt;"}]}],"idempotency_key":"fix-1"}"#
            ))
        );
    }

    #[test]
    fn malformed_parameters_are_named() {
        let cases = [
            (Props::new(), "needs the parameter text"),
            (Props::new().text("text", " "), "parameter text"),
            (
                Props::new().text("text", "x").integer("url", 1),
                "parameter url",
            ),
            (
                Props::new().text("text", "x").text("fields", "a: b"),
                "parameter fields",
            ),
            (
                Props::new().text("text", "x").text("channel", "#ops"),
                "no parameter channel",
            ),
            (
                Props::new()
                    .text("text", "x")
                    .texts("fields", vec!["f".into(); 11]),
                "more than the 10",
            ),
            (
                Props::new()
                    .text("text", "<".repeat(800))
                    .texts("fields", vec!["f".into()]),
                "3200 characters once escaped",
            ),
        ];
        for (props, expected) in cases {
            let result = parse(props);
            assert!(
                matches!(&result, Err(PluginError::InvalidInput(m)) if m.contains(expected)),
                "{expected}: {result:?}"
            );
        }
        assert!(matches!(
            Post::parse("notify.page", &Vec::new()),
            Err(PluginError::InvalidInput(_))
        ));
    }
}
