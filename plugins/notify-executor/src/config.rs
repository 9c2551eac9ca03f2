//! The operator's configuration for one notify executor instance, checked
//! in full before anything is planned or sent.

use serde::Deserialize;

use org_mesh_plugin::types::PluginError;

use crate::address::WebhookUrl;

/// The bounds the manifest's schema states; checked here too, since the
/// plugin is also run without the host (in tests, for one).
pub const MAX_ATTEMPTS: u32 = 5;
pub const MAX_WAIT_SECS: u64 = 30;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    default_url: Option<String>,
    #[serde(default)]
    allowed_url_prefixes: Vec<String>,
    #[serde(default = "default_attempts")]
    max_attempts: u32,
    #[serde(default = "default_wait")]
    max_wait_secs: u64,
    #[serde(default)]
    idempotency_field: Option<String>,
    #[serde(default)]
    remember_deliveries: bool,
    #[serde(default)]
    dry_run_only: bool,
}

fn default_attempts() -> u32 {
    4
}

fn default_wait() -> u64 {
    20
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Where a message goes when the action names no URL.
    pub default_url: Option<WebhookUrl>,
    /// Prefixes a URL given in an action must fall under.
    pub allowed_url_prefixes: Vec<WebhookUrl>,
    /// Sends in all, the first included.
    pub max_attempts: u32,
    /// The longest single wait before a retry.
    pub max_wait_secs: u64,
    /// A top-level payload field that also carries the idempotency key.
    pub idempotency_field: Option<String>,
    /// Whether delivered keys are kept in the key-value store.
    pub remember_deliveries: bool,
    pub dry_run_only: bool,
}

fn invalid(message: String) -> PluginError {
    PluginError::InvalidConfig(message)
}

impl Config {
    pub fn parse(json: &str) -> Result<Self, PluginError> {
        let json = if json.trim().is_empty() { "{}" } else { json };
        let raw: Raw = serde_json::from_str(json).map_err(|e| invalid(format!("config: {e}")))?;
        let default_url = raw
            .default_url
            .as_deref()
            .map(|u| WebhookUrl::parse(u).map_err(|e| invalid(format!("default_url: {e}"))))
            .transpose()?;
        let mut prefixes = Vec::new();
        for (i, prefix) in raw.allowed_url_prefixes.iter().enumerate() {
            let parsed = WebhookUrl::parse(prefix)
                .map_err(|e| invalid(format!("allowed_url_prefixes[{i}]: {e}")))?;
            if parsed.has_query() {
                return Err(invalid(format!(
                    "allowed_url_prefixes[{i}]: a prefix cannot have a query"
                )));
            }
            prefixes.push(parsed);
        }
        if !(1..=MAX_ATTEMPTS).contains(&raw.max_attempts) {
            return Err(invalid(format!(
                "max_attempts: {} is not from 1 to {MAX_ATTEMPTS}",
                raw.max_attempts
            )));
        }
        if !(1..=MAX_WAIT_SECS).contains(&raw.max_wait_secs) {
            return Err(invalid(format!(
                "max_wait_secs: {} is not from 1 to {MAX_WAIT_SECS}",
                raw.max_wait_secs
            )));
        }
        if let Some(field) = &raw.idempotency_field
            && (field.trim().is_empty() || field == "text" || field == "blocks")
        {
            return Err(invalid(format!(
                "idempotency_field: {field:?} would clash with the message; pick another name"
            )));
        }
        Ok(Self {
            default_url,
            allowed_url_prefixes: prefixes,
            max_attempts: raw.max_attempts,
            max_wait_secs: raw.max_wait_secs,
            idempotency_field: raw.idempotency_field,
            remember_deliveries: raw.remember_deliveries,
            dry_run_only: raw.dry_run_only,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(json: &str) -> String {
        match Config::parse(json) {
            Err(PluginError::InvalidConfig(m)) => m,
            other => format!("not refused: {other:?}"),
        }
    }

    #[test]
    fn defaults_allow_no_url_in_actions() {
        let config = Config::parse("").ok();
        assert!(
            config
                .as_ref()
                .is_some_and(|c| c.allowed_url_prefixes.is_empty())
        );
        assert_eq!(
            config.map(|c| (c.max_attempts, c.max_wait_secs)),
            Some((4, 20))
        );
    }

    #[test]
    fn every_field_is_checked_and_named() {
        assert!(refused(r#"{"default_url": "hooks.slack.com/x"}"#).starts_with("default_url"));
        assert!(
            refused(r#"{"allowed_url_prefixes": ["https://a.test/", "https://b.test/x?y=1"]}"#)
                .starts_with("allowed_url_prefixes[1]")
        );
        assert!(refused(r#"{"max_attempts": 0}"#).starts_with("max_attempts"));
        assert!(refused(r#"{"max_wait_secs": 600}"#).starts_with("max_wait_secs"));
        assert!(refused(r#"{"idempotency_field": "text"}"#).starts_with("idempotency_field"));
        assert!(refused(r#"{"url": "https://a.test/"}"#).contains("unknown field"));
    }
}
