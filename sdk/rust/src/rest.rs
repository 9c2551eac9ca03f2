//! A JSON REST client for GitHub-style APIs over the host's `http` import.
//!
//! It adds a base URL, default headers and host-side authentication by a
//! named secret (the plugin never sees the credential), follows
//! `Link: <...>; rel="next"` pagination, and waits out rate limits the way
//! GitHub asks clients to: a primary limit (`x-ratelimit-remaining: 0`) until
//! `x-ratelimit-reset`, a secondary limit (403/429 with `retry-after`, or a
//! 403 saying so) for `retry-after`. Waits longer than the policy allows come
//! back as [`RestError::RateLimited`] so the host can reschedule the call.
//! When the policy allows it, a GET or HEAD answered with a 5xx is sent again
//! after a doubling wait; other methods never are, since the client cannot
//! know whether the server acted before it failed.
//!
//! All I/O goes through [`Transport`], so the same client runs natively in
//! unit tests with a scripted transport.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::DeserializeOwned;

use crate::http::{self, Auth, AuthScheme, Request, Response};
use crate::types::PluginError;

/// What the client needs from its surroundings.
pub trait Transport {
    fn send(&self, request: &Request) -> Result<Response, http::Error>;

    /// Seconds since the Unix epoch.
    fn now_unix_secs(&self) -> u64;

    fn sleep_secs(&self, secs: u64);

    /// Reports a wait or retry the client decided on by itself.
    fn warn(&self, message: &str, fields: &[(&str, String)]);

    /// What the client stored under `key` for conditional requests; `None`
    /// when nothing is, or the transport keeps nothing.
    fn cache_get(&self, _key: &str) -> Option<Vec<u8>> {
        None
    }

    /// Stores a value for [`Transport::cache_get`]. Keeping nothing is
    /// correct, only slower.
    fn cache_put(&self, _key: &str, _value: &[u8]) {}
}

/// The real transport: the host's `http` and `log` imports and the WASI
/// clocks.
#[derive(Debug, Default, Clone, Copy)]
pub struct HostTransport;

impl Transport for HostTransport {
    fn send(&self, request: &Request) -> Result<Response, http::Error> {
        http::send(request)
    }

    fn now_unix_secs(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    fn sleep_secs(&self, secs: u64) {
        std::thread::sleep(std::time::Duration::from_secs(secs));
    }

    fn warn(&self, message: &str, fields: &[(&str, String)]) {
        let fields: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect();
        crate::log::emit(crate::log::Level::Warn, message, &fields);
    }
}

/// [`HostTransport`] with the plugin's key-value store as the cache for
/// [`Client::conditional_requests`]. A separate type because using it makes
/// the component import `kv`, which its manifest must then ask for.
#[derive(Debug, Default, Clone, Copy)]
pub struct CachingHostTransport;

impl Transport for CachingHostTransport {
    fn send(&self, request: &Request) -> Result<Response, http::Error> {
        HostTransport.send(request)
    }

    fn now_unix_secs(&self) -> u64 {
        HostTransport.now_unix_secs()
    }

    fn sleep_secs(&self, secs: u64) {
        HostTransport.sleep_secs(secs);
    }

    fn warn(&self, message: &str, fields: &[(&str, String)]) {
        HostTransport.warn(message, fields);
    }

    /// A failure reads as nothing stored.
    fn cache_get(&self, key: &str) -> Option<Vec<u8>> {
        match crate::kv::get(key) {
            Ok(value) => value,
            Err(e) => {
                self.warn(
                    "Cannot read the conditional-request cache",
                    &[("error", format!("{e:?}"))],
                );
                None
            }
        }
    }

    fn cache_put(&self, key: &str, value: &[u8]) {
        if let Err(e) = crate::kv::set(key, value) {
            self.warn(
                "Cannot write the conditional-request cache",
                &[("error", format!("{e:?}"))],
            );
        }
    }
}

/// How long and how often the client waits on rate limits before giving up.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// The longest single wait; anything longer is returned as
    /// [`RestError::RateLimited`] at once.
    pub max_wait_secs: u64,
    /// Waits for a secondary limit before giving up.
    pub secondary_retries: u32,
    /// Waits for the primary limit to reset before giving up.
    pub primary_retries: u32,
    /// The wait when a limit is signalled without saying for how long; GitHub
    /// asks for at least a minute.
    pub default_wait_secs: u64,
    /// Resends of a GET or HEAD answered with a 5xx before the answer is
    /// returned as [`RestError::Status`]. 0 by default, so a client waits on
    /// server errors only when its author asks for it.
    pub server_error_retries: u32,
    /// The wait before the first such resend; each further one doubles, and
    /// a longer `retry-after` from the server wins.
    pub server_error_backoff_secs: u64,
}

impl RetryPolicy {
    /// The wait before resend number `retry` (from 0) after a server error,
    /// never above `max_wait_secs`.
    pub fn server_error_wait_secs(&self, retry: u32) -> u64 {
        let factor = 1u64.checked_shl(retry).unwrap_or(u64::MAX);
        self.server_error_backoff_secs
            .saturating_mul(factor)
            .min(self.max_wait_secs)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_wait_secs: 60,
            secondary_retries: 3,
            primary_retries: 2,
            default_wait_secs: 60,
            server_error_retries: 0,
            server_error_backoff_secs: 1,
        }
    }
}

