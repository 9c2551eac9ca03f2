//! `/api/v1`, `/metrics`, `/healthz` and `/readyz`. Every API error has one
//! JSON shape, `{"error": {"status", "code", "message"}}`; internals are
//! logged, never sent.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use org_mesh_model::{Direction, EntityId, NodeRef, Severity, properties_to_json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Service;
use crate::config::Role;
use crate::pipeline::Reported;

/// An API error: status, a stable code, and a message for people.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "API request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the request failed inside org-mesh; see its log",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {
            "status": self.status.as_u16(),
            "code": self.code,
            "message": self.message,
        }});
        (self.status, Json(body)).into_response()
    }
}

/// Gives axum's own rejections (a malformed query, a wrong method, a body
/// over the limit) the API's error shape, so clients parse one shape.
pub async fn one_error_shape(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let code = code_of(status);
    // Rejection texts are short; anything longer is cut rather than read.
    let text = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_lowercase()
    } else {
        text
    };
    ApiError::new(status, code, message).into_response()
}

/// The error code of an answer refused before any handler decided it.
pub fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        _ => "error",
    }
}

/// The caller's role, from its bearer token.
pub struct Caller {
    pub role: Role,
    pub name: String,
}

impl Caller {
    fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "this needs the {role:?} role; the token of {} has {:?}",
                    self.name, self.role
                )
                .to_lowercase(),
            ))
        }
    }
}

impl FromRequestParts<Arc<Service>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        service: &Arc<Service>,
    ) -> Result<Self, Self::Rejection> {
        let unauthorised = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m);
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| unauthorised("an Authorization: Bearer token is required"))?;
        // The scheme name is case-insensitive in HTTP.
        let bearer = header
            .to_str()
            .ok()
            .and_then(|h| h.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or_else(|| unauthorised("the Authorization header is not a Bearer token"))?;
        let (role, name) = service
            .role_of(bearer)
            .ok_or_else(|| unauthorised("the token is not known"))?;
        Ok(Caller {
            role,
            name: name.to_string(),
        })
    }
}

pub fn routes() -> Router<Arc<Service>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/findings", get(findings))
        .route("/api/v1/proposals", get(proposals))
        .route("/api/v1/proposals/{id}/approve", post(approve))
        .route("/api/v1/proposals/{id}/reject", post(reject))
        .route("/api/v1/proposals/{id}/retry", post(retry))
        .route("/api/v1/entities", get(entities))
        .route("/api/v1/entities/{label}/{key}", get(entity))
        .route("/api/v1/plugins", get(plugins))
        .route("/api/v1/policies", get(policies))
        .route("/api/v1/sync", post(sync))
        .route("/api/v1/status", get(status))
        .route("/api/v1/reloads", get(reloads))
        .route("/api/v1/reload", post(reload))
        .route("/api/v1/whoami", get(whoami))
        .route("/api/v1/events", get(events))
        .route("/api/v1/campaigns/{fingerprint}", get(campaign))
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(service): State<Arc<Service>>) -> Response {
    match service.not_ready() {
        None => "ready".into_response(),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, why).into_response(),
    }
}

/// The replica, its backends and its queue, for operators.
async fn status(
    caller: Caller,
    State(service): State<Arc<Service>>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Viewer)?;
    let backend = |kind: String, error: Option<String>| match error {
        None => json!({"backend": kind, "state": "up"}),
        Some(e) => json!({"backend": kind, "state": "down", "error": e}),
    };
    // Changes an identity provider pushed that are stored but not queued
    // for the twin yet; absent when this replica serves no SCIM. Read
    // before the queue: a change leaves this count only once queued, so
    // a caller seeing both at 0 knows none is in between.
    let scim = match &service.scim {
        Some(scim) => Some(json!({"unsent": scim.unsent().await.ok()})),
        None => None,
    };
    let depth = service.shared.queue.depth().await.ok();
    // Configured instances no plugin serves: their work is not being done.
    let not_loaded: Vec<Value> = service
        .twin
        .instances_loaded()
        .into_iter()
        .filter(|(_, _, loaded)| !loaded)
        .map(|(kind, name, _)| json!({"kind": kind, "instance": name}))
        .collect();
    // Detectors whose last run failed: their findings are those of their
    // last run that worked, and nothing they would find now is known.
    let failing: Vec<Value> = service
        .findings
        .read()
        .await
        .failed
        .iter()
        .map(|(instance, error)| json!({"instance": instance, "error": error}))
        .collect();
    // The policy folder's version deciding now; null with none loaded.
    let policies = service.twin.policy();
    let policy_version = policies.set.as_ref().map(|_| policies.version.clone());
    Ok(Json(json!({
        "replica": service.replica,
        "ready": service.not_ready().is_none(),
        "not_ready": service.not_ready(),
        "graph": backend(format!("{:?}", service.config.graph.backend).to_lowercase(), service.health.graph()),
        "cache": backend(service.shared.coordination.backend().to_string(), service.health.cache()),
        "queue": {"backend": service.shared.queue.backend(), "depth": depth},
        "scim": scim,
        "not_loaded": not_loaded,
        "failing": failing,
        "policy_version": policy_version,
        "twin_version": service.evaluated_at.load(std::sync::atomic::Ordering::Relaxed),
    })))
}

