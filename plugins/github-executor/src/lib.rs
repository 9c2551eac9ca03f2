//! The GitHub executor plugin: removes a member from an organisation and
//! restores a default branch's protection to a baseline, on GitHub or
//! GitHub Enterprise Server.
//!
//! Build the component with
//! `cargo build --target wasm32-wasip2 --profile plugin -p github-executor`;
//! `cargo test -p github-executor` checks the planned calls and bodies
//! natively, against GitHub's recorded branch-protection exchange.

mod actions;
mod config;
mod protection;
mod run;

use org_mesh_plugin::executor::{ActionPlan, ActionRequest, Guest, Outcome};
use org_mesh_plugin::http::AuthScheme;
use org_mesh_plugin::rest::{Client, HostTransport, Transport};
use org_mesh_plugin::types::{Description, PluginError};

pub use actions::{Action, REMOVE_ORG_MEMBER, RESTORE_BRANCH_PROTECTION};
pub use config::Config;
pub use protection::{Body, Protection, Requested, Restrictions};

pub const NAME: &str = "github-executor";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The client for GitHub's API as its recorded exchanges expect it.
pub fn client<T: Transport>(config: &Config, transport: T) -> Client<T> {
    Client::with_transport(&config.api_url, transport)
        .header("accept", "application/vnd.github.v3+json")
        .header(
            "user-agent",
            concat!("org-mesh-github-executor/", env!("CARGO_PKG_VERSION")),
        )
        .auth("token", AuthScheme::Token)
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
struct GithubExecutor;

impl Guest for GithubExecutor {
    fn describe() -> Description {
        Description {
            name: NAME.into(),
            version: VERSION.into(),
            summary:
                "Removes organisation members and restores default-branch protection on GitHub"
                    .into(),
            rules: Vec::new(),
            actions: vec![REMOVE_ORG_MEMBER.into(), RESTORE_BRANCH_PROTECTION.into()],
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
org_mesh_plugin::export_executor!(GithubExecutor);