/// Why a REST call failed. Callers match on [`RestError::status`] to treat,
/// say, a 404 as "absent" rather than as a failure.
#[derive(Debug)]
pub enum RestError {
    /// A 403 that is not a rate limit, or a 401.
    Forbidden { status: u16, message: String },
    /// A rate limit the policy would not wait out; retry after this many
    /// seconds.
    RateLimited { retry_after_secs: u64 },
    /// Any other answer outside 2xx.
    Status {
        method: String,
        url: String,
        status: u16,
        message: String,
    },
    /// The host could not deliver the request.
    Http { url: String, error: http::Error },
    /// A 2xx answer whose body is not the JSON the caller expects.
    Decode { url: String, reason: String },
    /// Pagination did not end within the page limit, or looped.
    Pagination { url: String, reason: String },
}

impl RestError {
    /// The HTTP status the server answered with, when there was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Forbidden { status, .. } | Self::Status { status, .. } => Some(*status),
            Self::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    /// The server's own explanation (`message` in GitHub's error body).
    pub fn message(&self) -> Option<&str> {
        match self {
            Self::Forbidden { message, .. } | Self::Status { message, .. } => Some(message),
            _ => None,
        }
    }
}

impl fmt::Display for RestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Forbidden { status, message } => write!(f, "forbidden ({status}): {message}"),
            Self::RateLimited { retry_after_secs } => {
                write!(f, "rate limited, retry in {retry_after_secs} s")
            }
            Self::Status {
                method,
                url,
                status,
                message,
            } => write!(f, "{method} {url} answered {status}: {message}"),
            Self::Http { url, error } => {
                write!(f, "request to {url} failed: {}", http_error(error))
            }
            Self::Decode { url, reason } => write!(f, "unexpected body from {url}: {reason}"),
            Self::Pagination { url, reason } => write!(f, "paging through {url}: {reason}"),
        }
    }
}

impl std::error::Error for RestError {}

fn http_error(error: &http::Error) -> String {
    match error {
        http::Error::Denied(s) => format!("denied by the host: {s}"),
        http::Error::InvalidRequest(s) => format!("invalid request: {s}"),
        http::Error::UnknownSecret(s) => format!("secret {s:?} is not granted"),
        http::Error::Timeout => "timed out".to_string(),
        http::Error::TooLarge(n) => format!("response larger than {n} bytes"),
        http::Error::Transport(s) => format!("transport: {s}"),
    }
}

impl From<RestError> for PluginError {
    fn from(e: RestError) -> Self {
        match e {
            RestError::Forbidden { .. } => PluginError::Forbidden(e.to_string()),
            RestError::RateLimited { retry_after_secs } => {
                PluginError::RateLimited(u32::try_from(retry_after_secs).unwrap_or(u32::MAX))
            }
            RestError::Http {
                error: http::Error::Denied(_) | http::Error::UnknownSecret(_),
                ..
            } => PluginError::Denied(e.to_string()),
            RestError::Http {
                error: http::Error::InvalidRequest(_),
                ..
            } => PluginError::Internal(e.to_string()),
            _ => PluginError::Upstream(e.to_string()),
        }
    }
}

/// A 2xx answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// The JSON client. Build one per plugin call; it keeps no state between
/// requests, except through [`Client::conditional_requests`].
#[derive(Debug, Clone)]
pub struct Client<T = HostTransport> {
    base_url: String,
    headers: Vec<(String, String)>,
    auth: Option<Auth>,
    transport: T,
    retry: RetryPolicy,
    max_pages: usize,
    conditional: bool,
}

/// A GET answer kept for conditional requests.
#[derive(serde::Serialize, serde::Deserialize)]
struct Cached {
    etag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    link: Option<String>,
    body: String,
}

/// Keys and values above these are not kept: the host's key-value store
/// refuses keys over 512 bytes and values over 1 MiB.
const MAX_CACHE_KEY: usize = 500;
const MAX_CACHE_VALUE: usize = 1_000_000;

impl Cached {
    fn key(url: &str) -> Option<String> {
        let key = format!("etag {url}");
        (key.len() <= MAX_CACHE_KEY).then_some(key)
    }

    fn reply(self) -> Reply {
        let mut headers = vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("etag".to_string(), self.etag),
        ];
        if let Some(link) = self.link {
            headers.push(("link".to_string(), link));
        }
        Reply {
            status: 200,
            headers,
            body: self.body.into_bytes(),
        }
    }
}

impl Client<HostTransport> {
    pub fn new(base_url: &str) -> Self {
        Self::with_transport(base_url, HostTransport)
    }
}

