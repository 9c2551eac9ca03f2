//! `/webhooks/github/<connector>` and `/webhooks/gitlab/<connector>`.
//!
//! The host authenticates every delivery before any plugin sees it: GitHub
//! signs the raw body with HMAC-SHA256 (`X-Hub-Signature-256`), GitLab sends
//! the shared secret in `X-Gitlab-Token`; both are compared in constant
//! time. A delivery is claimed by its id (GitHub's `X-GitHub-Delivery`,
//! GitLab's `Idempotency-Key`) in the shared state before its connector
//! sees it, so one sent twice, to one replica or to two, is accepted once.
//! An accepted delivery is queued; the answer means it will reach the
//! twin, not that it already has.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hmac::{Hmac, Mac};
use org_mesh_runtime::Incoming;
use sha2::Sha256;

use super::Service;
use super::api::ApiError;
use super::auth::same_secret;
use crate::config::WebhookProvider;
use org_mesh_cache::Claim;

pub fn routes() -> Router<Arc<Service>> {
    Router::new()
        .route("/webhooks/github/{connector}", post(github))
        .route("/webhooks/gitlab/{connector}", post(gitlab))
}

fn unauthorised(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

/// The secret of a connector's webhook route of this provider.
fn secret<'s>(
    service: &'s Service,
    connector: &str,
    provider: WebhookProvider,
) -> Result<&'s str, ApiError> {
    match service.webhooks.get(connector) {
        Some((p, secret)) if *p == provider => Ok(secret),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no {provider:?} webhook is configured for connector {connector:?}")
                .to_lowercase(),
        )),
    }
}

/// Checks `sha256=<hex>` against the HMAC of the raw body.
pub fn verify_github_signature(
    secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), &'static str> {
    let header = header.ok_or("X-Hub-Signature-256 is missing")?;
    let hex_digest = header
        .strip_prefix("sha256=")
        .ok_or("X-Hub-Signature-256 does not start with sha256=")?;
    let expected = hex::decode(hex_digest).map_err(|_| "X-Hub-Signature-256 is not hex")?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret).map_err(|_| "the webhook secret is unusable")?;
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| "X-Hub-Signature-256 does not match the body")
}

fn count(service: &Service, connector: &str, outcome: &str) {
    service
        .metrics
        .webhook_deliveries
        .with_label_values(&[connector, outcome])
        .inc();
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn github(
    State(service): State<Arc<Service>>,
    Path(connector): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = secret(&service, &connector, WebhookProvider::Github)?;
    let counted = |outcome: &str| count(&service, &connector, outcome);
    if let Err(why) = verify_github_signature(
        key.as_bytes(),
        &body,
        header(&headers, "x-hub-signature-256"),
    ) {
        counted("unauthorized");
        tracing::warn!(%connector, why, "Refused a webhook delivery");
        return Err(unauthorised(why));
    }
    // GitHub sends an id with every delivery, and it is what tells a
    // redelivery from a new event; without it a resend would be recorded
    // twice.
    let Some(delivery) = header(&headers, "x-github-delivery").filter(|id| !id.trim().is_empty())
    else {
        counted("rejected");
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "X-GitHub-Delivery is missing or empty; GitHub sends it with every delivery",
        ));
    };
    once(
        &service,
        &connector,
        Some(delivery),
        deliver(&service, &connector, &headers, body),
    )
    .await
}

async fn gitlab(
    State(service): State<Arc<Service>>,
    Path(connector): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = secret(&service, &connector, WebhookProvider::Gitlab)?;
    let counted = |outcome: &str| count(&service, &connector, outcome);
    let token = header(&headers, "x-gitlab-token").unwrap_or_default();
    if token.is_empty() || !same_secret(token.as_bytes(), key.as_bytes()) {
        counted("unauthorized");
        tracing::warn!(%connector, "Refused a webhook delivery: X-Gitlab-Token missing or wrong");
        return Err(unauthorised("X-Gitlab-Token is missing or wrong"));
    }
    let delivery = header(&headers, "idempotency-key");
    once(
        &service,
        &connector,
        delivery,
        deliver(&service, &connector, &headers, body),
    )
    .await
}

/// How long a claimed delivery may take to be queued before another
/// attempt to send it is accepted instead.
const CLAIM_HOLD: Duration = Duration::from_secs(60);
/// How long an accepted delivery id is remembered. GitHub and GitLab
/// redeliver within days at most.
const REMEMBERED: Duration = Duration::from_secs(7 * 24 * 3600);