async fn metrics(State(service): State<Arc<Service>>) -> Result<Response, ApiError> {
    let families = service.twin.metrics.gather();
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&families)
        .map_err(ApiError::internal)?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    Ok((headers, text).into_response())
}

pub(super) fn reported_json(r: &Reported) -> Value {
    let f = &r.finding;
    json!({
        "fingerprint": f.fingerprint,
        "rule": f.rule,
        "severity": r.severity,
        "subject": f.subject.to_string(),
        "title": f.title,
        "detector": f.detector,
        "score": f.score,
        "attributes": properties_to_json(&f.attributes),
        "evidence": f.evidence,
        "detector_version": r.detector_version,
        "decision": r.decision,
        "action": r.action,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FindingFilter {
    severity: Option<String>,
    rule: Option<String>,
    subject: Option<String>,
}

async fn findings(
    caller: Caller,
    State(service): State<Arc<Service>>,
    Query(filter): Query<FindingFilter>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Viewer)?;
    let min = filter
        .severity
        .as_deref()
        .map(str::parse::<Severity>)
        .transpose()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e))?;
    let current = service.fresh_findings().await;
    let list: Vec<Value> = current
        .findings
        .iter()
        .filter(|r| min.is_none_or(|m| r.severity >= m))
        .filter(|r| filter.rule.as_deref().is_none_or(|x| r.finding.rule == x))
        .filter(|r| {
            filter
                .subject
                .as_deref()
                .is_none_or(|x| r.finding.subject.to_string() == x)
        })
        .map(reported_json)
        .collect();
    Ok(Json(json!({"findings": list})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProposalFilter {
    state: Option<String>,
}

async fn proposals(
    caller: Caller,
    State(service): State<Arc<Service>>,
    Query(filter): Query<ProposalFilter>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Viewer)?;
    let state = filter
        .state
        .as_deref()
        .map(str::parse::<crate::actions::State>)
        .transpose()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e))?;
    let mut list = crate::actions::Proposals {
        store: service.twin.store.as_ref(),
    }
    .all()
    .await
    .map_err(|e| ApiError::internal(format!("{e:#}")))?;
    list.retain(|p| state.is_none_or(|s| p.state == s));
    Ok(Json(json!({
        "dry_run": service.config.actions.dry_run,
        "proposals": list,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Verdict {
    /// Why, kept in the proposal's trail.
    #[serde(deserialize_with = "says_why")]
    reason: String,
}

/// A reason of nothing but white space would leave a trail entry that
/// explains nothing, and the trail is what an audit reads.
fn says_why<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let reason = String::deserialize(deserializer)?;
    if reason.trim().is_empty() {
        return Err(serde::de::Error::custom(
            "reason is empty: say why, for the proposal's trail",
        ));
    }
    Ok(reason.trim().to_owned())
}

async fn approve(
    caller: Caller,
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
    Json(verdict): Json<Verdict>,
) -> Result<Json<Value>, ApiError> {
    service
        .decide_proposal(&caller, &id, |p, now| {
            crate::actions::approve(p, &caller.name, caller.role, &verdict.reason, now)
        })
        .await
}

async fn reject(
    caller: Caller,
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
    Json(verdict): Json<Verdict>,
) -> Result<Json<Value>, ApiError> {
    service
        .decide_proposal(&caller, &id, |p, now| {
            crate::actions::reject(p, &caller.name, &verdict.reason, now)
        })
        .await
}

async fn retry(
    caller: Caller,
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
    Json(verdict): Json<Verdict>,
) -> Result<Json<Value>, ApiError> {
    service
        .decide_proposal(&caller, &id, |p, now| {
            crate::actions::retry(p, &caller.name, &verdict.reason, now)
        })
        .await
}

impl Service {
    /// Applies a person's verdict to a proposal and records it; an approval
    /// that completes the quorum, or a fix to be tried again, runs the fix
    /// round at once. Every verdict needs at least the approver role, which
    /// is checked here so that no verb can leave it out.
    async fn decide_proposal(
        &self,
        caller: &Caller,
        id: &str,
        verdict: impl FnOnce(
            &mut crate::actions::Proposal,
            time::OffsetDateTime,
        ) -> Result<(), crate::actions::Refusal>,
    ) -> Result<Json<Value>, ApiError> {
        caller.require(Role::Approver)?;
        let _turn = self.pipeline.lock().await;
        let proposals = crate::actions::Proposals {
            store: self.twin.store.as_ref(),
        };
        let mut proposal = proposals
            .get(id)
            .await
            .map_err(|e| ApiError::internal(format!("{e:#}")))?
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("no proposal {id}"),
                )
            })?;
        let now = time::OffsetDateTime::now_utc();
        let outcome = verdict(&mut proposal, now);
        // An expiry found while approving is recorded even though the
        // approval is refused.
        proposals
            .save(&proposal, now)
            .await
            .map_err(|e| ApiError::internal(format!("{e:#}")))?;
        if let Err(refusal) = outcome {
            let status = match refusal {
                crate::actions::Refusal::NotFound(_) => StatusCode::NOT_FOUND,
                crate::actions::Refusal::Role { .. } => StatusCode::FORBIDDEN,
                _ => StatusCode::CONFLICT,
            };
            return Err(ApiError::new(status, "refused", refusal.to_string()));
        }
        tracing::info!(proposal = %id, state = ?proposal.state, "A person decided on a fix");
        if matches!(
            proposal.state,
            crate::actions::State::Approved | crate::actions::State::Proposed
        ) {
            self.act().await;
            if let Ok(Some(latest)) = proposals.get(id).await {
                proposal = latest;
            }
        }
        Ok(Json(json!({"proposal": proposal})))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntityFilter {
    label: String,
}

async fn entities(
    caller: Caller,
    State(service): State<Arc<Service>>,
    Query(filter): Query<EntityFilter>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Viewer)?;
    let nodes = service
        .twin
        .store
        .nodes(&filter.label)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(json!({"entities": nodes})))
}

async fn entity(
    caller: Caller,
    State(service): State<Arc<Service>>,
    Path((label, key)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Viewer)?;
    let store = &service.twin.store;
    let node = NodeRef::new(label, key);
    let found = store.node(&node).await.map_err(ApiError::internal)?;
    let Some(found) = found else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("the twin holds no {node}"),
        ));
    };
    let mut edges = Vec::new();
    for kind in [
        "MEMBER_OF",
        "HAS_PERMISSION",
        "OWNS",
        "IDENTITY_OF",
        "AUTHORED",
        "POSTED_IN",
        "MENTIONS",
        "INVOLVES",
        "CITES",
        "TARGETS",
        "FIXES",
    ] {
        for dir in [Direction::Outgoing, Direction::Incoming] {
            let near = store
                .neighbours(&node, kind, dir)
                .await
                .map_err(ApiError::internal)?;
            edges.extend(
                near.into_iter()
                    .map(|(e, n)| json!({"edge": e, "node": n.node.reference()})),
            );
        }
    }
    let history = store
        .history(&EntityId::Node(node))
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(
        json!({"entity": found, "edges": edges, "history": history}),
    ))
}

