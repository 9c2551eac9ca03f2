//! SCIM 2.0 for identity providers, at `/scim/v2/<connector>/`.
//!
//! The SCIM protocol itself (resources, filters, PATCH as Okta and Entra
//! send it) is `org-mesh-scim`; what a stored user or group means for the
//! twin is the SCIM connector plugin's to say, as for its syncs. Each
//! stored change is handed to the connector as `PUT` or `DELETE` of the
//! resource, after the identity provider has its answer, and the records
//! it returns for the changes waiting are queued for the twin together.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::Method;
use axum::middleware::Next;

use org_mesh_model::Batch;
use org_mesh_runtime::{Incoming, Plugin};
use org_mesh_scim::{Offered, ScimService, ScimSink, SinkError};

use super::Service;

/// `routes` with every answer timed into
/// `org_mesh_scim_request_duration_seconds`. The connector label is the
/// path's only when that connector serves SCIM: any other path segment
/// would let a caller mint series, so those are `unknown`.
pub fn timed(routes: axum::Router, service: &Service) -> axum::Router {
    let connectors: Arc<BTreeSet<String>> = Arc::new(
        service
            .config
            .connectors
            .iter()
            .filter(|c| c.scim.is_some())
            .map(|c| c.name.clone())
            .collect(),
    );
    let answers = service.metrics.scim_answers.clone();
    routes.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| {
            let (connectors, answers) = (connectors.clone(), answers.clone());
            async move {
                let connector = request
                    .uri()
                    .path()
                    .strip_prefix("/scim/v2/")
                    .and_then(|rest| rest.split('/').next())
                    .filter(|name| connectors.contains(*name))
                    .unwrap_or("unknown")
                    .to_owned();
                let method = match *request.method() {
                    Method::GET => "GET",
                    Method::POST => "POST",
                    Method::PUT => "PUT",
                    Method::PATCH => "PATCH",
                    Method::DELETE => "DELETE",
                    _ => "other",
                };
                let started = Instant::now();
                let response = next.run(request).await;
                let status = match response.status().as_u16() {
                    200..=299 => "2xx",
                    400..=499 => "4xx",
                    500..=599 => "5xx",
                    _ => "other",
                };
                answers
                    .with_label_values(&[connector.as_str(), method, status])
                    .observe(started.elapsed().as_secs_f64());
                response
            }
        },
    ))
}

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

    /// The connector's records for one stored change, or why it has none.
    async fn records(connector: &str, plugin: &Plugin, change: &Offered) -> Result<Batch, String> {
        let id = change
            .resource
            .get("id")
            .and_then(|v| v.as_str())
            .ok_or("the stored resource has no id")?;
        let request = Incoming {
            method: if change.deleted { "DELETE" } else { "PUT" }.into(),
            path: format!("/{}/{id}", change.kind.endpoint()),
            headers: vec![("content-type".into(), "application/scim+json".into())],
            body: serde_json::to_vec(&change.resource).map_err(|e| e.to_string())?,
        };
        let handled = plugin
            .handle(&request)
            .await
            .map_err(|e| format!("{e:#}"))?;
        for s in &handled.skipped {
            tracing::warn!(%connector, skipped = %s, "Record from SCIM left out");
        }
        Ok(handled.batch)
    }
}

#[async_trait::async_trait]
impl ScimSink for TwinSink {
    /// Queues the records of every change the connector has records for as
    /// one change of the twin, so that an import's hundreds of waiting
    /// changes cost one queue write and one application to the twin rather
    /// than one each. Should queueing fail after some of them were queued
    /// (the connector mixed partial and whole batches), every change is
    /// offered again later, and the twin takes those it has as the same
    /// state again.
    async fn take(
        &self,
        connector: &str,
        changes: &[Offered],
    ) -> Result<Vec<Result<(), String>>, SinkError> {
        let service = self
            .service
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| SinkError::Unavailable("the service is shutting down".into()))?;
        let plugin = service
            .twin
            .connector(connector)
            .ok_or_else(|| SinkError::Refused(format!("connector {connector:?} is not loaded")))?;
        let queue = async |batch: Batch| {
            service
                .accept(connector, batch)
                .await
                .map(drop)
                .map_err(|e| SinkError::Unavailable(format!("{e:#}")))
        };
        let mut outcomes = Vec::with_capacity(changes.len());
        let mut pending = Batch::default();
        for change in changes {
            match Self::records(connector, &plugin, change).await {
                Ok(batch) => {
                    if let Err(batch) = pending.try_extend(batch) {
                        queue(std::mem::replace(&mut pending, batch)).await?;
                    }
                    outcomes.push(Ok(()));
                }
                Err(problem) => outcomes.push(Err(problem)),
            }
        }
        if !pending.is_empty() {
            queue(pending).await?;
        }
        Ok(outcomes)
    }
}

/// How often every stored SCIM change the twin has not taken is offered
/// again, those it refused included. They are rare (a plugin that failed
/// on one, a queue that was down, a process killed between storing and
/// queueing) and the check reads an empty table.
const HAND_OVER_EVERY: Duration = Duration::from_secs(10);

/// How long the hand-over lets writes gather after one woke it. The twin
/// takes a batch of changes for about the cost of one; without the wait,
/// a hand-over kept up with an import one or two changes at a time, and
/// the twin fell behind. 10 ms let a 20,000-user import at about 1,000
/// users a second reach the twin as it was answered, against 13 s behind
/// without it.
const GATHER_FOR: Duration = Duration::from_millis(10);

/// Hands stored SCIM changes to the twin as they are stored, until the
/// service goes away.
pub async fn hand_over_unsent(service: Weak<Service>) {
    let Some(scim) = service.upgrade().and_then(|s| s.scim.clone()) else {
        return;
    };
    let scim = Arc::downgrade(&scim);
    ScimService::hand_over_as_stored(scim, HAND_OVER_EVERY, GATHER_FOR).await;
}
