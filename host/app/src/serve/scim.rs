//! SCIM 2.0 for identity providers, at `/scim/v2/<connector>/`.
//!
//! The SCIM protocol itself (resources, filters, PATCH as Okta and Entra
//! send it) is `org-mesh-scim`; what a stored user or group means for the
//! twin is the SCIM connector plugin's to say, as for its syncs. Each
//! stored change is handed to the connector as `PUT` or `DELETE` of the
//! resource, after the identity provider has its answer, and the records
//! it returns are queued for the twin.

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use org_mesh_runtime::Incoming;
use org_mesh_scim::{ResourceKind, ScimService, ScimSink, SinkError};

use super::Service;

/// Hands stored SCIM changes to the service. It holds the service weakly:
/// the service owns the SCIM routes, which own this sink.
#[derive(Debug, Default)]
pub struct TwinSink {
    service: OnceLock<Weak<Service>>,
}

impl TwinSink {
    pub fn attach(&self, service: &Arc<Service>) {
        let _ = self.service.set(Arc::downgrade(service));
    }

    async fn forward(
        &self,
        connector: &str,
        method: &str,
        kind: ResourceKind,
        resource: &serde_json::Value,
    ) -> Result<(), SinkError> {
        let service = self
            .service
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| SinkError::Unavailable("the service is shutting down".into()))?;
        let plugin = service
            .twin
            .connector(connector)
            .ok_or_else(|| SinkError::Refused(format!("connector {connector:?} is not loaded")))?;
        let id = resource
            .get("id")
            .and_then(|v| v.as_str())
            .ok_or_else(|| SinkError::Refused("the stored resource has no id".into()))?;
        let collection = match kind {
            ResourceKind::User => "Users",
            ResourceKind::Group => "Groups",
        };
        let request = Incoming {
            method: method.into(),
            path: format!("/{collection}/{id}"),
            headers: vec![("content-type".into(), "application/scim+json".into())],
            body: serde_json::to_vec(resource).map_err(|e| SinkError::Refused(e.to_string()))?,
        };
        let handled = plugin
            .handle(&request)
            .await
            .map_err(|e| SinkError::Refused(format!("{e:#}")))?;
        for s in &handled.skipped {
            tracing::warn!(%connector, skipped = %s, "Record from SCIM left out");
        }
        service
            .accept(connector, handled.batch)
            .await
            .map_err(|e| SinkError::Unavailable(format!("{e:#}")))?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl ScimSink for TwinSink {
    async fn upserted(
        &self,
        connector: &str,
        kind: ResourceKind,
        resource: &serde_json::Value,
    ) -> Result<(), SinkError> {
        self.forward(connector, "PUT", kind, resource).await
    }

    async fn deleted(
        &self,
        connector: &str,
        kind: ResourceKind,
        last: &serde_json::Value,
    ) -> Result<(), SinkError> {
        self.forward(connector, "DELETE", kind, last).await
    }
}

/// How often every stored SCIM change the twin has not taken is offered
/// again, those it refused included. They are rare (a plugin that failed
/// on one, a queue that was down, a process killed between storing and
/// queueing) and the check reads an empty table.
const HAND_OVER_EVERY: Duration = Duration::from_secs(10);

/// Hands stored SCIM changes to the twin as they are stored, until the
/// service goes away.
pub async fn hand_over_unsent(service: Weak<Service>) {
    let Some(scim) = service.upgrade().and_then(|s| s.scim.clone()) else {
        return;
    };
    let scim = Arc::downgrade(&scim);
    ScimService::hand_over_as_stored(scim, HAND_OVER_EVERY).await;
}
