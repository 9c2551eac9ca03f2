//! Cassettes: the host calls of one connector call. Its HTTP exchanges
//! are recorded once through a forwarding server on 127.0.0.1 and replayed
//! later by the strict scripted [`Server`](crate::Server), with no upstream
//! at all.
//!
//! The host's HTTP client is not swapped for this: the plugin is pointed
//! at the [`Recorder`] (or, on replay, at the scripted server) by its
//! config, so the recorded bytes went through the real host, allow list and
//! credential injection included. Request headers are not kept, so a
//! cassette holds no credential. The upstream's base URL is stored as
//! [`BASE`] and put back as the replaying server's own, so links such as
//! GitHub's `Link` pagination point at whichever server answers.
//!
//! A cassette may also hold the call's key-value calls and clock readings.
//! Those are host calls this crate cannot see from a socket; the
//! conformance suite records them in the host and replays them there.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use org_mesh_plugin::http::Request;
use org_mesh_plugin::rest::Transport;

use crate::{IO_TIMEOUT, Received, Step, Wire, expect, read_request, write_response};

/// Stands for the base URL of the server that answers.
pub const BASE: &str = "{base}";

/// Answer headers worth keeping: what clients act on. Dates, cookies and
/// request ids would only make two recordings differ.
const KEPT_HEADERS: &[&str] = &[
    "content-type",
    "etag",
    "link",
    "retry-after",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-ratelimit-used",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cassette {
    /// In the order they were made.
    pub exchanges: Vec<Exchange>,
    /// The plugin's key-value calls, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kv: Vec<KvCall>,
    /// Every clock reading the plugin made, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clock: Vec<ClockReading>,
}

/// One call on the plugin's key-value store and what it answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op", deny_unknown_fields)]
pub enum KvCall {
    Get {
        key: String,
        /// The value found; absent when there was none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        found: Option<Bytes>,
    },
    Set {
        key: String,
        value: Bytes,
    },
    Delete {
        key: String,
    },
}

impl KvCall {
    /// The call without its answer, to name it in a mismatch.
    pub fn describe(&self) -> String {
        match self {
            KvCall::Get { key, .. } => format!("get {key:?}"),
            KvCall::Set { key, value } => format!("set {key:?} to {}", value.describe()),
            KvCall::Delete { key } => format!("delete {key:?}"),
        }
    }
}

/// A stored value: as text when it is UTF-8, which keeps cassettes
/// readable, otherwise as hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Bytes {
    Text(String),
    Hex { hex: String },
}

impl Bytes {
    pub fn new(raw: &[u8]) -> Bytes {
        match std::str::from_utf8(raw) {
            Ok(text) => Bytes::Text(text.to_string()),
            Err(_) => Bytes::Hex {
                hex: raw.iter().map(|b| format!("{b:02x}")).collect(),
            },
        }
    }

    /// The raw bytes; `None` for hex that does not decode.
    pub fn raw(&self) -> Option<Vec<u8>> {
        match self {
            Bytes::Text(text) => Some(text.as_bytes().to_vec()),
            Bytes::Hex { hex } => {
                if hex.len() % 2 != 0 {
                    return None;
                }
                (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                    .collect()
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Bytes::Text(text) if text.len() <= 40 => format!("{text:?}"),
            Bytes::Text(text) => format!("{} byte(s) of text", text.len()),
            Bytes::Hex { hex } => format!("{} byte(s)", hex.len() / 2),
        }
    }
}

/// One reading of a clock. Values are the recording's own time, so two
/// recordings agree on the kinds and order of readings, not on the values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ClockReading {
    /// Nanoseconds since the Unix epoch.
    WallNs(u64),
    /// Nanoseconds on the monotonic clock.
    MonotonicNs(u64),
}

impl ClockReading {
    pub fn kind(&self) -> &'static str {
        match self {
            ClockReading::WallNs(_) => "wall",
            ClockReading::MonotonicNs(_) => "monotonic",
        }
    }
}

/// One request and the answer it got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    pub method: String,
    /// The path with its query, below the base URL.
    pub target: String,
    /// The request's JSON body, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Json>,
    pub status: u16,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The answer's body as text, the base URL written as [`BASE`].
    pub answer: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CassetteError {
    #[error("cannot read cassette {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("cassette {path} is malformed: {error}")]
    Malformed {
        path: String,
        error: serde_json::Error,
    },
    #[error("cannot write cassette {path}: {error}")]
    Write { path: String, error: std::io::Error },
    #[error("recording failed: {0}")]
    Recording(String),
}

impl Cassette {
    pub fn load(path: &Path) -> Result<Cassette, CassetteError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| CassetteError::Read {
            path: name.clone(),
            error,
        })?;
        serde_json::from_str(&text).map_err(|error| CassetteError::Malformed { path: name, error })
    }

    /// Pretty JSON with a final newline, so that a new recording diffs
    /// line by line against the committed one.
    pub fn save(&self, path: &Path) -> Result<(), CassetteError> {
        let write = |error| CassetteError::Write {
            path: path.display().to_string(),
            error,
        };
        let mut text = serde_json::to_string_pretty(self).map_err(|e| write(e.into()))?;
        text.push('\n');
        std::fs::write(path, text).map_err(write)
    }

    /// The script that replays this cassette from a server at `base`.
    pub fn steps(&self, base: &str) -> Vec<Step> {
        self.exchanges
            .iter()
            .map(|x| {
                let mut step = expect(&x.method, &x.target);
                if let Some(body) = &x.body {
                    step = step.body(body.clone());
                }
                step = step.answer_text(x.status, &x.answer.replace(BASE, base));
                for (name, value) in &x.headers {
                    step = step.answer_header(name, &value.replace(BASE, base));
                }
                step
            })
            .collect()
    }
}