impl<T: Transport> Client<T> {
    pub fn with_transport(base_url: &str, transport: T) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_string(),
            headers: Vec::new(),
            auth: None,
            transport,
            retry: RetryPolicy::default(),
            max_pages: 1000,
            conditional: false,
        }
    }

    /// Adds a header sent with every request.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Has the host authenticate every request with the named secret.
    pub fn auth(mut self, secret: &str, scheme: AuthScheme) -> Self {
        self.auth = Some(Auth {
            secret: secret.to_string(),
            scheme,
        });
        self
    }

    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Keeps each GET answer that carries an `etag` in the transport's cache
    /// (the plugin's key-value store with [`CachingHostTransport`]) and asks
    /// with `if-none-match` next time; a `304 Not Modified` is then answered
    /// from the cache. GitHub does not count such answers against the rate
    /// limit, which matters for full syncs of large organisations.
    pub fn conditional_requests(mut self, on: bool) -> Self {
        self.conditional = on;
        self
    }

    /// The most pages [`Client::get_all`] reads before it gives up with
    /// [`RestError::Pagination`].
    pub fn max_pages(mut self, pages: usize) -> Self {
        self.max_pages = pages;
        self
    }

    /// The absolute URL for a path below the base URL; an absolute URL is
    /// kept as it is.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else if path.starts_with('/') {
            format!("{}{path}", self.base_url)
        } else {
            format!("{}/{path}", self.base_url)
        }
    }

    /// GETs one JSON document.
    pub fn get_json<D: DeserializeOwned>(&self, path: &str) -> Result<D, RestError> {
        let url = self.url(path);
        let reply = self.request("GET", &url, None)?;
        decode(&url, &reply.body)
    }

    /// GETs a JSON array and every following page, in order.
    pub fn get_all<D: DeserializeOwned>(&self, path: &str) -> Result<Vec<D>, RestError> {
        let first = self.url(path);
        let mut items = Vec::new();
        let mut seen = BTreeSet::new();
        let mut next = Some(first.clone());
        while let Some(url) = next.take() {
            if seen.len() >= self.max_pages {
                return Err(RestError::Pagination {
                    url: first,
                    reason: format!("more than {} pages", self.max_pages),
                });
            }
            if !seen.insert(url.clone()) {
                return Err(RestError::Pagination {
                    url: first,
                    reason: format!("the next page {url} was already read"),
                });
            }
            let reply = self.request("GET", &url, None)?;
            let page: Vec<D> = decode(&url, &reply.body)?;
            items.extend(page);
            next = self.next_page(&first, &reply)?;
        }
        Ok(items)
    }

    // A next link to another origin would have the host attach our
    // credential to a request we never meant to send.
    fn next_page(&self, first: &str, reply: &Reply) -> Result<Option<String>, RestError> {
        let Some(url) = reply.header("link").and_then(next_link) else {
            return Ok(None);
        };
        if origin(&url) != origin(first) {
            return Err(RestError::Pagination {
                url: first.to_string(),
                reason: format!("next page {url} is on another origin"),
            });
        }
        Ok(Some(url))
    }

    /// Sends a request with an optional JSON body and returns the 2xx answer.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        json_body: Option<&str>,
    ) -> Result<Reply, RestError> {
        let url = self.url(path);
        self.request(method, &url, json_body)
    }

    fn request(
        &self,
        method: &str,
        url: &str,
        json_body: Option<&str>,
    ) -> Result<Reply, RestError> {
        let mut headers = self.headers.clone();
        let conditional = self.conditional && method.eq_ignore_ascii_case("GET");
        let mut cached = None;
        if conditional {
            cached = self.cached(url);
            if let Some(c) = &cached {
                headers.push(("if-none-match".to_string(), c.etag.clone()));
            }
        }
        if json_body.is_some() {
            headers.push((
                "content-type".to_string(),
                "application/json; charset=utf-8".to_string(),
            ));
        }
        let request = Request {
            method: method.to_string(),
            url: url.to_string(),
            headers,
            body: json_body.map(|b| b.as_bytes().to_vec()),
            auth: self.auth.clone(),
        };
        let mut secondary = 0;
        let mut primary = 0;
        let mut server_errors = 0;
        loop {
            let response = self
                .transport
                .send(&request)
                .map_err(|error| RestError::Http {
                    url: url.to_string(),
                    error,
                })?;
            if response.status == 304
                && let Some(cached) = cached.take()
            {
                return Ok(cached.reply());
            }
            let now = self.transport.now_unix_secs();
            match classify(&response, now, self.retry.default_wait_secs) {
                Outcome::Success => {
                    if conditional {
                        self.remember(url, &response);
                    }
                    return Ok(Reply {
                        status: response.status,
                        headers: response.headers,
                        body: response.body,
                    });
                }
                Outcome::Limited { kind, wait_secs } => {
                    let tries = match kind {
                        LimitKind::Primary => &mut primary,
                        LimitKind::Secondary => &mut secondary,
                    };
                    let allowed = match kind {
                        LimitKind::Primary => self.retry.primary_retries,
                        LimitKind::Secondary => self.retry.secondary_retries,
                    };
                    if *tries >= allowed || wait_secs > self.retry.max_wait_secs {
                        return Err(RestError::RateLimited {
                            retry_after_secs: wait_secs.max(1),
                        });
                    }
                    *tries += 1;
                    self.transport.warn(
                        "Rate limited, waiting before retrying",
                        &[
                            ("limit", kind.name().to_string()),
                            ("wait_secs", wait_secs.to_string()),
                            ("url", url.to_string()),
                        ],
                    );
                    self.transport.sleep_secs(wait_secs);
                }
                Outcome::Forbidden { status, message } => {
                    return Err(RestError::Forbidden { status, message });
                }
                Outcome::Failed { status, message } => {
                    let wait_secs = self.server_error_wait(method, &response, server_errors);
                    if let Some(wait_secs) = wait_secs {
                        server_errors += 1;
                        self.transport.warn(
                            "Server error, waiting before retrying",
                            &[
                                ("status", status.to_string()),
                                ("wait_secs", wait_secs.to_string()),
                                ("url", url.to_string()),
                            ],
                        );
                        self.transport.sleep_secs(wait_secs);
                        continue;
                    }
                    return Err(RestError::Status {
                        method: method.to_string(),
                        url: url.to_string(),
                        status,
                        message,
                    });
                }
            }
        }
    }
}

