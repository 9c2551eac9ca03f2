//! The SCIM connector plugin: reads users and groups from an identity
//! provider (Okta, Entra ID or any SCIM 2.0 service provider) into the twin,
//! either from the provider's SCIM endpoint or from ListResponse files the
//! operator exported and attached; and applies the users and groups an
//! identity provider pushes to the host's SCIM service for this instance.
//!
//! Build the component with
//! `cargo build --target wasm32-wasip2 --profile plugin -p scim-connector`;
//! `cargo test -p scim-connector` runs the parser against the RFC 7643/7644
//! examples natively, and the pushed-request mapping against RFC and
//! Entra ID shaped resources.

mod config;
mod push;
mod records;
mod scim;
mod source;

use org_mesh_plugin::connector::{
    Guest, HandleResponse, IncomingRequest, OutgoingResponse, SyncRequest, SyncResponse,
};
use org_mesh_plugin::http::AuthScheme;
use org_mesh_plugin::log::{self, Level};
use org_mesh_plugin::rest::{Client, Transport};
use org_mesh_plugin::types::{Batch, Description, PluginError};

pub use config::{Config, Provider};
pub use push::{DEPROVISIONED, handle as handle_push};
pub use source::Listing;

pub const NAME: &str = "scim-connector";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The client for a SCIM base URL, the `token` secret sent as a bearer
/// token by the host.
pub fn client<T: Transport>(url: &str, transport: T) -> Client<T> {
    Client::with_transport(url, transport)
        .header("accept", "application/scim+json, application/json")
        .auth("token", AuthScheme::Bearer)
}

/// Reads everything the configured source holds and builds the batch;
/// also returns log lines for what was left out.
pub fn read<T: Transport>(
    config: &Config,
    attachments: &[org_mesh_plugin::connector::Attachment],
    transport: T,
) -> Result<(Batch, Vec<String>), PluginError> {
    let listing = match &config.url {
        Some(url) => source::from_server(&client(url, transport), config.page_size)?,
        None => source::from_attachments(attachments)?,
    };
    records::batch(config.provider, &listing)
}

#[cfg_attr(
    not(target_arch = "wasm32"),
    expect(dead_code, reason = "only the wasm build exports the plugin")
)]
struct ScimConnector;

impl Guest for ScimConnector {
    fn describe() -> Description {
        Description {
            name: NAME.into(),
            version: VERSION.into(),
            summary: "Reads users and groups from Okta, Entra ID or any SCIM 2.0 service \
                      provider, or from exported SCIM ListResponse files, and applies the \
                      ones a provider pushes over SCIM"
                .into(),
            rules: Vec::new(),
            actions: Vec::new(),
        }
    }

    fn sync(req: SyncRequest) -> Result<SyncResponse, PluginError> {
        let config = Config::parse(&req.config)?;
        let transport = org_mesh_plugin::rest::HostTransport;
        let (batch, notes) = read(&config, &req.attachments, transport)?;
        for note in notes {
            log::emit(Level::Info, &note, &[]);
        }
        Ok(SyncResponse {
            batch,
            cursor: None,
            more: false,
        })
    }

    fn handle(req: IncomingRequest) -> Result<HandleResponse, PluginError> {
        let batch = handle_push(&req)?;
        log::emit(
            Level::Debug,
            "Mapped a pushed SCIM change",
            &[
                ("method".to_string(), req.method),
                ("nodes".to_string(), batch.nodes.len().to_string()),
                ("edges".to_string(), batch.edges.len().to_string()),
            ],
        );
        Ok(HandleResponse {
            response: OutgoingResponse {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: b"{}".to_vec(),
            },
            batch,
        })
    }
}

// The export macro names symbols after WIT paths (`org-mesh:plugin/...`),
// which a native linker's version script cannot express, so the exports
// exist only in the wasm build; native builds keep the impl type-checked.
#[cfg(target_arch = "wasm32")]
org_mesh_plugin::export_connector!(ScimConnector);
