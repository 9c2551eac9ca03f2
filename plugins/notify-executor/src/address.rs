//! Webhook URLs: parsed strictly, checked against the operator's allowed
//! prefixes, and masked wherever they are shown.
//!
//! A URL can come from an action's parameters, that is from a finding, so
//! whatever wrote the finding could try to send notifications elsewhere.
//! The check compares scheme, host and port exactly and the path at a `/`
//! boundary, and refuses what another parser might read differently: user
//! info, backslashes, fragments, whitespace, percent signs in the host,
//! non-ASCII, and dot or encoded-slash path segments that a server would
//! resolve outside the prefix. What passes is sent byte for byte as given.
//!
//! Slack-style webhook URLs carry their credential in the path, so plans,
//! outcomes and logs show a URL only with its path after the first segment
//! and its query masked.

/// A webhook URL that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    raw: String,
    scheme: &'static str,
    host: String,
    port: u16,
    explicit_port: bool,
    /// Starts with `/`.
    path: String,
    query: Option<String>,
}

impl WebhookUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if let Some(c) = raw
            .chars()
            .find(|c| !c.is_ascii() || c.is_ascii_control() || c.is_ascii_whitespace())
        {
            return Err(format!("contains {c:?}; write it percent-encoded"));
        }
        if raw.contains('\\') || raw.contains('#') {
            return Err("contains a backslash or a fragment".into());
        }
        let lower = raw.to_ascii_lowercase();
        let (scheme, default_port, rest) = if lower.starts_with("https://") {
            ("https", 443, &raw["https://".len()..])
        } else if lower.starts_with("http://") {
            ("http", 80, &raw["http://".len()..])
        } else {
            return Err("is not an http or https URL".into());
        };
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, after) = rest.split_at(end);
        if authority.contains('@') {
            return Err("carries user information before the host".into());
        }
        let (host, port) = split_port(authority)?;
        let (path, query) = match after.split_once('?') {
            Some((path, query)) => (path, Some(query.to_string())),
            None => (after, None),
        };
        let path = if path.is_empty() { "/" } else { path };
        check_path(path)?;
        Ok(Self {
            raw: raw.to_string(),
            scheme,
            host,
            port: port.unwrap_or(default_port),
            explicit_port: port.is_some_and(|p| p != default_port),
            path: path.to_string(),
            query,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn has_query(&self) -> bool {
        self.query.is_some()
    }

    /// Same origin, and the path equal to the prefix's or below it.
    pub fn is_under(&self, prefix: &WebhookUrl) -> bool {
        if (self.scheme, self.host.as_str(), self.port)
            != (prefix.scheme, prefix.host.as_str(), prefix.port)
        {
            return false;
        }
        let base = prefix.path.as_str();
        match self.path.strip_prefix(base) {
            Some(rest) => base.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }

    /// The URL as it may be shown: the origin, the first path segment when
    /// more follow, and `…` for the rest.
    pub fn masked(&self) -> String {
        let port = if self.explicit_port {
            format!(":{}", self.port)
        } else {
            String::new()
        };
        let segments: Vec<&str> = self.path.split('/').filter(|s| !s.is_empty()).collect();
        let path = match segments.as_slice() {
            [] => "/".to_string(),
            [first, _, ..] => format!("/{first}/…"),
            [_] => "/…".to_string(),
        };
        let query = if self.query.is_some() { "?…" } else { "" };
        format!("{}://{}{port}{path}{query}", self.scheme, self.host)
    }
}

fn split_port(authority: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let (host, after) = inner
            .split_once(']')
            .ok_or("has an unclosed [ in its host")?;
        if !host
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err("has an IPv6 host with unexpected characters".into());
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("has text after its IPv6 host")?),
        };
        (format!("[{}]", host.to_ascii_lowercase()), port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        let valid = host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        if !valid {
            return Err(format!(
                "has the host {host:?}, which is not a plain name or address"
            ));
        }
        (host.to_ascii_lowercase(), port)
    };
    if host.is_empty() || host == "[]" {
        return Err("has no host".into());
    }
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("has the port {p:?}"))?,
        ),
    };
    Ok((host, port))
}

fn check_path(path: &str) -> Result<(), String> {
    let lower = path.to_ascii_lowercase();
    if ["%2e", "%2f", "%5c"].iter().any(|e| lower.contains(e)) {
        return Err("has an encoded dot, slash or backslash in its path".into());
    }
    if path.split('/').any(|s| s == "." || s == "..") {
        return Err("has a . or .. segment in its path".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> WebhookUrl {
        WebhookUrl::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn a_url_is_under_a_prefix_only_at_a_segment_boundary() {
        let prefix = url("https://hooks.slack.com/services/T0001");
        assert!(url("https://hooks.slack.com/services/T0001/B02/xyz").is_under(&prefix));
        assert!(url("HTTPS://Hooks.Slack.com:443/services/T0001").is_under(&prefix));
        assert!(!url("https://hooks.slack.com/services/T00012/B02/xyz").is_under(&prefix));
        assert!(!url("https://hooks.slack.com.evil.test/services/T0001/x").is_under(&prefix));
        assert!(!url("http://hooks.slack.com/services/T0001/x").is_under(&prefix));
        assert!(!url("https://hooks.slack.com:8443/services/T0001/x").is_under(&prefix));
        let with_slash = url("https://hooks.slack.com/services/");
        assert!(url("https://hooks.slack.com/services/T9/B9/z").is_under(&with_slash));
        assert!(!url("https://hooks.slack.com/servicesX/T9").is_under(&with_slash));
    }

    #[test]
    fn what_another_parser_might_read_differently_is_refused() {
        for bad in [
            "https://hooks.slack.com@evil.test/services/x",
            "https://hooks.slack.com\\@evil.test/services/x",
            "https://hooks.slack.com/services/../../evil",
            "https://hooks.slack.com/services/%2e%2e/evil",
            "https://hooks.slack.com/services/a%2Fb",
            "https://hooks.slack.com/services/x#frag",
            "https://hooks.slack.com/services/x y",
            "https://hooks.slack.com/services/\u{0}x",
            "https://h%6Foks.slack.com/services/x",
            "https://hooks.slack.com:0/services/x",
            "https://hooks.slack.com:99999/services/x",
            "https:///services/x",
            "ftp://hooks.slack.com/services/x",
            "https://hööks.slack.com/services/x",
        ] {
            assert!(WebhookUrl::parse(bad).is_err(), "{bad} was accepted");
        }
        assert!(WebhookUrl::parse("http://[::1]:8080/hook").is_ok());
        assert!(WebhookUrl::parse("http://127.0.0.1:8080").is_ok());
    }

    #[test]
    fn masking_hides_what_follows_the_first_segment() {
        assert_eq!(
            url("https://hooks.slack.com/services/T0001/B0002/secret").masked(),
            "https://hooks.slack.com/services/…"
        );
        assert_eq!(
            url("http://127.0.0.1:8080/secret-token?key=abc").masked(),
            "http://127.0.0.1:8080/…?…"
        );
        assert_eq!(
            url("https://example.test:443").masked(),
            "https://example.test/"
        );
    }
}
