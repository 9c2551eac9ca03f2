//! Outgoing HTTP for plugins: allow-listed hosts only, credentials injected
//! by the host, no redirects, bounded time and size.
//!
//! Rate limits are shared: what an upstream says about its budget
//! (`x-ratelimit-*` as GitHub sends them, `ratelimit-*` as GitLab does,
//! `retry-after` on a 403 or 429) is recorded in the runtime's coordination
//! backend under `{plugin instance}@{host}:{port}`. While that budget is
//! spent, a request is not sent: the plugin gets a 429 made by the host,
//! with `retry-after` and the `x-ratelimit-*` headers, so that its client
//! waits as it would for the upstream's own. Replicas sharing the backend
//! share the budget. The budget is advisory: when the backend cannot be
//! reached, requests go out as if none were recorded.
//!
//! Where a listed name may lead is checked after it is resolved and before
//! anything is sent (see `resolve`): a name reaches only public addresses,
//! unless the instance's grant sets `private_networks`, which adds loopback,
//! private and carrier-grade NAT ones. Link-local and cloud metadata
//! addresses are never reached, by name or literally. A literal address on
//! the allow list is otherwise reached as written, since the operator named
//! it. A name with no reachable address fails as `denied`, naming the host
//! and the kinds of address it points to.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use org_mesh_cache::Budget;
use url::Url;

use crate::bindings::http::{AuthScheme, Error, Host, Request, Response};
use crate::host::resolve::{self, Reach};
use crate::host::{CallState, secrets};
use crate::manifest::Capability;
use crate::plan;

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"];

/// Headers a plugin may not set: the client computes them, or they would let
/// a plugin smuggle credentials or reroute the request.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "proxy-authorization",
];