async fn plugins(
    caller: Caller,
    State(service): State<Arc<Service>>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Viewer)?;
    let twin = &service.twin;
    let list: Vec<Value> = twin.plugins().iter().map(plugin_status).collect();
    Ok(Json(json!({"plugins": list, "not_loaded": twin.skipped})))
}

/// One plugin instance as `/api/v1/plugins` lists it. Besides the time a
/// quarantine has left, the count of quarantines so far and the length of
/// the latest show how far the doubling backoff has gone, so an operator
/// can tell a plugin that failed once from one that keeps failing.
fn plugin_status(p: &org_mesh_runtime::Plugin) -> Value {
    let stats = p.stats();
    json!({
        "instance": p.instance(),
        "plugin": p.name(),
        "version": p.version(),
        "digest": p.digest(),
        "kind": p.kind().as_str(),
        "capabilities": p.granted().iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        "calls": stats.calls(),
        "failures": stats.failures(),
        "quarantined_for_secs": stats.quarantine_left().map(|d| d.as_secs()),
        "quarantines": stats.quarantines(),
        "quarantine_backoff_secs": stats.quarantine_backoff().map(|d| d.as_secs()),
    })
}

async fn policies(
    caller: Caller,
    State(service): State<Arc<Service>>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Viewer)?;
    let policies = service.twin.policy();
    let shadow = service.twin.shadowing().map(|s| {
        json!({
            "version": s.version(),
            "remaining_secs": s.remaining_secs(),
            "tally": s.tally(),
        })
    });
    Ok(Json(match &policies.set {
        Some(p) => json!({
            "loaded": true,
            "version": policies.version,
            "dir": p.dir(),
            "files": p.files(),
            "tests": p.tests(),
            "evaluator": p.evaluator(),
            "shadow": shadow,
        }),
        None => json!({"loaded": false, "version": policies.version, "shadow": shadow}),
    }))
}

