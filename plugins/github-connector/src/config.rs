//! The operator's configuration for one connector instance.

use serde::Deserialize;

use org_mesh_plugin::types::PluginError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_api_url")]
    pub api_url: String,
    pub org: String,
    #[serde(default = "default_per_page")]
    pub per_page: u32,
    /// Whether webhook deliveries' text (issues, pull requests, comments,
    /// reviews, commit messages) is recorded as `Message` nodes.
    #[serde(default = "default_messages")]
    pub messages: bool,
    /// When set, every sync also reads the issue and pull request comments
    /// of each repository written or edited since this RFC 3339 time (the
    /// first sync) or since the newest one the previous sync saw, and
    /// records them as `Message` nodes.
    #[serde(default)]
    pub comments_since: Option<String>,
    /// Whether every listing is read with `if-none-match`, answered from
    /// the plugin's key-value store when GitHub says it has not changed.
    #[serde(default)]
    pub conditional_requests: bool,
}

fn default_messages() -> bool {
    true
}

fn default_api_url() -> String {
    "https://api.github.com".to_string()
}

fn default_per_page() -> u32 {
    100
}

impl Config {
    /// Parses and checks the JSON configuration, naming the field at fault.
    pub fn parse(json: &str) -> Result<Self, PluginError> {
        let config: Self = serde_json::from_str(json)
            .map_err(|e| PluginError::InvalidConfig(format!("config: {e}")))?;
        if !(config.api_url.starts_with("https://") || config.api_url.starts_with("http://")) {
            return Err(PluginError::InvalidConfig(format!(
                "api_url: {:?} is not an http or https URL",
                config.api_url
            )));
        }
        if config.org.trim().is_empty() {
            return Err(PluginError::InvalidConfig("org: must not be empty".into()));
        }
        if !(1..=100).contains(&config.per_page) {
            return Err(PluginError::InvalidConfig(format!(
                "per_page: {} is outside 1 to 100, the range GitHub accepts",
                config.per_page
            )));
        }
        if let Some(since) = &config.comments_since
            && !is_rfc3339(since)
        {
            return Err(PluginError::InvalidConfig(format!(
                "comments_since: {since:?} is not an RFC 3339 time such as 2024-01-01T00:00:00Z"
            )));
        }
        Ok(config)
    }
}

/// The shape GitHub's `since` parameter takes: a date, `T`, a time and an
/// offset or `Z`. Checked by shape, since GitHub does the parsing.
pub fn is_rfc3339(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (b[10] == b'T' || b[10] == b't')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && matches!(b[b.len() - 1], b'Z' | b'z' | b'0'..=b'9')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_in_api_url_and_per_page() {
        let config = Config::parse(r#"{"org":"acme"}"#);
        assert!(matches!(
            config,
            Ok(Config { ref api_url, per_page: 100, .. }) if api_url == "https://api.github.com"
        ));
    }

    #[test]
    fn errors_name_the_field() {
        for (json, field) in [
            (r#"{"org":"acme","api_url":"ftp://x"}"#, "api_url"),
            (r#"{"org":" "}"#, "org"),
            (r#"{"org":"acme","per_page":0}"#, "per_page"),
            (r#"{"org":"acme","token":"x"}"#, "token"),
            (
                r#"{"org":"acme","comments_since":"last week"}"#,
                "comments_since",
            ),
            (r#"{}"#, "org"),
        ] {
            let result = Config::parse(json);
            assert!(
                matches!(&result, Err(PluginError::InvalidConfig(m)) if m.contains(field)),
                "{json}: {result:?} should name {field}"
            );
        }
    }
}
