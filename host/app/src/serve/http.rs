//! The HTTP server under the router: it accepts connections, bounds how
//! long a client may take to send a request, and drains connections on
//! shutdown.
//!
//! A client that opens a connection and never finishes its request would
//! otherwise hold a connection and a file descriptor for as long as it
//! likes, and enough of them starve the process; `axum::serve` sets no
//! such bound, so the loop is here.

use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use org_mesh_scim::{ScimError, ScimType};
use tokio::net::TcpListener;

use super::api::ApiError;

/// Serves `app` on `listener` until `stop` resolves, then stops accepting
/// and waits for the connections' requests in flight to finish. A
/// connection gets `head_deadline` to send each request's head, counted
/// from when the server is ready to read it, so an idle kept-alive
/// connection is closed after as long.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    head_deadline: Duration,
    stop: impl Future<Output = ()>,
) {
    let connections = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) if refused_by_peer(&e) => continue,
                Err(e) => {
                    // Out of file descriptors, most likely: accepting again
                    // at once would spin.
                    tracing::error!(error = %e, "Cannot accept a connection; trying again in a second");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "Cannot turn off Nagle's algorithm");
        }
        let service = TowerToHyperService::new(app.clone());
        let watcher = connections.watcher();
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(head_deadline)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(%peer, error = %e, "A connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.shutdown().await;
}

/// Errors of one connection that the peer caused; the listener is fine.
fn refused_by_peer(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Takes in every request's body before it is routed. It is refused at
/// once if it is compressed or its declared length is over `limit`, once
/// more than `limit` bytes arrived without a declared length, and if it is
/// not all there within `deadline`, whatever its pace: a body trickled a
/// byte at a time must not hold a request open. Every handler reads its
/// body whole, so reading it here first costs no memory a handler would
/// not have used. SCIM clients get the SCIM error shape, everyone else the
/// API's.
pub async fn take_in(limit: usize, deadline: Duration, request: Request, next: Next) -> Response {
    let scim = request.uri().path().starts_with("/scim/");
    // Nothing here decodes a compressed body, and read as it is it would
    // be refused as malformed JSON, which names the wrong problem.
    if let Some(encoding) = request
        .headers()
        .get(header::CONTENT_ENCODING)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
        .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("identity"))
    {
        return refused(
            scim,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Encoding {encoding} is not accepted; send the body uncompressed"),
        );
    }
    if let Some(declared) = declared_length(request.headers())
        && declared > limit as u64
    {
        return too_large(
            scim,
            format!("the request body is {declared} bytes; this server accepts at most {limit}"),
        );
    }
    let (parts, body) = request.into_parts();
    let read = tokio::time::timeout(deadline, axum::body::to_bytes(body, limit)).await;
    let bytes: Bytes = match read {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) if is_over_limit(&e) => {
            return too_large(
                scim,
                format!("the request body is over this server's limit of {limit} bytes"),
            );
        }
        Ok(Err(e)) => {
            return refused(
                scim,
                StatusCode::BAD_REQUEST,
                format!("the request body could not be read: {e}"),
            );
        }
        Err(_) => {
            return refused(
                scim,
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} s",
                    deadline.as_secs()
                ),
            );
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn is_over_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(error) = source {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = error.source();
    }
    false
}

fn too_large(scim: bool, message: String) -> Response {
    refused(scim, StatusCode::PAYLOAD_TOO_LARGE, message)
}

fn refused(scim: bool, status: StatusCode, message: String) -> Response {
    let mut answer = if scim {
        match status {
            StatusCode::PAYLOAD_TOO_LARGE => ScimError::PayloadTooLarge(message),
            StatusCode::REQUEST_TIMEOUT => ScimError::RequestTimeout(message),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ScimError::UnsupportedMediaType(message),
            _ => ScimError::BadRequest {
                scim_type: Some(ScimType::InvalidSyntax),
                detail: message,
            },
        }
        .into_response()
    } else {
        ApiError::new(status, super::api::code_of(status), message).into_response()
    };
    // The body was not read to its end, so the connection cannot carry
    // another request.
    answer.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    answer
}
