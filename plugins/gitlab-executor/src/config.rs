//! The operator's configuration for one GitLab executor instance.

use serde::Deserialize;

use org_mesh_plugin::types::PluginError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The REST API root, ending in `/api/v4`.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// Plans only: every `execute` is refused.
    #[serde(default)]
    pub dry_run_only: bool,
}

fn default_api_url() -> String {
    "https://gitlab.com/api/v4".to_string()
}

impl Config {
    pub fn parse(json: &str) -> Result<Self, PluginError> {
        let json = if json.trim().is_empty() { "{}" } else { json };
        let config: Self = serde_json::from_str(json)
            .map_err(|e| PluginError::InvalidConfig(format!("config: {e}")))?;
        if !(config.api_url.starts_with("https://") || config.api_url.starts_with("http://")) {
            return Err(PluginError::InvalidConfig(format!(
                "api_url: {:?} is not an http or https URL",
                config.api_url
            )));
        }
        // The instance's home page answers HTML with 200 on most paths, so
        // a root without /api/v4 would fail late and obscurely; refuse it
        // here instead.
        if !config.api_url.trim_end_matches('/').ends_with("/api/v4") {
            return Err(PluginError::InvalidConfig(format!(
                "api_url: {:?} does not end in /api/v4; give the REST API root, such as \
                 https://gitlab.example.com/api/v4",
                config.api_url
            )));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_to_gitlab_com() {
        let config = Config::parse("").ok();
        assert_eq!(
            config.map(|c| c.api_url),
            Some("https://gitlab.com/api/v4".to_string())
        );
    }

    #[test]
    fn refuses_an_instance_url_without_the_api_root() {
        let result = Config::parse(r#"{"api_url": "https://gitlab.example.com"}"#);
        assert!(
            matches!(&result, Err(PluginError::InvalidConfig(m)) if m.starts_with("api_url")),
            "{result:?}"
        );
        let result = Config::parse(r#"{"api_url": "gitlab.example.com/api/v4"}"#);
        assert!(matches!(result, Err(PluginError::InvalidConfig(_))));
        let result = Config::parse(r#"{"api_url": "https://gitlab.example.com/api/v4/", "x": 1}"#);
        assert!(matches!(result, Err(PluginError::InvalidConfig(_))));
    }
}
