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
    /// Who a campaign response issue mentions besides the maintainers, as
    /// GitHub writes a mention: `@acme/security` or `@octocat`.
    #[serde(default)]
    pub security_contact: Option<String>,
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
        if let Some(contact) = &config.security_contact {
            let name = contact.strip_prefix('@').unwrap_or_default();
            let valid = !name.is_empty()
                && name.split('/').all(|part| {
                    !part.is_empty()
                        && part
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                })
                && name.matches('/').count() <= 1;
            if !valid {
                return Err(PluginError::InvalidConfig(format!(
                    "security_contact: {contact:?} is not a GitHub mention such as @acme/security or @octocat"
                )));
            }
        }
        Ok(config)
    }
}