impl<T: Transport> Client<T> {
    fn cached(&self, url: &str) -> Option<Cached> {
        let raw = self.transport.cache_get(&Cached::key(url)?)?;
        serde_json::from_slice(&raw).ok()
    }

    /// Keeps an answer with an `etag` whose body is text and small enough.
    fn remember(&self, url: &str, response: &Response) {
        let (Some(key), Some(etag)) = (Cached::key(url), header(&response.headers, "etag")) else {
            return;
        };
        let Ok(body) = std::str::from_utf8(&response.body) else {
            return;
        };
        let entry = Cached {
            etag: etag.to_string(),
            link: header(&response.headers, "link").map(str::to_string),
            body: body.to_string(),
        };
        if let Ok(value) = serde_json::to_vec(&entry)
            && value.len() <= MAX_CACHE_VALUE
        {
            self.transport.cache_put(&key, &value);
        }
    }

    /// How long to wait before resending a request answered with a server
    /// error, or none when it must not be resent.
    fn server_error_wait(&self, method: &str, response: &Response, sent_again: u32) -> Option<u64> {
        let safe = method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD");
        if !safe || response.status < 500 || sent_again >= self.retry.server_error_retries {
            return None;
        }
        let backoff = self.retry.server_error_wait_secs(sent_again);
        let asked = header(&response.headers, "retry-after").and_then(|v| v.trim().parse().ok());
        let wait_secs = asked.map_or(backoff, |asked: u64| asked.max(backoff));
        (wait_secs <= self.retry.max_wait_secs).then_some(wait_secs)
    }
}