/// Runs `accept` unless the delivery `id` was accepted before or is being
/// accepted now. Deliveries without an id are accepted every time.
async fn once(
    service: &Service,
    connector: &str,
    id: Option<&str>,
    accept: impl Future<Output = Result<Response, ApiError>>,
) -> Result<Response, ApiError> {
    let counted = |outcome: &str| count(service, connector, outcome);
    let Some(id) = id.filter(|id| !id.is_empty()) else {
        return accept.await;
    };
    let key = format!("{connector}/{id}");
    match service
        .shared
        .coordination
        .claim_delivery(&key, CLAIM_HOLD)
        .await
    {
        Err(e) => {
            service.health.cache_failed(&e);
            counted("failed");
            Err(degraded(&e))
        }
        Ok(Claim::Done) => {
            counted("duplicate");
            Ok((
                StatusCode::OK,
                axum::Json(serde_json::json!({"duplicate": true})),
            )
                .into_response())
        }
        Ok(Claim::InProgress) => {
            counted("duplicate");
            Err(ApiError::new(
                StatusCode::CONFLICT,
                "in_progress",
                format!(
                    "delivery {id} is being accepted right now; send it again if this attempt fails"
                ),
            ))
        }
        Ok(Claim::New) => {
            let answer = accept.await;
            let settled = if answer.is_ok() {
                service
                    .shared
                    .coordination
                    .finish_delivery(&key, REMEMBERED)
                    .await
            } else {
                service.shared.coordination.release_delivery(&key).await
            };
            if let Err(e) = settled {
                // Queued or refused all the same; the claim lapses by
                // itself, after which a resend is accepted again, which the
                // twin takes as the same observation.
                tracing::warn!(%connector, delivery = %id, error = %e, "Cannot settle a delivery claim");
            }
            answer
        }
    }
}

fn degraded(e: &org_mesh_cache::CacheError) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "degraded",
        format!(
            "the cache does not answer, so deliveries cannot be accepted now; send it again later ({e})"
        ),
    )
}

/// Hands an authenticated delivery to its connector and queues what it
/// yields. A malformed payload is the connector's to reject: its error comes
/// back as a 400 and nothing is queued.
async fn deliver(
    service: &Service,
    connector: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let counted = |outcome: &str| count(service, connector, outcome);
    let plugin = service.twin.connector(connector).ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("connector {connector:?} is not loaded; see /api/v1/plugins"),
        )
    })?;
    let request = Incoming {
        method: "POST".into(),
        path: "/".into(),
        headers: headers
            .iter()
            .filter(|(name, _)| {
                !matches!(name.as_str(), "authorization" | "x-gitlab-token" | "cookie")
            })
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect(),
        body: body.to_vec(),
    };
    let handled = match plugin.handle(&request).await {
        Ok(h) => h,
        Err(e) => {
            counted("rejected");
            tracing::warn!(%connector, error = %e, "Webhook delivery rejected");
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "rejected",
                e.to_string(),
            ));
        }
    };
    for s in &handled.skipped {
        tracing::warn!(%connector, skipped = %s, "Record from a webhook left out");
    }
    service
        .accept(connector, handled.batch)
        .await
        .map_err(|e| {
            counted("failed");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "degraded",
                format!("the delivery could not be queued; send it again later: {e:#}"),
            )
        })?;
    counted("accepted");
    let status = StatusCode::from_u16(handled.status).unwrap_or(StatusCode::ACCEPTED);
    let kind = [(header::CONTENT_TYPE, body_type(&handled.body))];
    Ok((status, kind, handled.body).into_response())
}

/// The media type of a connector's answer, which the plugin interface does
/// not carry: the connectors answer JSON, and anything else is passed on as
/// text or bytes.
fn body_type(body: &[u8]) -> &'static str {
    if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
        "application/json"
    } else if std::str::from_utf8(body).is_ok() {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_signatures_are_checked_against_the_raw_body() {
        let secret = b"It's a Secret to Everybody";
        let body = b"Hello, World!";
        let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(verify_github_signature(secret, body, Some(good)), Ok(()));
        assert!(verify_github_signature(secret, b"Hello, World?", Some(good)).is_err());
        assert!(verify_github_signature(secret, body, None).is_err());
        assert!(verify_github_signature(secret, body, Some("sha1=abc")).is_err());
        assert!(verify_github_signature(secret, body, Some("sha256=zz")).is_err());
    }
}
