//! Requests that arrive too slowly or too large, sent over raw TCP to a
//! running `serve` with one-second deadlines: a head never finished is cut
//! off, a body that stalls is answered 408, and a body declared over the
//! limit is answered 413 at once, without waiting for it, and a
//! compressed body 415. Each answer has
//! the shape its part of the service uses, and the service goes on
//! answering with what it had accepted before.
//!
//! Needs `.ci/setup` and `.ci/build-plugins`.

#![expect(clippy::panic, reason = "helpers of a test fail it by panicking")]

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Far beyond the one-second deadlines: only a server that never answers
/// reaches it.
const NO_ANSWER: Duration = Duration::from_secs(30);

/// Writes `request` and reads until the server closes the connection; the
/// answer's status and body, or `None` for a close without an answer.
async fn exchange(base: &str, request: &[u8]) -> Option<(u16, Value)> {
    let address = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address)
        .await
        .unwrap_or_else(|e| panic!("{address}: {e}"));
    stream
        .write_all(request)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut answer = Vec::new();
    tokio::time::timeout(NO_ANSWER, stream.read_to_end(&mut answer))
        .await
        .unwrap_or_else(|_| panic!("no answer and no close within {NO_ANSWER:?}"))
        .unwrap_or_else(|e| panic!("{e}"));
    if answer.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| serde_json::from_str(body).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    Some((status, body))
}

fn scim_user(name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name,
        "active": true,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_oversized_requests_are_cut_off_and_the_service_goes_on() {
    let server = start_with(&[
        ("ORG_MESH_SERVE__HEAD_TIMEOUT_SECS", "1"),
        ("ORG_MESH_SERVE__BODY_TIMEOUT_SECS", "1"),
    ])
    .await;
    let http = client();
    let users = format!("{}/scim/v2/okta/Users", server.base);
    let created = http
        .post(&users)
        .bearer_auth(SCIM_TOKEN)
        .header("content-type", "application/scim+json")
        .body(scim_user("kept@example.com").to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(created.status(), 201);

    // A head never finished: the connection is closed.
    assert_eq!(
        exchange(&server.base, b"GET /healthz HTTP/1.1\r\nhost: x\r\n").await,
        None
    );

    // A body that stalls: 408, in each part's error shape.
    let (status, body) = exchange(
        &server.base,
        format!(
            "POST /scim/v2/okta/Users HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {SCIM_TOKEN}\r\ncontent-type: application/scim+json\r\ncontent-length: 100\r\n\r\n{{\"us"
        )
        .as_bytes(),
    )
    .await
    .unwrap_or_else(|| panic!("no answer to a stalled SCIM body"));
    assert_eq!(status, 408, "{body}");
    assert_eq!(body["status"], "408", "{body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("within 1 s")),
        "{body}"
    );
    let (status, body) = exchange(
        &server.base,
        b"POST /webhooks/github/github HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{",
    )
    .await
    .unwrap_or_else(|| panic!("no answer to a stalled webhook body"));
    assert_eq!(status, 408, "{body}");
    assert_eq!(body["error"]["code"], "request_timeout", "{body}");

    // A body declared over the limit: 413 before any of it arrives.
    let (status, body) = exchange(
        &server.base,
        format!(
            "POST /scim/v2/okta/Users HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {SCIM_TOKEN}\r\ncontent-type: application/scim+json\r\ncontent-length: 999999999\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap_or_else(|| panic!("no answer to an oversized SCIM body"));
    assert_eq!(status, 413, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("999999999 bytes; this server accepts at most 262144")),
        "{body}"
    );
    let (status, body) = exchange(
        &server.base,
        b"POST /api/v1/proposals/x/approve HTTP/1.1\r\nhost: x\r\ncontent-length: 999999999\r\n\r\n",
    )
    .await
    .unwrap_or_else(|| panic!("no answer to an oversized API body"));
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");

    // A body over the limit with no declared length: 413 once the limit
    // is passed.
    let over = "x".repeat(300_000);
    let chunked = format!(
        "POST /webhooks/github/github HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{over}\r\n0\r\n\r\n",
        over.len()
    );
    let (status, body) = exchange(&server.base, chunked.as_bytes())
        .await
        .unwrap_or_else(|| panic!("no answer to a chunked oversized body"));
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("limit of 262144 bytes")),
        "{body}"
    );

    // A compressed body is refused by name, not read as malformed JSON.
    let (status, body) = exchange(
        &server.base,
        b"POST /webhooks/github/github HTTP/1.1\r\nhost: x\r\ncontent-encoding: gzip\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
    )
    .await
    .unwrap_or_else(|| panic!("no answer to a compressed body"));
    assert_eq!(status, 415, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Content-Encoding gzip")),
        "{body}"
    );

    // The service goes on, with what it accepted.
    let (status, _) = get_json(&http, &format!("{}/healthz", server.base), None).await;
    assert_eq!(status, 200);
    let found = http
        .get(format!(
            "{users}?filter=userName%20eq%20%22kept@example.com%22"
        ))
        .bearer_auth(SCIM_TOKEN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let list: Value = found.json().await.unwrap_or_default();
    assert_eq!(list["totalResults"], 1, "{list}");
}