/// A forwarding server on 127.0.0.1 that sends every request on to the
/// upstream and writes down each exchange.
#[derive(Debug)]
pub struct Recorder {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<Vec<Exchange>, String>>>,
}

impl Recorder {
    /// `upstream` is a base URL on 127.0.0.1, such as a replay scenario's
    /// API root.
    pub fn start(upstream: &str) -> std::io::Result<Recorder> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let upstream = upstream.trim_end_matches('/').to_string();
        let own = format!("http://{address}");
        let thread = std::thread::spawn(move || forward_all(&listener, &upstream, &own, &flag));
        Ok(Recorder {
            address,
            stop,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:<port>`: the base URL to give the plugin.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn finish(mut self) -> Result<Cassette, CassetteError> {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.address, IO_TIMEOUT);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(Ok(exchanges))) => Ok(Cassette {
                exchanges,
                kv: Vec::new(),
                clock: Vec::new(),
            }),
            Some(Ok(Err(e))) => Err(CassetteError::Recording(e)),
            _ => Err(CassetteError::Recording(
                "the recorder thread failed".into(),
            )),
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect_timeout(&self.address, IO_TIMEOUT);
        }
    }
}

fn forward_all(
    listener: &TcpListener,
    upstream: &str,
    own: &str,
    stop: &AtomicBool,
) -> Result<Vec<Exchange>, String> {
    let mut exchanges = Vec::new();
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let mut stream = stream.map_err(|e| format!("accept: {e}"))?;
        let received = read_request(&stream).map_err(|e| format!("reading a request: {e}"))?;
        let exchange = forward(&received, upstream)?;
        let answer = exchange.answer.replace(BASE, own);
        let headers: Vec<(String, String)> = exchange
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.replace(BASE, own)))
            .collect();
        write_response(&mut stream, exchange.status, &headers, answer.as_bytes())
            .map_err(|e| format!("answering {} {}: {e}", received.method, received.target))?;
        exchanges.push(exchange);
    }
    Ok(exchanges)
}

/// Sends one request upstream with the plugin's headers, and keeps the
/// exchange with the upstream's base URL written as [`BASE`].
fn forward(received: &Received, upstream: &str) -> Result<Exchange, String> {
    let what = format!("{} {}", received.method, received.target);
    let headers = received
        .headers
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "host" | "content-length" | "connection"))
        .cloned()
        .collect();
    let request = Request {
        method: received.method.clone(),
        url: format!("{upstream}{}", received.target),
        headers,
        body: (!received.body.is_empty()).then(|| received.body.clone()),
        auth: None,
    };
    let response = Wire::new()
        .send(&request)
        .map_err(|e| format!("forwarding {what}: {e:?}"))?;
    let body = if received.body.is_empty() {
        None
    } else {
        Some(
            serde_json::from_slice(&received.body)
                .map_err(|e| format!("{what}: the request body is not JSON: {e}"))?,
        )
    };
    Ok(Exchange {
        method: received.method.clone(),
        target: received.target.clone(),
        body,
        status: response.status,
        headers: response
            .headers
            .iter()
            .filter(|(k, _)| KEPT_HEADERS.contains(&k.to_ascii_lowercase().as_str()))
            .map(|(k, v)| (k.to_ascii_lowercase(), stable(v, upstream)))
            .collect(),
        answer: stable(&String::from_utf8_lossy(&response.body), upstream),
    })
}

/// `text` with the upstream's base URL written as [`BASE`], and with the
/// other hosts a replay stands in for put back. A replay that serves
/// `http://127.0.0.1:PORT/api.github.com/SESSION` also rewrites links to
/// other hosts as `http://127.0.0.1:PORT/HOST/SESSION/...`; the port and
/// session change with every run, so they are written back as
/// `https://HOST/...` and two recordings of the same traffic are equal.
fn stable(text: &str, upstream: &str) -> String {
    let text = text.replace(upstream, BASE);
    let Some((origin, session)) = upstream
        .rsplit_once('/')
        .and_then(|(rest, session)| Some((rest.rsplit_once('/')?.0, session)))
    else {
        return text;
    };
    let prefix = format!("{origin}/");
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find(&prefix) {
        out.push_str(&rest[..at]);
        let after = &rest[at + prefix.len()..];
        match after.split_once('/') {
            Some((host, tail)) if !host.is_empty() && ends_session(tail, session) => {
                out.push_str("https://");
                out.push_str(host);
                rest = &tail[session.len()..];
            }
            _ => {
                out.push_str(&prefix);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether `tail` starts with the whole session id, not a longer one.
fn ends_session(tail: &str, session: &str) -> bool {
    tail.strip_prefix(session)
        .is_some_and(|r| !r.starts_with(|c: char| c.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_addresses_become_the_hosts_they_stand_for() {
        let upstream = "http://127.0.0.1:4000/api.github.com/s1";
        let text = "{\"url\":\"http://127.0.0.1:4000/api.github.com/s1/users/x\",\"html\":\"http://127.0.0.1:4000/github.com/s1/x\",\"other\":\"http://127.0.0.1:4000/github.com/s2/y\"}";
        assert_eq!(
            stable(text, upstream),
            "{\"url\":\"{base}/users/x\",\"html\":\"https://github.com/x\",\"other\":\"http://127.0.0.1:4000/github.com/s2/y\"}"
        );
    }
}
