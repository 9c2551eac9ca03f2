//! The operator's configuration for one SCIM connector instance.

use serde::Deserialize;

use org_mesh_plugin::types::PluginError;

/// Which identity provider the accounts belong to; it prefixes every key
/// (`okta:<id>`) and fills the accounts' `provider` property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Okta,
    AzureAd,
    Scim,
}

impl Provider {
    fn parse(name: &str) -> Result<Self, PluginError> {
        match name {
            "okta" => Ok(Self::Okta),
            "azure-ad" => Ok(Self::AzureAd),
            "scim" => Ok(Self::Scim),
            other => Err(PluginError::InvalidConfig(format!(
                "provider: {other:?} is not okta, azure-ad or scim"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Okta => "okta",
            Self::AzureAd => "azure-ad",
            Self::Scim => "scim",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub provider: Provider,
    /// A SCIM 2.0 base URL to read from; without it the connector reads the
    /// `users` and `groups` attachments.
    pub url: Option<String>,
    pub page_size: u32,
}

// Parsed as text first so that a wrong provider is reported by field name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    provider: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default = "default_page_size")]
    page_size: u32,
}

fn default_page_size() -> u32 {
    100
}

impl Config {
    pub fn parse(json: &str) -> Result<Self, PluginError> {
        let raw: RawConfig = serde_json::from_str(json)
            .map_err(|e| PluginError::InvalidConfig(format!("config: {e}")))?;
        let config = Self {
            provider: Provider::parse(&raw.provider)?,
            url: raw.url.map(|u| u.trim_end_matches('/').to_string()),
            page_size: raw.page_size,
        };
        if let Some(url) = &config.url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(PluginError::InvalidConfig(format!(
                "url: {url:?} is not an http or https URL"
            )));
        }
        if !(1..=1000).contains(&config.page_size) {
            return Err(PluginError::InvalidConfig(format!(
                "page_size: {} is outside 1 to 1000",
                config.page_size
            )));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_and_defaults() {
        let config = Config::parse(r#"{"provider":"azure-ad"}"#);
        assert!(matches!(
            config,
            Ok(Config {
                provider: Provider::AzureAd,
                url: None,
                page_size: 100
            })
        ));
    }

    #[test]
    fn errors_name_the_field() {
        for (json, field) in [
            (r#"{"provider":"google"}"#, "provider"),
            (r#"{"provider":"okta","url":"ldap://x"}"#, "url"),
            (r#"{"provider":"okta","page_size":0}"#, "page_size"),
            (r#"{"provider":"okta","token":"x"}"#, "token"),
        ] {
            let result = Config::parse(json);
            assert!(
                matches!(&result, Err(PluginError::InvalidConfig(m)) if m.contains(field)),
                "{json}: {result:?} should name {field}"
            );
        }
    }
}
