//! Switchboard, the web console, served at `/` from files compiled into the
//! binary (`host/app/console/`), so it works offline and a deployment has
//! nothing to copy beside the binary.
//!
//! The page holds no secret of the service: it signs in with an API token
//! kept in the tab's `sessionStorage` and sent as `Authorization: Bearer`
//! by its own requests. No cookie is ever set, so another site cannot make
//! a browser send an authenticated request (there is nothing to forge), and
//! the API's role checks are the only access control. The policy below
//! allows scripts and styles from this origin only, so text an attacker
//! wrote (message bodies) cannot run even if it reached the page as markup.

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use super::Service;

const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_bytes!(concat!("../../console/", $name)),
        }
    };
}

const INDEX: Asset = asset!("index.html", "text/html; charset=utf-8");

const JS: &str = "text/javascript; charset=utf-8";
const ASSETS: [Asset; 8] = [
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("findings.js", JS),
    asset!("proposals.js", JS),
    asset!("pages.js", JS),
];

/// Each asset's validator: the page revalidates on every load and gets a
/// 304 while the binary is the same.
static TAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| format!("\"{}\"", hex::encode(&Sha256::digest(a.body)[..12])))
        .collect()
});

pub fn routes() -> Router<Arc<Service>> {
    Router::new()
        .route("/", get(index))
        .route("/console/{name}", get(asset))
}

fn guarded(mut headers: HeaderMap, content_type: &'static str) -> HeaderMap {
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
}

/// The page itself is never cached, so a new binary's page (and so its
/// assets) shows on the next load.
async fn index() -> Response {
    let mut headers = guarded(HeaderMap::new(), INDEX.content_type);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    (headers, INDEX.body).into_response()
}

async fn asset(Path(name): Path<String>, request: HeaderMap) -> Response {
    let Some((found, tag)) = ASSETS.iter().zip(TAGS.iter()).find(|(a, _)| a.name == name) else {
        return super::api::not_found().await.into_response();
    };
    let tag = tag.as_str();
    let mut headers = guarded(HeaderMap::new(), found.content_type);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(tag) {
        headers.insert(header::ETAG, value);
    }
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (headers, found.body).into_response()
}