fn decode<D: DeserializeOwned>(url: &str, body: &[u8]) -> Result<D, RestError> {
    serde_json::from_slice(body).map_err(|e| RestError::Decode {
        url: url.to_string(),
        reason: e.to_string(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LimitKind {
    Primary,
    Secondary,
}

impl LimitKind {
    fn name(self) -> &'static str {
        match self {
            Self::Primary => "primary",
            Self::Secondary => "secondary",
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Success,
    Limited { kind: LimitKind, wait_secs: u64 },
    Forbidden { status: u16, message: String },
    Failed { status: u16, message: String },
}

// The order follows GitHub's advice: `retry-after` wins, then an exhausted
// primary budget, then a 403 that only says it is a secondary limit.
fn classify(response: &Response, now_unix_secs: u64, default_wait_secs: u64) -> Outcome {
    let status = response.status;
    if (200..300).contains(&status) {
        return Outcome::Success;
    }
    let message = error_message(&response.body, status);
    if status == 403 || status == 429 {
        if let Some(value) = header(&response.headers, "retry-after") {
            let wait_secs = value.trim().parse().unwrap_or(default_wait_secs);
            return Outcome::Limited {
                kind: LimitKind::Secondary,
                wait_secs,
            };
        }
        if header(&response.headers, "x-ratelimit-remaining").map(str::trim) == Some("0") {
            let wait_secs = header(&response.headers, "x-ratelimit-reset")
                .and_then(|v| reset_wait_secs(v, now_unix_secs))
                .unwrap_or(default_wait_secs);
            return Outcome::Limited {
                kind: LimitKind::Primary,
                wait_secs,
            };
        }
        if status == 429 || mentions_secondary_limit(&message) {
            return Outcome::Limited {
                kind: LimitKind::Secondary,
                wait_secs: default_wait_secs,
            };
        }
    }
    if status == 401 || status == 403 {
        return Outcome::Forbidden { status, message };
    }
    Outcome::Failed { status, message }
}

fn mentions_secondary_limit(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    // Older GitHub Enterprise Server releases still call it abuse detection.
    lower.contains("secondary rate limit") || lower.contains("abuse detection")
}

/// Seconds from now until a `x-ratelimit-reset` value. GitHub sends epoch
/// seconds; recorded fixtures carry epoch milliseconds, and no epoch-seconds
/// value reaches 10^11 before the year 5138, so a larger one is taken as
/// milliseconds. A reset in the past means no wait; one second is added for
/// clock skew between us and the server.
pub fn reset_wait_secs(value: &str, now_unix_secs: u64) -> Option<u64> {
    let raw: u64 = value.trim().parse().ok()?;
    let reset_secs = if raw > 100_000_000_000 {
        raw.div_ceil(1000)
    } else {
        raw
    };
    Some(
        reset_secs
            .checked_sub(now_unix_secs)
            .map_or(0, |wait| wait + 1),
    )
}

/// GitHub's `message` from an error body, else the start of the body.
fn error_message(body: &[u8], status: u16) -> String {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body) {
        if let Some(serde_json::Value::String(message)) = map.get("message") {
            return message.clone();
        }
        // SCIM servers put their explanation in `detail`.
        if let Some(serde_json::Value::String(detail)) = map.get("detail") {
            return detail.clone();
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        format!("status {status} with an empty body")
    } else {
        text.chars().take(200).collect()
    }
}

/// The value of a header, matching the name without regard to case.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The `rel="next"` target of an RFC 8288 `Link` header value.
pub fn next_link(value: &str) -> Option<String> {
    let mut rest = value;
    loop {
        let start = rest.find('<')?;
        let end = start + rest[start..].find('>')?;
        let target = &rest[start + 1..end];
        let after = &rest[end + 1..];
        let params_end = after.find('<').unwrap_or(after.len());
        let params = &after[..params_end];
        if params.split(';').any(is_rel_next) {
            return Some(target.trim().to_string());
        }
        rest = after;
    }
}

fn is_rel_next(param: &str) -> bool {
    let Some((name, value)) = param.split_once('=') else {
        return false;
    };
    let value = value.trim().trim_end_matches(',').trim().trim_matches('"');
    name.trim().eq_ignore_ascii_case("rel")
        && value
            .split_ascii_whitespace()
            .any(|rel| rel.eq_ignore_ascii_case("next"))
}

/// Scheme, host and port of an absolute URL, lower-cased.
fn origin(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return String::new();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    format!("{}://{}", scheme, authority).to_ascii_lowercase()
}

/// Percent-encodes one path segment the way JavaScript's
/// `encodeURIComponent` does, so that a login, team slug or branch name with
/// a `/` or a space stays one segment.
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        let keep = byte.is_ascii_alphanumeric()
            || matches!(
                byte,
                b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
            );
        if keep {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::VecDeque;

    use super::*;

    #[derive(Default)]
    struct Script {
        answers: RefCell<VecDeque<Response>>,
        sent: RefCell<Vec<Request>>,
        slept: RefCell<Vec<u64>>,
        now: u64,
        cache: RefCell<std::collections::BTreeMap<String, Vec<u8>>>,
    }

    impl Script {
        fn new(answers: Vec<Response>) -> Self {
            Self {
                answers: RefCell::new(answers.into()),
                now: 1_700_000_000,
                ..Self::default()
            }
        }

        fn urls(&self) -> Vec<String> {
            self.sent.borrow().iter().map(|r| r.url.clone()).collect()
        }
    }

    impl Transport for &Script {
        fn send(&self, request: &Request) -> Result<Response, http::Error> {
            self.sent.borrow_mut().push(request.clone());
            self.answers
                .borrow_mut()
                .pop_front()
                .ok_or_else(|| http::Error::Transport("script exhausted".to_string()))
        }

        fn now_unix_secs(&self) -> u64 {
            self.now
        }

        fn sleep_secs(&self, secs: u64) {
            self.slept.borrow_mut().push(secs);
        }

        fn warn(&self, _message: &str, _fields: &[(&str, String)]) {}

        fn cache_get(&self, key: &str) -> Option<Vec<u8>> {
            self.cache.borrow().get(key).cloned()
        }

        fn cache_put(&self, key: &str, value: &[u8]) {
            self.cache
                .borrow_mut()
                .insert(key.to_string(), value.to_vec());
        }
    }

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn client(script: &Script) -> Client<&Script> {
        Client::with_transport("http://127.0.0.1:9/api.github.com/abc/", script)
            .header("accept", "application/vnd.github.v3+json")
            .auth("token", AuthScheme::Token)
    }

    #[test]
    fn a_not_modified_page_is_answered_from_the_cache_links_included() {
        let page1 = "http://127.0.0.1:9/api.github.com/abc/orgs/o/repos";
        let link = "<http://127.0.0.1:9/api.github.com/abc/orgs/o/repos?page=2>; rel=\"next\"";
        let script = Script::new(vec![
            answer(200, &[("etag", "W/\"one\""), ("link", link)], "[1,2]"),
            answer(200, &[("etag", "\"two\"")], "[3]"),
            answer(304, &[("etag", "W/\"one\"")], ""),
            answer(200, &[("etag", "\"two-b\"")], "[4]"),
        ]);
        let api = client(&script).conditional_requests(true);
        let first: Vec<u32> = api.get_all("orgs/o/repos").unwrap_or_default();
        assert_eq!(first, vec![1, 2, 3]);
        let second: Vec<u32> = api.get_all("orgs/o/repos").unwrap_or_default();
        assert_eq!(
            second,
            vec![1, 2, 4],
            "page 1 from the cache, page 2 changed"
        );
        let asked: Vec<Option<String>> = script
            .sent
            .borrow()
            .iter()
            .map(|r| header(&r.headers, "if-none-match").map(str::to_string))
            .collect();
        assert_eq!(
            asked,
            vec![
                None,
                None,
                Some("W/\"one\"".to_string()),
                Some("\"two\"".to_string())
            ]
        );
        assert_eq!(script.urls().first().map(String::as_str), Some(page1));
    }

    #[test]
    fn without_conditional_requests_nothing_is_cached_or_asked() {
        let script = Script::new(vec![
            answer(200, &[("etag", "\"one\"")], "[1]"),
            answer(200, &[("etag", "\"one\"")], "[1]"),
        ]);
        let api = client(&script);
        let _: Vec<u32> = api.get_all("orgs/o/repos").unwrap_or_default();
        let again: Vec<u32> = api.get_all("orgs/o/repos").unwrap_or_default();
        assert_eq!(again, vec![1]);
        assert!(script.cache.borrow().is_empty());
        assert!(
            script
                .sent
                .borrow()
                .iter()
                .all(|r| header(&r.headers, "if-none-match").is_none())
        );
    }

    #[test]
    fn a_304_without_a_cached_answer_is_an_error_not_an_empty_page() {
        let script = Script::new(vec![answer(304, &[], "")]);
        let api = client(&script).conditional_requests(true);
        let got: Result<Vec<u32>, RestError> = api.get_all("orgs/o/repos");
        assert_eq!(got.err().and_then(|e| e.status()), Some(304));
    }

    #[test]
    fn next_link_finds_next_among_other_relations() {
        let value = "<https://api.github.com/repositories/1000/issues?per_page=3&page=1>; rel=\"prev\", \
                     <https://api.github.com/repositories/1000/issues?per_page=3&page=3>; rel=\"next\", \
                     <https://api.github.com/repositories/1000/issues?per_page=3&page=5>; rel=\"last\"";
        assert_eq!(
            next_link(value).as_deref(),
            Some("https://api.github.com/repositories/1000/issues?per_page=3&page=3")
        );
    }

    #[test]
    fn next_link_is_absent_on_the_last_page() {
        let value =
            "<https://x.test/a?page=4>; rel=\"prev\", <https://x.test/a?page=1>; rel=\"first\"";
        assert_eq!(next_link(value), None);
        assert_eq!(next_link(""), None);
        assert_eq!(next_link("garbage <unterminated"), None);
    }

    #[test]
    fn next_link_accepts_unquoted_and_multi_valued_rel() {
        assert_eq!(
            next_link("<https://x.test/b>; rel=next").as_deref(),
            Some("https://x.test/b")
        );
        assert_eq!(
            next_link("<https://x.test/c>; title=\"x\"; REL=\"last next\"").as_deref(),
            Some("https://x.test/c")
        );
    }

    #[test]
    fn reset_in_seconds_and_in_milliseconds_give_the_same_wait() {
        let now = 1_507_651_170;
        assert_eq!(reset_wait_secs("1507651200", now), Some(31));
        assert_eq!(reset_wait_secs("1507651200000", now), Some(31));
        assert_eq!(reset_wait_secs("1507651200000", now + 100), Some(0));
        assert_eq!(reset_wait_secs("soon", now), None);
    }

    #[test]
    fn encode_segment_matches_encode_uri_component() {
        assert_eq!(encode_segment("octocat"), "octocat");
        assert_eq!(encode_segment("release/1.0"), "release%2F1.0");
        assert_eq!(encode_segment("a b+c"), "a%20b%2Bc");
        assert_eq!(encode_segment("é"), "%C3%A9");
    }

    #[test]
    fn get_all_follows_next_links_in_order() {
        let script = Script::new(vec![
            answer(
                200,
                &[(
                    "link",
                    "<http://127.0.0.1:9/api.github.com/abc/x?page=2>; rel=\"next\"",
                )],
                "[1,2]",
            ),
            answer(200, &[], "[3]"),
        ]);
        let items: Vec<u32> = client(&script).get_all("/x?per_page=2").unwrap_or_default();
        assert_eq!(items, vec![1, 2, 3]);
        assert_eq!(
            script.urls(),
            vec![
                "http://127.0.0.1:9/api.github.com/abc/x?per_page=2",
                "http://127.0.0.1:9/api.github.com/abc/x?page=2",
            ]
        );
        let sent = script.sent.borrow();
        assert!(sent[0].auth.is_some());
        assert!(sent[0].body.is_none());
    }

    #[test]
    fn get_all_refuses_a_next_link_to_another_origin() {
        let script = Script::new(vec![answer(
            200,
            &[("link", "<https://elsewhere.test/x?page=2>; rel=\"next\"")],
            "[1]",
        )]);
        let result: Result<Vec<u32>, _> = client(&script).get_all("/x");
        assert!(matches!(result, Err(RestError::Pagination { .. })));
        assert_eq!(script.urls().len(), 1);
    }

    #[test]
    fn get_all_stops_at_the_page_limit() {
        let link = [(
            "link",
            "<http://127.0.0.1:9/api.github.com/abc/x?p=n>; rel=\"next\"",
        )];
        let script = Script::new(vec![answer(200, &link, "[1]"), answer(200, &link, "[2]")]);
        let result: Result<Vec<u32>, _> = client(&script).max_pages(5).get_all("/x");
        assert!(
            matches!(&result, Err(RestError::Pagination { reason, .. }) if reason.contains("already read"))
        );
        let script = Script::new(vec![answer(200, &link, "[1]")]);
        let result: Result<Vec<u32>, _> = client(&script).max_pages(1).get_all("/x");
        assert!(
            matches!(&result, Err(RestError::Pagination { reason, .. }) if reason.contains("more than 1"))
        );
    }

    #[test]
    fn secondary_limit_with_retry_after_waits_and_retries() {
        let body = r#"{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}"#;
        let script = Script::new(vec![
            answer(
                403,
                &[("retry-after", "1"), ("x-ratelimit-remaining", "4990")],
                body,
            ),
            answer(200, &[], "{\"ok\":true}"),
        ]);
        let value: serde_json::Value = client(&script)
            .get_json("/orgs/acme/members")
            .unwrap_or_default();
        assert_eq!(value["ok"], true);
        assert_eq!(*script.slept.borrow(), vec![1]);
    }

    #[test]
    fn secondary_limit_without_retry_after_is_not_forbidden() {
        let body = r#"{"message":"You have exceeded a secondary rate limit."}"#;
        let script = Script::new(vec![answer(403, &[], body), answer(200, &[], "[]")]);
        let items: Result<Vec<u8>, _> = client(&script).get_all("/x");
        assert!(items.is_ok());
        assert_eq!(*script.slept.borrow(), vec![60]);
    }

    #[test]
    fn secondary_limit_gives_up_after_three_waits() {
        let limited = || answer(429, &[("retry-after", "2")], "");
        let script = Script::new(vec![limited(), limited(), limited(), limited()]);
        let result: Result<serde_json::Value, _> = client(&script).get_json("/x");
        assert!(matches!(
            result,
            Err(RestError::RateLimited {
                retry_after_secs: 2
            })
        ));
        assert_eq!(*script.slept.borrow(), vec![2, 2, 2]);
        assert_eq!(script.urls().len(), 4);
    }

    #[test]
    fn long_retry_after_is_returned_without_waiting() {
        let script = Script::new(vec![answer(429, &[("retry-after", "3600")], "")]);
        let result: Result<serde_json::Value, _> = client(&script).get_json("/x");
        assert!(matches!(
            result,
            Err(RestError::RateLimited {
                retry_after_secs: 3600
            })
        ));
        assert!(script.slept.borrow().is_empty());
    }

    #[test]
    fn primary_limit_waits_until_reset_when_short() {
        let reset = (1_700_000_000u64 + 20).to_string();
        let script = Script::new(vec![
            answer(
                403,
                &[
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-reset", &reset),
                ],
                r#"{"message":"API rate limit exceeded for user ID 1."}"#,
            ),
            answer(200, &[], "[]"),
        ]);
        let items: Result<Vec<u8>, _> = client(&script).get_all("/x");
        assert!(items.is_ok());
        assert_eq!(*script.slept.borrow(), vec![21]);
    }

    #[test]
    fn primary_limit_far_away_is_rate_limited_in_milliseconds_too() {
        let reset_ms = ((1_700_000_000u64 + 1800) * 1000).to_string();
        let script = Script::new(vec![answer(
            403,
            &[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", &reset_ms),
            ],
            r#"{"message":"API rate limit exceeded"}"#,
        )]);
        let result: Result<serde_json::Value, _> = client(&script).get_json("/x");
        assert!(matches!(
            result,
            Err(RestError::RateLimited {
                retry_after_secs: 1801
            })
        ));
        assert!(script.slept.borrow().is_empty());
    }

    #[test]
    fn plain_403_is_forbidden_and_404_keeps_its_status() {
        let script = Script::new(vec![
            answer(
                403,
                &[("x-ratelimit-remaining", "4999")],
                r#"{"message":"Resource not accessible by integration"}"#,
            ),
            answer(404, &[], r#"{"message":"Branch not protected"}"#),
        ]);
        let c = client(&script);
        let forbidden = c.get_json::<serde_json::Value>("/a");
        assert!(matches!(
            &forbidden,
            Err(RestError::Forbidden { message, .. }) if message == "Resource not accessible by integration"
        ));
        let missing = c.get_json::<serde_json::Value>("/b").err();
        assert_eq!(missing.as_ref().and_then(RestError::status), Some(404));
        assert_eq!(
            missing.as_ref().and_then(RestError::message),
            Some("Branch not protected")
        );
        assert!(matches!(
            missing.map(PluginError::from),
            Some(PluginError::Upstream(_))
        ));
        assert!(matches!(
            forbidden.err().map(PluginError::from),
            Some(PluginError::Forbidden(_))
        ));
    }

    #[test]
    fn send_marks_a_json_body() {
        let script = Script::new(vec![answer(200, &[], "{}")]);
        let reply = client(&script).send("PUT", "/p", Some("{\"a\":1}"));
        assert!(reply.is_ok());
        let sent = script.sent.borrow();
        assert_eq!(sent[0].method, "PUT");
        assert_eq!(sent[0].body.as_deref(), Some(&b"{\"a\":1}"[..]));
        assert_eq!(
            header(&sent[0].headers, "Content-Type"),
            Some("application/json; charset=utf-8")
        );
    }

    fn retrying(script: &Script) -> Client<&Script> {
        client(script).retry_policy(RetryPolicy {
            server_error_retries: 3,
            server_error_backoff_secs: 2,
            ..RetryPolicy::default()
        })
    }

    #[test]
    fn server_errors_are_returned_at_once_by_default() {
        let script = Script::new(vec![answer(502, &[], r#"{"message":"Server Error"}"#)]);
        let result: Result<serde_json::Value, _> = client(&script).get_json("/x");
        assert_eq!(result.err().and_then(|e| e.status()), Some(502));
        assert_eq!(script.urls().len(), 1);
        assert!(script.slept.borrow().is_empty());
    }

    #[test]
    fn a_read_answered_with_server_errors_is_resent_with_doubling_waits() {
        let script = Script::new(vec![
            answer(502, &[], ""),
            answer(503, &[], r#"{"message":"Service Unavailable"}"#),
            answer(200, &[], "{\"ok\":true}"),
        ]);
        let value: serde_json::Value = retrying(&script).get_json("/x").unwrap_or_default();
        assert_eq!(value["ok"], true);
        assert_eq!(*script.slept.borrow(), vec![2, 4]);
        assert_eq!(script.urls().len(), 3);
    }

    #[test]
    fn a_failing_page_is_resent_without_starting_pagination_again() {
        let link = [(
            "link",
            "<http://127.0.0.1:9/api.github.com/abc/x?page=2>; rel=\"next\"",
        )];
        let script = Script::new(vec![
            answer(200, &link, "[1]"),
            answer(500, &[], ""),
            answer(200, &[], "[2]"),
        ]);
        let items: Vec<u32> = retrying(&script).get_all("/x").unwrap_or_default();
        assert_eq!(items, vec![1, 2]);
        assert_eq!(
            script.urls(),
            vec![
                "http://127.0.0.1:9/api.github.com/abc/x",
                "http://127.0.0.1:9/api.github.com/abc/x?page=2",
                "http://127.0.0.1:9/api.github.com/abc/x?page=2",
            ]
        );
    }

    #[test]
    fn server_errors_give_up_after_the_allowed_resends() {
        let failing = || answer(504, &[], r#"{"message":"Gateway Timeout"}"#);
        let script = Script::new(vec![failing(), failing(), failing(), failing()]);
        let result: Result<serde_json::Value, _> = retrying(&script).get_json("/x");
        let error = result.err();
        assert_eq!(error.as_ref().and_then(RestError::status), Some(504));
        assert_eq!(
            error.as_ref().and_then(RestError::message),
            Some("Gateway Timeout")
        );
        assert_eq!(*script.slept.borrow(), vec![2, 4, 8]);
        assert_eq!(script.urls().len(), 4);
    }

    #[test]
    fn writes_answered_with_server_errors_are_never_resent() {
        for method in ["POST", "PATCH", "PUT", "DELETE"] {
            let script = Script::new(vec![answer(502, &[], ""), answer(200, &[], "{}")]);
            let result = retrying(&script).send(method, "/x", Some("{}"));
            assert_eq!(result.err().and_then(|e| e.status()), Some(502), "{method}");
            assert_eq!(script.urls().len(), 1, "{method}");
            assert!(script.slept.borrow().is_empty(), "{method}");
        }
    }

    #[test]
    fn retry_after_on_a_server_error_is_honoured_up_to_the_longest_wait() {
        let script = Script::new(vec![
            answer(503, &[("retry-after", "7")], ""),
            answer(200, &[], "[]"),
        ]);
        let items: Result<Vec<u8>, _> = retrying(&script).get_all("/x");
        assert!(items.is_ok());
        assert_eq!(*script.slept.borrow(), vec![7]);
        let script = Script::new(vec![answer(503, &[("retry-after", "600")], "")]);
        let result: Result<serde_json::Value, _> = retrying(&script).get_json("/x");
        assert_eq!(result.err().and_then(|e| e.status()), Some(503));
        assert!(script.slept.borrow().is_empty());
    }

    #[test]
    fn server_error_waits_double_and_stop_at_the_longest_wait() {
        let policy = RetryPolicy {
            server_error_backoff_secs: 5,
            max_wait_secs: 30,
            ..RetryPolicy::default()
        };
        let waits: Vec<u64> = (0..5).map(|n| policy.server_error_wait_secs(n)).collect();
        assert_eq!(waits, vec![5, 10, 20, 30, 30]);
        assert_eq!(policy.server_error_wait_secs(200), 30);
    }

    #[test]
    fn malformed_json_is_a_decode_error() {
        let script = Script::new(vec![answer(200, &[], "<html>")]);
        let result: Result<serde_json::Value, _> = client(&script).get_json("/x");
        assert!(matches!(result, Err(RestError::Decode { .. })));
    }
}
