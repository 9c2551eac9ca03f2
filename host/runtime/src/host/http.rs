//! Outgoing HTTP for plugins: allow-listed hosts only, credentials injected
//! by the host, no redirects, bounded time and size.
//!
//! Known gap: a host name on the allow list is resolved by the HTTP client
//! without checking where it points, so a listed name that resolves to a
//! private or loopback address is reached. Literal addresses are checked.

use std::net::IpAddr;

use url::Url;

use crate::bindings::http::{AuthScheme, Error, Host, Request, Response};
use crate::host::{CallState, secrets};
use crate::manifest::Capability;

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
        && is_metadata(ip)
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

fn is_metadata(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local() || v4.octets() == [100, 100, 100, 200],
        IpAddr::V6(v6) => {
            (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6.segments() == [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254]
        }
    }
}

impl CallState {
    fn build(&self, req: Request) -> Result<reqwest::RequestBuilder, Error> {
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

        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| Error::InvalidRequest(e.to_string()))?;
        let mut builder = self.services.http.request(method, url);
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
        Ok(builder.timeout(self.limits.host_call_timeout))
    }
}

async fn send(builder: reqwest::RequestBuilder, max_body: u64) -> Result<Response, Error> {
    let mut resp = builder.send().await.map_err(|e| {
        if e.is_timeout() {
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
        let builder = match self.build(req) {
            Ok(b) => b,
            Err(e) => {
                tracing::debug!(plugin = &*self.plugin, error = ?e, "Refused a plugin HTTP request");
                return Ok(Err(e));
            }
        };
        let max_body = self.limits.http_body_bytes;
        Ok(self
            .timed(send(builder, max_body))
            .await
            .unwrap_or(Err(Error::Timeout)))
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

    #[test]
    fn metadata_addresses_are_refused_even_when_listed() {
        let err = check("http://169.254.169.254/latest", &["169.254.169.254"]).err();
        assert!(err.unwrap_or_default().contains("metadata"));
        assert!(check("http://[fe80::1]/", &["[fe80::1]"]).is_err());
    }
}
