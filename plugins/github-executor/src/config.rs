//! The operator's configuration for one executor instance.

use serde::Deserialize;

use org_mesh_plugin::types::PluginError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// Plans only: every `execute` is refused.
    #[serde(default)]
    pub dry_run_only: bool,
    /// Items per page when listing collaborators or issues. Smaller pages
    /// keep each answer under the host's response size limit when items
    /// are large, at the cost of more requests.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
}

/// GitHub's largest page.
pub const MAX_PAGE_SIZE: u32 = 100;

fn default_page_size() -> u32 {
    MAX_PAGE_SIZE
}

fn default_api_url() -> String {
    "https://api.github.com".to_string()
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
        if !(1..=MAX_PAGE_SIZE).contains(&config.page_size) {
            return Err(PluginError::InvalidConfig(format!(
                "page_size: {} is not from 1 to {MAX_PAGE_SIZE}",
                config.page_size
            )));
        }
        Ok(config)
    }
}
