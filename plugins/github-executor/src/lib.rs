//! The GitHub executor plugin, on GitHub or GitHub Enterprise Server:
//! removes a member from an organisation or a collaborator from a
//! repository, converts a member to an outside collaborator, restores a
//! default branch's protection to a baseline, and opens an issue.
//!
//! Build the component with
//! `cargo build --target wasm32-wasip2 --profile plugin -p github-executor`;
//! `cargo test -p github-executor` checks the planned calls and bodies
//! natively, against GitHub's recorded exchanges where they exist and its
//! published examples where they do not.

mod actions;
mod config;
mod protection;
mod run;

use org_mesh_plugin::executor::{ActionPlan, ActionRequest, Guest, Outcome};
use org_mesh_plugin::http::AuthScheme;
use org_mesh_plugin::rest::{Client, HostTransport, Transport};
use org_mesh_plugin::types::{Description, PluginError};

pub use actions::{
    ACTIONS, Action, CAMPAIGN_RESPONSE, CONVERT_TO_OUTSIDE_COLLABORATOR, DEFAULT_RESPONSE_REVIEWS,
    OPEN_ISSUE, REMOVE_ORG_MEMBER, REMOVE_REPO_COLLABORATOR, RESTORE_BRANCH_PROTECTION, marker,
};
pub use config::{Config, MAX_PAGE_SIZE};
pub use protection::{Body, Protection, Requested, Restrictions};
pub use run::{WRITE_RETRIES, retry_policy};

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
        .retry_policy(retry_policy())
}

fn action(req: &ActionRequest, config: &Config) -> Result<Action, PluginError> {
    let mut action = Action::parse(
        &req.action.kind,
        &req.action.parameters,
        &req.action.idempotency_key,
    )?;
    if let (Action::CampaignResponse { body, .. }, Some(contact)) =
        (&mut action, &config.security_contact)
    {
        body.push_str(&format!("\n\ncc {contact}"));
    }
    Ok(action)
}

pub fn plan<T: Transport>(req: &ActionRequest, transport: T) -> Result<ActionPlan, PluginError> {
    let config = Config::parse(&req.config)?;
    let action = action(req, &config)?;
    Ok(run::plan(
        &client(&config, transport),
        config.page_size,
        &action,
    ))
}

/// The transport is cloned because the executor also waits through it
/// between attempts at a write, outside any one request.
pub fn execute<T: Transport + Clone>(
    req: &ActionRequest,
    transport: T,
) -> Result<Outcome, PluginError> {
    let config = Config::parse(&req.config)?;
    let action = action(req, &config)?;
    if config.dry_run_only {
        return Err(PluginError::Denied(
            "dry_run_only is set for this executor: it plans but does not execute".into(),
        ));
    }
    let pause = transport.clone();
    run::execute(
        &client(&config, transport),
        &pause,
        config.page_size,
        &action,
    )
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
            summary: "Removes members and collaborators, converts members to outside \
                      collaborators, restores default-branch protection and opens issues on GitHub"
                .into(),
            rules: Vec::new(),
            actions: ACTIONS.iter().map(|a| (*a).to_string()).collect(),
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
