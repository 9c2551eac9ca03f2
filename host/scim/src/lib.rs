//! org-mesh's SCIM 2.0 service provider (RFC 7643/7644): identity providers
//! such as Okta and Entra ID provision users and groups into org-mesh by
//! calling it. Each connector is served under `/scim/v2/{connector}` with
//! its own bearer token; every accepted change is stored in a
//! [`ScimRepository`], answered, and then handed to a [`ScimSink`], which
//! feeds the twin.
//!
//! Build a [`ScimService`], wrap it in an `Arc` and serve [`router`]; the
//! tests in `tests/` do exactly that on 127.0.0.1.

mod embedded;
mod error;
pub mod filter;
mod http;
pub mod patch;
mod project;
mod repository;
mod resource;
mod schema;
mod service;

pub use embedded::EmbeddedRepository;
pub use error::{ERROR_SCHEMA, ScimError, ScimType};
pub use http::{not_found, router, routes};
pub use repository::{MemoryRepository, RepositoryError, ScimRepository, StoredResource, Unsent};
pub use schema::{ENTERPRISE_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};
pub use service::{Context, DEFAULT_BODY_LIMIT, Endpoint, HandedOver, ListQuery, ScimService};

/// The kinds of resource served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceKind {
    User,
    Group,
}

/// Receives every change the identity provider makes, after it is stored.
#[async_trait::async_trait]
pub trait ScimSink: Send + Sync + std::fmt::Debug {
    /// Called after a create/replace/modify is stored, with the stored resource as served.
    async fn upserted(
        &self,
        connector: &str,
        kind: ResourceKind,
        resource: &serde_json::Value,
    ) -> Result<(), SinkError>;
    /// Called after a delete, with the last stored resource.
    async fn deleted(
        &self,
        connector: &str,
        kind: ResourceKind,
        last: &serde_json::Value,
    ) -> Result<(), SinkError>;
}

/// Why a sink did not take a change. Either way the change stays stored
/// as unsent and is offered again later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// The sink takes no change at the moment (what it writes to is down,
    /// or it is stopping), so offering it the next change is pointless.
    #[error("{0}")]
    Unavailable(String),
    /// The sink cannot take this change; others may still go through.
    #[error("{0}")]
    Refused(String),
}
