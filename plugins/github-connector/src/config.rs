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
        Ok(config)
    }
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
