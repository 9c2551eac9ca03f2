//! The GitLab executor plugin: blocks users, removes members from groups
//! and projects, and protects branches, through GitLab's REST API v4.
//!
//! Build the component with
//! `cargo build --target wasm32-wasip2 --profile plugin -p gitlab-executor`;
//! `cargo test -p gitlab-executor` runs the plans and executions natively
//! against a strict scripted GitLab that the tests serve on loopback.

mod actions;
mod config;
mod protection;
mod run;

use org_mesh_plugin::executor::{ActionPlan, ActionRequest, Guest, Outcome};
use org_mesh_plugin::http::AuthScheme;
use org_mesh_plugin::rest::{Client, HostTransport, Transport};
use org_mesh_plugin::types::{Description, PluginError};

pub use actions::{Action, BLOCK_USER, PROTECT_BRANCH, REMOVE_MEMBER, Source, User};
pub use config::Config;
pub use protection::Level;

pub const NAME: &str = "gitlab-executor";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The header GitLab reads a personal, group or project access token from.
pub const TOKEN_HEADER: &str = "PRIVATE-TOKEN";

/// The client for GitLab's API: JSON, authenticated by the host with the
/// secret `token` in the `PRIVATE-TOKEN` header.
pub fn client<T: Transport>(config: &Config, transport: T) -> Client<T> {
    Client::with_transport(&config.api_url, transport)
        .header("accept", "application/json")
        .header(
            "user-agent",
            concat!("org-mesh-gitlab-executor/", env!("CARGO_PKG_VERSION")),
        )
        .auth("token", AuthScheme::Header(TOKEN_HEADER.to_string()))
}

pub fn plan<T: Transport>(req: &ActionRequest, transport: T) -> Result<ActionPlan, PluginError> {
    let config = Config::parse(&req.config)?;
    let action = Action::parse(&req.action.kind, &req.action.parameters)?;
    Ok(run::plan(&client(&config, transport), &action))
}

pub fn execute<T: Transport>(req: &ActionRequest, transport: T) -> Result<Outcome, PluginError> {
    let config = Config::parse(&req.config)?;
    let action = Action::parse(&req.action.kind, &req.action.parameters)?;
    if config.dry_run_only {
        return Err(PluginError::Denied(
            "dry_run_only is set for this executor: it plans but does not execute".into(),
        ));
    }
    run::execute(&client(&config, transport), &action)
}

#[cfg_attr(
    not(target_arch = "wasm32"),
    expect(dead_code, reason = "only the wasm build exports the plugin")
)]
struct GitlabExecutor;

impl Guest for GitlabExecutor {
    fn describe() -> Description {
        Description {
            name: NAME.into(),
            version: VERSION.into(),
            summary: "Blocks users, removes members and protects branches on GitLab".into(),
            rules: Vec::new(),
            actions: vec![
                BLOCK_USER.into(),
                REMOVE_MEMBER.into(),
                PROTECT_BRANCH.into(),
            ],
        }
    }

    fn plan(req: ActionRequest) -> Result<ActionPlan, PluginError> {
        plan(&req, HostTransport)
    }

    fn execute(req: ActionRequest) -> Result<Outcome, PluginError> {
        execute(&req, HostTransport)
    }
}

// The export macro names symbols after WIT paths (`org-mesh:plugin/...`),
// which a native linker's version script cannot express, so the exports
// exist only in the wasm build; native builds keep the impl type-checked.
#[cfg(target_arch = "wasm32")]
org_mesh_plugin::export_executor!(GitlabExecutor);