/// Whether `url`'s host and port are on the allow list. An entry without a
/// port allows only the scheme's default port.
pub(crate) fn allowed(url: &Url, allow: &[String]) -> Result<(), String> {
    let host = url
        .host_str()
        .ok_or_else(|| format!("{url} has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| format!("{url} has no port"))?;
    if let Ok(ip) = host.parse::<IpAddr>()
        && matches!(resolve::classify(ip), Reach::Metadata | Reach::LinkLocal)
    {
        return Err(format!("{ip} is a cloud metadata or link-local address"));
    }
    let listed = allow.iter().any(|entry| {
        let entry = entry.to_ascii_lowercase();
        match entry.rsplit_once(':') {
            Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) && !h.ends_with(':') => {
                h.trim_start_matches('[').trim_end_matches(']') == host
                    && p.parse::<u16>().ok() == Some(port)
            }
            _ => {
                entry.trim_start_matches('[').trim_end_matches(']') == host && url.port().is_none()
            }
        }
    });
    if listed {
        Ok(())
    } else {
        Err(format!("{host}:{port} is not on this plugin's allow list"))
    }
}

/// The upstream one request goes to, as its rate-limit budget is kept.
#[derive(Debug)]
struct Upstream {
    /// `host:port`, as the plugin is told.
    address: String,
    /// `{plugin instance}@{host}:{port}`, the budget's name.
    scope: String,
}

impl CallState {
    fn build(&mut self, req: Request) -> Result<(reqwest::RequestBuilder, Upstream), Error> {
        let method = req.method.to_ascii_uppercase();
        if !METHODS.contains(&method.as_str()) {
            return Err(Error::InvalidRequest(format!(
                "method {:?} is not allowed",
                req.method
            )));
        }
        let url = Url::parse(&req.url)
            .map_err(|e| Error::InvalidRequest(format!("url {:?}: {e}", req.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::InvalidRequest(format!(
                "scheme {:?} is not http or https",
                url.scheme()
            )));
        }
        allowed(&url, &self.grants.http_hosts).map_err(Error::Denied)?;
        self.within_plan(&method, &req.url)?;
        let address = format!(
            "{}:{}",
            url.host_str().unwrap_or_default().to_ascii_lowercase(),
            url.port_or_known_default().unwrap_or_default()
        );
        let upstream = Upstream {
            scope: format!("{}@{address}", self.scope),
            address,
        };

        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| Error::InvalidRequest(e.to_string()))?;
        let mut builder = self
            .services
            .http
            .get(self.grants.private_networks)
            .request(method, url);
        for (name, value) in &req.headers {
            let lower = name.to_ascii_lowercase();
            if RESERVED_HEADERS.contains(&lower.as_str())
                || (req.auth.is_some() && lower == "authorization")
            {
                continue;
            }
            builder = builder.header(name, value);
        }
        if let Some(auth) = &req.auth {
            if !self.grants.secrets.contains_key(&auth.secret) {
                return Err(Error::UnknownSecret(auth.secret.clone()));
            }
            // Granted but unreadable is the operator's problem, not the
            // plugin's: say which secret and why, as a denial.
            let value = secrets::read(self, &auth.secret).map_err(|e| match e {
                crate::bindings::secrets::Error::Denied(m)
                | crate::bindings::secrets::Error::Unavailable(m) => Error::Denied(m),
            })?;
            builder = match &auth.scheme {
                AuthScheme::Bearer => builder.header("authorization", format!("Bearer {value}")),
                AuthScheme::Token => builder.header("authorization", format!("token {value}")),
                AuthScheme::Header(name) => builder.header(name.as_str(), value),
            };
        }
        if let Some(body) = req.body {
            builder = builder.body(body);
        }
        Ok((builder.timeout(self.limits.host_call_timeout), upstream))
    }

    /// Refuses a request that could change something and that the
    /// approved plan being run does not announce, and remembers it: the
    /// call then fails whatever the plugin makes of the refusal. Reads are
    /// not held to the plan, since they change nothing and how many pages
    /// a read takes is only known as it runs.
    fn within_plan(&mut self, method: &str, url: &str) -> Result<(), Error> {
        let Some(calls) = &self.approved else {
            return Ok(());
        };
        if matches!(method, "GET" | "HEAD") || calls.iter().any(|c| c.covers(method, url)) {
            return Ok(());
        }
        let request = format!("{method} {}", plan::shown(url));
        tracing::warn!(plugin = &*self.plugin, instance = &*self.scope, %request, "Refused a request the approved plan does not announce");
        let refusal = format!("{request} is not in the approved plan, so it was not sent");
        self.unplanned.get_or_insert(request);
        Err(Error::Denied(refusal))
    }

    /// The answer to give instead of sending, when the shared budget of
    /// this upstream is spent and has not reset yet.
    async fn held_back(&mut self, upstream: &Upstream) -> Option<Response> {
        let coordination = self.services.coordination.clone();
        let budget = match self.timed(coordination.budget(&upstream.scope)).await {
            Some(Ok(budget)) => budget?,
            Some(Err(e)) => {
                tracing::warn!(plugin = &*self.plugin, scope = %upstream.scope, error = %e, "Could not read the shared rate-limit budget; sending anyway");
                return None;
            }
            None => {
                tracing::warn!(plugin = &*self.plugin, scope = %upstream.scope, "Reading the shared rate-limit budget timed out; sending anyway");
                return None;
            }
        };
        let now = SystemTime::now();
        if budget.remaining > 0 || budget.reset <= now {
            return None;
        }
        let response = exhausted(&upstream.address, budget.reset, now);
        tracing::info!(
            plugin = &*self.plugin,
            scope = %upstream.scope,
            reset = epoch_secs_ceil(budget.reset),
            "Held back a request: the shared rate-limit budget is spent"
        );
        Some(response)
    }

    /// Records what a real answer says about the upstream's budget.
    async fn record(&mut self, upstream: &Upstream, response: &Response) {
        let Some(budget) = announced_budget(response.status, &response.headers, SystemTime::now())
        else {
            return;
        };
        let coordination = self.services.coordination.clone();
        match self
            .timed(coordination.record_budget(&upstream.scope, budget))
            .await
        {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                tracing::warn!(plugin = &*self.plugin, scope = %upstream.scope, error = %e, "Could not record the shared rate-limit budget");
            }
            None => {
                tracing::warn!(plugin = &*self.plugin, scope = %upstream.scope, "Recording the shared rate-limit budget timed out");
            }
        }
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// When a budget resets, from a `*-reset` header. GitHub and GitLab send
/// epoch seconds. Recorded GitHub fixtures carry epoch milliseconds, and no
/// epoch-seconds value reaches 10^11 before the year 5138, so a larger one
/// is taken as milliseconds. A value below 10^9 would be a time before 2001,
/// so it is taken as seconds from now, as in the IETF `RateLimit` draft.
fn reset_time(value: &str, now: SystemTime) -> Option<SystemTime> {
    let raw: u64 = value.parse().ok()?;
    if raw > 100_000_000_000 {
        UNIX_EPOCH.checked_add(Duration::from_millis(raw))
    } else if raw < 1_000_000_000 {
        now.checked_add(Duration::from_secs(raw))
    } else {
        UNIX_EPOCH.checked_add(Duration::from_secs(raw))
    }
}

/// What an upstream's answer says about its budget, if anything.
/// `retry-after` on a 403 or 429 means nothing may be sent until then,
/// whatever the remaining count says.
fn announced_budget(status: u16, headers: &[(String, String)], now: SystemTime) -> Option<Budget> {
    let announced = [
        ("x-ratelimit-remaining", "x-ratelimit-reset"),
        ("ratelimit-remaining", "ratelimit-reset"),
    ]
    .into_iter()
    .find_map(|(remaining, reset)| {
        Some(Budget {
            remaining: header(headers, remaining)?.parse().ok()?,
            reset: reset_time(header(headers, reset)?, now)?,
        })
    });
    let retry_after = matches!(status, 403 | 429)
        .then(|| header(headers, "retry-after"))
        .flatten()
        .and_then(|v| v.parse::<u64>().ok())
        .and_then(|secs| now.checked_add(Duration::from_secs(secs)));
    match (announced, retry_after) {
        (Some(budget), Some(until)) if budget.remaining == 0 => Some(Budget {
            remaining: 0,
            reset: budget.reset.max(until),
        }),
        (_, Some(until)) => Some(Budget {
            remaining: 0,
            reset: until,
        }),
        (announced, None) => announced,
    }
}

/// Whole seconds from the epoch to `t`, rounded up so that a client waiting
/// until then does not come back early.
fn epoch_secs_ceil(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, secs_ceil)
}

fn secs_ceil(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The 429 a plugin gets instead of the upstream's answer while the shared
/// budget of `address` is spent until `reset`: what GitHub sends for a
/// limit, so that clients written for GitHub wait it out.
fn exhausted(address: &str, reset: SystemTime, now: SystemTime) -> Response {
    let wait = secs_ceil(reset.duration_since(now).unwrap_or_default()).max(1);
    let reset_secs = epoch_secs_ceil(reset);
    let until = time::OffsetDateTime::from(reset)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| format!("{reset_secs} (epoch seconds)"));
    let body = serde_json::json!({
        "message": format!(
            "The shared rate-limit budget of {address} is exhausted until {until}; org-mesh did not send this request"
        ),
    });
    Response {
        status: 429,
        headers: vec![
            (
                "content-type".to_string(),
                "application/json; charset=utf-8".to_string(),
            ),
            ("retry-after".to_string(), wait.to_string()),
            ("x-ratelimit-remaining".to_string(), "0".to_string()),
            ("x-ratelimit-reset".to_string(), reset_secs.to_string()),
        ],
        body: body.to_string().into_bytes(),
    }
}

async fn send(builder: reqwest::RequestBuilder, max_body: u64) -> Result<Response, Error> {
    let mut resp = builder.send().await.map_err(|e| {
        if let Some(refused) = resolve::refusal(&e) {
            Error::Denied(refused.to_string())
        } else if e.is_timeout() {
            Error::Timeout
        } else {
            Error::Transport(error_chain(&e))
        }
    })?;
    if resp.content_length().is_some_and(|n| n > max_body) {
        return Err(Error::TooLarge(max_body));
    }
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| Error::Transport(error_chain(&e)))?
    {
        if (body.len() + chunk.len()) as u64 > max_body {
            return Err(Error::TooLarge(max_body));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl Host for CallState {
    async fn send(&mut self, req: Request) -> wasmtime::Result<Result<Response, Error>> {
        self.require(Capability::Http)?;
        let (builder, upstream) = match self.build(req) {
            Ok(b) => b,
            Err(e) => {
                tracing::debug!(plugin = &*self.plugin, error = ?e, "Refused a plugin HTTP request");
                return Ok(Err(e));
            }
        };
        if let Some(response) = self.held_back(&upstream).await {
            return Ok(Ok(response));
        }
        let max_body = self.limits.http_body_bytes;
        let sent = self
            .timed(send(builder, max_body))
            .await
            .unwrap_or(Err(Error::Timeout));
        match &sent {
            Ok(response) => self.record(&upstream, response).await,
            Err(Error::Denied(reason)) => {
                tracing::warn!(plugin = &*self.plugin, upstream = %upstream.address, reason, "Refused a plugin HTTP request after resolving its host");
            }
            Err(_) => {}
        }
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str, allow: &[&str]) -> Result<(), String> {
        let url = Url::parse(url).map_err(|e| e.to_string())?;
        allowed(
            &url,
            &allow.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
    }

    #[test]
    fn allow_list_matches_host_and_port() {
        assert!(check("https://api.github.com/orgs/x", &["api.github.com"]).is_ok());
        assert!(check("https://api.github.com:8443/", &["api.github.com"]).is_err());
        assert!(check("http://127.0.0.1:4000/x", &["127.0.0.1:4000"]).is_ok());
        assert!(check("http://127.0.0.1:4001/x", &["127.0.0.1:4000"]).is_err());
        assert!(check("https://evil.example/", &["api.github.com"]).is_err());
        assert!(check("http://[::1]:80/", &["[::1]:80"]).is_ok());
    }

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn epoch(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    const NOW: u64 = 1_750_000_000;

    #[test]
    fn github_and_gitlab_budgets_are_read_from_their_headers() {
        let now = epoch(NOW);
        let github = headers(&[
            ("X-RateLimit-Remaining", "4999"),
            ("X-RateLimit-Reset", "1750003600"),
        ]);
        assert_eq!(
            announced_budget(200, &github, now),
            Some(Budget {
                remaining: 4999,
                reset: epoch(NOW + 3600)
            })
        );
        let gitlab = headers(&[
            ("ratelimit-remaining", "0"),
            ("ratelimit-reset", "1750000060"),
        ]);
        assert_eq!(
            announced_budget(200, &gitlab, now),
            Some(Budget {
                remaining: 0,
                reset: epoch(NOW + 60)
            })
        );
        let recorded = headers(&[
            ("x-ratelimit-remaining", "12"),
            ("x-ratelimit-reset", "1750000060000"),
        ]);
        assert_eq!(
            announced_budget(200, &recorded, now).map(|b| b.reset),
            Some(epoch(NOW + 60)),
            "epoch milliseconds, as recorded fixtures carry"
        );
        assert_eq!(announced_budget(200, &headers(&[]), now), None);
        assert_eq!(
            announced_budget(200, &headers(&[("x-ratelimit-remaining", "7")]), now),
            None,
            "a count without a reset says nothing usable"
        );
    }

    #[test]
    fn retry_after_on_403_or_429_spends_the_budget_until_then() {
        let now = epoch(NOW);
        let secondary = headers(&[
            ("retry-after", "30"),
            ("x-ratelimit-remaining", "4000"),
            ("x-ratelimit-reset", "1750003600"),
        ]);
        for status in [403, 429] {
            assert_eq!(
                announced_budget(status, &secondary, now),
                Some(Budget {
                    remaining: 0,
                    reset: epoch(NOW + 30)
                }),
                "status {status}"
            );
        }
        assert_eq!(
            announced_budget(200, &secondary, now).map(|b| b.remaining),
            Some(4000),
            "retry-after on a success is no limit"
        );
        let primary = headers(&[
            ("retry-after", "30"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1750003600"),
        ]);
        assert_eq!(
            announced_budget(403, &primary, now).map(|b| b.reset),
            Some(epoch(NOW + 3600)),
            "the later of the two ends wins"
        );
    }

    #[test]
    fn the_synthetic_429_looks_like_githubs() {
        let now = epoch(NOW);
        let reset = now + Duration::from_millis(90_500);
        let response = exhausted("api.github.com:443", reset, now);
        assert_eq!(response.status, 429);
        let h = |name| header(&response.headers, name).map(str::to_string);
        assert_eq!(h("retry-after").as_deref(), Some("91"));
        assert_eq!(h("x-ratelimit-remaining").as_deref(), Some("0"));
        assert_eq!(h("x-ratelimit-reset"), Some((NOW + 91).to_string()));
        let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap_or_default();
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("shared rate-limit budget of api.github.com:443 is exhausted until 2025-06-15T15:08:10.5Z"),
            "{message}"
        );
    }

    #[test]
    fn metadata_addresses_are_refused_even_when_listed() {
        let err = check("http://169.254.169.254/latest", &["169.254.169.254"]).err();
        assert!(err.unwrap_or_default().contains("metadata"));
        assert!(check("http://[fe80::1]/", &["[fe80::1]"]).is_err());
        assert!(check("http://100.100.100.200/", &["100.100.100.200"]).is_err());
        assert!(check("http://[fd00:ec2::254]/", &["[fd00:ec2::254]"]).is_err());
        assert!(
            check(
                "http://[::ffff:169.254.169.254]/",
                &["[::ffff:169.254.169.254]", "[::ffff:a9fe:a9fe]"]
            )
            .is_err(),
            "an IPv4 metadata address wrapped in IPv6"
        );
    }

    #[test]
    fn literal_private_addresses_stay_reachable_as_the_operator_listed_them() {
        assert!(check("http://10.0.0.8:8080/", &["10.0.0.8:8080"]).is_ok());
        assert!(check("http://127.0.0.1:4000/", &["127.0.0.1:4000"]).is_ok());
    }
}
