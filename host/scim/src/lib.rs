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

/// A stored change offered to a [`ScimSink`]: the resource as served, or
/// the last of it when the identity provider deleted it.
#[derive(Debug, Clone, PartialEq)]
pub struct Offered {
    pub kind: ResourceKind,
    pub deleted: bool,
    pub resource: serde_json::Value,
}

/// Receives every change the identity provider makes, after it is stored.
#[async_trait::async_trait]
pub trait ScimSink: Send + Sync + std::fmt::Debug {
    /// Takes stored changes of one connector: users before groups, each in
    /// the order written, and never two of one resource. A sink may take
    /// them together, as one unit of work, rather than one at a time; an
    /// identity provider's import leaves hundreds waiting.
    ///
    /// Answers, for each change in the order offered, whether it was taken
    /// or refused and why; a refused change does not stop the others. An
    /// error means that none was taken: [`SinkError::Unavailable`] that
    /// offering more is pointless for now, [`SinkError::Refused`] that
    /// every one of them is refused for the reason given.
    async fn take(
        &self,
        connector: &str,
        changes: &[Offered],
    ) -> Result<Vec<Result<(), String>>, SinkError>;
}

/// Why a sink did not take a change. Either way the change stays stored
/// as unsent and is offered again later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// The sink takes no change at the moment (what it writes to is down,
    /// or it is stopping), so offering it the next change is pointless.
    #[error("{0}")]
    Unavailable(String),
    /// The sink cannot take these changes; others may still go through.
    #[error("{0}")]
    Refused(String),
}