async fn sync(caller: Caller, State(service): State<Arc<Service>>) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    tracing::info!(by = %caller.name, "Sync requested through the API");
    let runs = service
        .sync_all(false)
        .await
        .map_err(|e| ApiError::internal(format!("{e:#}")))?;
    let all_ok = runs.iter().all(|r| r.error.is_none());
    let status = if all_ok {
        StatusCode::OK
    } else {
        StatusCode::BAD_GATEWAY
    };
    Ok((status, Json(json!({"synced": all_ok, "connectors": runs}))).into_response())
}

/// The last reload of the policy folder and of each plugin instance.
async fn reloads(
    caller: Caller,
    State(service): State<Arc<Service>>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(Json(json!({"reloads": service.reloads.list()})))
}

/// Reloads plugins and policies now, for folders no watch can see.
async fn reload(caller: Caller, State(service): State<Arc<Service>>) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    tracing::info!(by = %caller.name, "Reload requested through the API");
    let reports = service.reload(true, true).await;
    let rejected = reports
        .iter()
        .any(|r| r.outcome == crate::reload::Outcome::Rejected);
    let status = if rejected {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({"reloads": reports}))).into_response())
}

async fn openapi() -> Json<Value> {
    Json(super::openapi::document())
}

/// The caller's token name and role, so a client can show only what that
/// role may do.
async fn whoami(caller: Caller) -> Json<Value> {
    Json(json!({"name": caller.name, "role": caller.role}))
}

/// Server-sent events naming the part of the state that changed; see
/// [`super::events`].
async fn events(caller: Caller, State(service): State<Arc<Service>>) -> Result<Response, ApiError> {
    caller.require(Role::Viewer)?;
    let place = service.events.admit().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!(
                "no event stream free: at most {} are open per replica, or the service is stopping",
                super::events::MAX_STREAMS
            ),
        )
    })?;
    tracing::debug!(by = %caller.name, "Event stream opened");
    Ok(super::events::stream(&service, place).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CampaignQuery {
    /// How many of the cited messages to include, oldest first.
    messages: Option<usize>,
}

/// Sample messages a campaign view includes unless asked otherwise.
const CAMPAIGN_MESSAGES: usize = 50;

/// A narrative campaign in one answer: its finding, the accounts it
/// involves, what it targets, the messages it cites (with their authors)
/// and a timeline of messages, evidence and changes of the campaign.
async fn campaign(
    caller: Caller,
    State(service): State<Arc<Service>>,
    Path(fingerprint): Path<String>,
    Query(query): Query<CampaignQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Viewer)?;
    let node = NodeRef::new(crate::campaigns::LABEL, fingerprint.clone());
    let store = &service.twin.store;
    let stored = store.node(&node).await.map_err(ApiError::internal)?;
    let Some(stored) = stored else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no narrative campaign {fingerprint}"),
        ));
    };
    let finding = service
        .fresh_findings()
        .await
        .findings
        .iter()
        .find(|r| r.finding.fingerprint == fingerprint)
        .map(|r| (reported_json(r), r.finding.evidence.clone()));
    let linked = |kind: &'static str| {
        let node = node.clone();
        async move {
            store
                .neighbours(&node, kind, Direction::Outgoing)
                .await
                .map_err(ApiError::internal)
        }
    };
    let accounts: Vec<Value> = linked("INVOLVES")
        .await?
        .into_iter()
        .map(|(_, n)| stored_json(&n))
        .collect();
    let targets: Vec<Value> = linked("TARGETS")
        .await?
        .into_iter()
        .map(|(_, n)| stored_json(&n))
        .collect();
    let mut messages = Vec::new();
    for (_, m) in linked("CITES").await? {
        let authors = store
            .neighbours(&m.node.reference(), "AUTHORED", Direction::Incoming)
            .await
            .map_err(ApiError::internal)?;
        let mut shown = stored_json(&m);
        shown["author"] = authors
            .first()
            .map(|(_, a)| json!(a.node.key))
            .unwrap_or(Value::Null);
        messages.push(shown);
    }
    let at = |v: &Value| {
        v["properties"]["created_at"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    messages.sort_by_key(|m| instant(&m["properties"]["created_at"]));
    let total = messages.len();
    messages.truncate(query.messages.unwrap_or(CAMPAIGN_MESSAGES));

    let mut timeline: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({"at": at(m), "what": "message", "subject": m["key"], "by": m["author"],
                   "text": m["properties"]["title"].as_str().or(m["properties"]["kind"].as_str())})
        })
        .collect();
    let evidence = finding.as_ref().map(|(_, e)| e.as_slice()).unwrap_or(&[]);
    for e in evidence.iter().filter(|e| e.subject.label != "Message") {
        timeline.push(
            json!({"at": rfc3339(e.provenance.first_seen), "what": "evidence",
            "subject": e.subject.to_string(), "source": e.provenance.source, "text": e.statement}),
        );
    }
    let history = store
        .history(&EntityId::Node(node))
        .await
        .map_err(ApiError::internal)?;
    // Only the changes a reader cares about: when the campaign appeared and
    // each change of its severity.
    let mut was = None;
    for h in &history {
        let severity = h
            .after
            .as_ref()
            .and_then(|p| p.get("severity"))
            .and_then(|v| v.as_str());
        if severity.is_some() && severity == was {
            continue;
        }
        was = severity;
        timeline.push(
            json!({"at": rfc3339(h.at), "what": "campaign", "change": h.kind,
            "text": severity.map(|s| format!("severity {s}"))}),
        );
    }
    timeline.sort_by_key(|t| instant(&t["at"]));
    Ok(Json(json!({
        "campaign": stored_json(&stored),
        "finding": finding.map(|(f, _)| f),
        "accounts": accounts,
        "targets": targets,
        "messages": messages,
        "messages_total": total,
        "timeline": timeline,
    })))
}

