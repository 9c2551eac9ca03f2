//! The GitHub connector plugin: pulls one GitHub organisation (members and
//! their roles, two-factor status, pending invitations, teams, repositories,
//! collaborators and default-branch protection) into the twin, and keeps it
//! current from the organisation's webhook deliveries.
//!
//! Build the component with
//! `cargo build --target wasm32-wasip2 --profile plugin -p github-connector`;
//! `cargo test -p github-connector` runs the parsing and request-order tests
//! natively against a scripted transport, and every example of the mapped
//! events in `@octokit/webhooks-examples` (installed by `.ci/setup`).

mod config;
mod github;
mod messages;
mod payload;
mod records;
mod scan;
mod webhook;

use org_mesh_plugin::connector::{
    Guest, HandleResponse, IncomingRequest, OutgoingResponse, SyncRequest, SyncResponse,
};
use org_mesh_plugin::http::AuthScheme;
use org_mesh_plugin::rest::{Client, Transport};
use org_mesh_plugin::types::{Description, PluginError};

pub use config::Config;
pub use records::PROTECTION_PROPERTIES;
pub use scan::{Note, Scan, scan};
pub use webhook::{EVENTS, Handled, handle};

pub const NAME: &str = "github-connector";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The client every request goes through: GitHub's v3 media type, the
/// `token` secret attached by the host in GitHub's classic scheme, and
/// conditional requests when the config asks for them.
pub fn client<T: Transport>(config: &Config, transport: T) -> Client<T> {
    Client::with_transport(&config.api_url, transport)
        .conditional_requests(config.conditional_requests)
        .header("accept", "application/vnd.github.v3+json")
        .header(
            "user-agent",
            concat!("org-mesh-github-connector/", env!("CARGO_PKG_VERSION")),
        )
        .auth("token", AuthScheme::Token)
}

#[cfg_attr(
    not(target_arch = "wasm32"),
    expect(dead_code, reason = "only the wasm build exports the plugin")
)]
struct GithubConnector;

impl Guest for GithubConnector {
    fn describe() -> Description {
        Description {
            name: NAME.into(),
            version: VERSION.into(),
            summary: "Pulls a GitHub organisation's members, invitations, teams, repositories, \
                      collaborators and branch protection, and applies its webhook deliveries"
                .into(),
            rules: Vec::new(),
            actions: Vec::new(),
        }
    }

    // One call reads the whole organisation; the cursor only says where
    // comment reading resumes. Very
    // large organisations (tens of thousands of repositories) will want the
    // scan cut into chunks resumed by cursor, so that one call stays within
    // the host's time limit.
    fn sync(req: SyncRequest) -> Result<SyncResponse, PluginError> {
        let config = Config::parse(&req.config)?;
        let api = client(&config, org_mesh_plugin::rest::CachingHostTransport);
        let Scan {
            batch,
            notes,
            cursor,
        } = scan(&api, &config, req.cursor.as_deref())?;
        for note in notes {
            org_mesh_plugin::log::emit(note.level, &note.message, &note.fields);
        }
        Ok(SyncResponse {
            batch,
            cursor,
            more: false,
        })
    }

    fn handle(req: IncomingRequest) -> Result<HandleResponse, PluginError> {
        let Handled {
            status,
            body,
            batch,
            notes,
        } = handle(&req)?;
        for note in notes {
            org_mesh_plugin::log::emit(note.level, &note.message, &note.fields);
        }
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
org_mesh_plugin::export_connector!(GithubConnector);
