//! A connector that reads one paginated listing through
//! `org_mesh_plugin::rest`, the client the GitHub connector uses, and
//! reports one `Item` node per entry keyed by its `number`. The host's
//! tests run it against GitHub's recorded pagination to prove the client
//! follows `Link` headers to the end. Never load it in production.

// Only the wasm build exports the plugin, so natively its code looks unused.
// `allow`, not `expect`: test builds see the code as used and would leave an
// expectation unfulfilled.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use org_mesh_plugin::connector::{
    Guest, HandleResponse, IncomingRequest, SyncRequest, SyncResponse,
};
use org_mesh_plugin::http::AuthScheme;
use org_mesh_plugin::props::Props;
use org_mesh_plugin::rest::Client;
use org_mesh_plugin::types::{Batch, Description, Node, PluginError};

struct Pager;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    api_url: String,
    path: String,
}

impl Guest for Pager {
    fn describe() -> Description {
        Description {
            name: "pager".into(),
            version: "0.1.0".into(),
            summary: "Reads one paginated listing; for tests".into(),
            rules: Vec::new(),
            actions: Vec::new(),
        }
    }

    fn sync(req: SyncRequest) -> Result<SyncResponse, PluginError> {
        let config: Config = serde_json::from_str(&req.config)
            .map_err(|e| PluginError::InvalidConfig(e.to_string()))?;
        let client = Client::new(&config.api_url)
            .header("accept", "application/vnd.github.v3+json")
            .auth("token", AuthScheme::Token);
        let items: Vec<serde_json::Value> = client.get_all(&config.path)?;
        let nodes = items
            .iter()
            .map(|item| {
                let number = item
                    .get("number")
                    .and_then(|n| n.as_i64())
                    .ok_or_else(|| PluginError::InvalidInput("an item has no number".into()))?;
                Ok(Node {
                    label: "Item".into(),
                    key: format!("item:{number}"),
                    properties: Props::new().integer("number", number).build(),
                })
            })
            .collect::<Result<Vec<_>, PluginError>>()?;
        Ok(SyncResponse {
            batch: Batch {
                nodes,
                edges: Vec::new(),
                complete: Vec::new(),
                partial: false,
            },
            cursor: None,
            more: false,
        })
    }

    fn handle(_req: IncomingRequest) -> Result<HandleResponse, PluginError> {
        Err(PluginError::InvalidInput(
            "pager handles no requests".into(),
        ))
    }
}

// The exported symbol names follow WIT paths, which only the wasm linker
// accepts; a native build just type-checks the plugin.
#[cfg(target_arch = "wasm32")]
org_mesh_plugin::export_connector!(Pager);