/// A node with plain JSON properties, for clients that only display them.
fn stored_json(n: &org_mesh_model::StoredNode) -> Value {
    json!({
        "label": n.node.label,
        "key": n.node.key,
        "properties": properties_to_json(&n.node.properties),
        "provenance": n.provenance,
    })
}

/// A time the API shows, for ordering: offsets differ between sources, so
/// their texts do not sort.
fn instant(v: &Value) -> Option<org_mesh_model::Timestamp> {
    let text = v.as_str()?;
    org_mesh_model::Timestamp::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

fn rfc3339(at: org_mesh_model::Timestamp) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use org_mesh_cache::memory::MemoryCoordination;
    use org_mesh_model::ChangeSet;
    use org_mesh_runtime::{Grants, Limits, Manifest, Runtime, RuntimeOptions};
    use serde_json::json;

    use super::plugin_status;

    /// Needs `.ci/build-plugins` for `conformance/dist/misbehaving`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_quarantined_plugin_shows_its_quarantine_and_backoff() {
        let runtime = Runtime::new(
            RuntimeOptions {
                limits: Limits {
                    cpu: Duration::from_millis(500),
                    ..Limits::default()
                },
                quarantine_after: 2,
                quarantine_base: Duration::from_secs(600),
                ..RuntimeOptions::default()
            },
            Arc::new(MemoryCoordination::default()),
            None,
            &prometheus::Registry::new(),
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
        let manifest = org_mesh_harness::root().join("conformance/dist/misbehaving/manifest.yaml");
        let manifest = Manifest::load(&manifest)
            .unwrap_or_else(|e| panic!("{e}: run .ci/build-plugins first"));
        let loaded = runtime
            .load(manifest)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let bind = |mode: &str| {
            loaded
                .bind("noisy", &json!({ "mode": mode }), Grants::default())
                .unwrap_or_else(|e| panic!("{e:?}"))
        };

        let status = plugin_status(&bind("trap"));
        assert_eq!(status["quarantined_for_secs"], json!(null));
        assert_eq!(status["quarantines"], json!(0));
        assert_eq!(status["quarantine_backoff_secs"], json!(null));

        for _ in 0..2 {
            assert!(
                bind("trap")
                    .detect(true, &ChangeSet::default())
                    .await
                    .is_err()
            );
        }
        let status = plugin_status(&bind("ok"));
        assert_eq!(status["instance"], json!("noisy"));
        assert_eq!(status["failures"]["trap"], json!(2));
        assert_eq!(status["quarantines"], json!(1));
        assert_eq!(status["quarantine_backoff_secs"], json!(600));
        let left = status["quarantined_for_secs"].as_u64().unwrap_or_default();
        assert!(left > 0 && left <= 600, "{status}");
    }
}
