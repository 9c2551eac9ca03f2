//! The GitLab connector plugin: keeps a GitLab's users, groups, projects and
//! memberships in the twin current from the hooks GitLab delivers (group
//! and project webhooks, and system hooks). This version reads nothing by
//! itself: `sync` is refused, so a twin fed only by hooks knows what
//! changed since the hooks were set up, not what existed before.
//!
//! Build the component with
//! `cargo build --target wasm32-wasip2 --profile plugin -p gitlab-connector`;
//! `cargo test -p gitlab-connector` maps every payload in
//! `conformance/data/gitlab-hooks` natively.

mod hooks;
mod messages;
mod records;

use org_mesh_plugin::connector::{
    Guest, HandleResponse, IncomingRequest, OutgoingResponse, SyncRequest, SyncResponse,
};
use org_mesh_plugin::types::{Description, PluginError};

pub use hooks::{Config, HOOKS, Handled, handle};
pub use records::REDACTED;

pub const NAME: &str = "gitlab-connector";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[cfg_attr(
    not(target_arch = "wasm32"),
    expect(dead_code, reason = "only the wasm build exports the plugin")
)]
struct GitlabConnector;

impl Guest for GitlabConnector {
    fn describe() -> Description {
        Description {
            name: NAME.into(),
            version: VERSION.into(),
            summary: "Keeps GitLab users, groups, projects and memberships current from GitLab's \
                      hooks; this version reads GitLab by webhook only and does not sync"
                .into(),
            rules: Vec::new(),
            actions: Vec::new(),
        }
    }

    fn sync(_req: SyncRequest) -> Result<SyncResponse, PluginError> {
        Err(PluginError::InvalidConfig(
            "this version reads GitLab by webhook only".into(),
        ))
    }

    fn handle(req: IncomingRequest) -> Result<HandleResponse, PluginError> {
        let Handled {
            status,
            body,
            batch,
            log,
        } = handle(&req)?;
        let (message, fields) = log;
        org_mesh_plugin::log::emit(org_mesh_plugin::log::Level::Debug, &message, &fields);
        Ok(HandleResponse {
            response: OutgoingResponse {
                status,
                headers: vec![("content-type".into(), "application/json".into())],
                body: body.into_bytes(),
            },
            batch,
        })
    }
}

// The export macro names symbols after WIT paths (`org-mesh:plugin/...`),
// which a native linker's version script cannot express, so the exports
// exist only in the wasm build; native builds keep the impl type-checked.
#[cfg(target_arch = "wasm32")]
org_mesh_plugin::export_connector!(GitlabConnector);
