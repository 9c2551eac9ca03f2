//! Which requests an executor's plan announces.
//!
//! A plan lists its calls before anything runs, but some of what `execute`
//! sends is only known once it runs: the id of a user looked up by name, or
//! a secret part of a webhook address that must not be shown or stored. A
//! planned URL may therefore leave parts open, and these three forms are
//! the only ones:
//!
//! - a path segment `:name` (a letter or `_`, then letters, digits or `_`)
//!   stands for any one segment: `/users/:id/block` covers
//!   `/users/42/block`;
//! - a last path segment `…` stands for one or more segments:
//!   `/services/…` covers `/services/T0/B0/x`;
//! - a query of `…` stands for any query: `/hook?…` covers `/hook?k=v`.
//!
//! Everything else compares as written: the method (without regard to
//! case), the scheme, the host, the port (a default port equals none), each
//! other segment once percent-decoded, and the query.

use url::Url;

use crate::plugin::PlannedCall;

/// What a planned URL leaves open where it writes `…`.
const REST: &str = "…";

impl PlannedCall {
    /// Whether this call announces a request of `method` to `url`.
    pub fn covers(&self, method: &str, url: &str) -> bool {
        if !self.method.eq_ignore_ascii_case(method) {
            return false;
        }
        match (Url::parse(&self.url), Url::parse(url)) {
            (Ok(planned), Ok(made)) => url_covers(&planned, &made),
            _ => false,
        }
    }
}

fn url_covers(planned: &Url, made: &Url) -> bool {
    planned.scheme() == made.scheme()
        && planned.host() == made.host()
        && planned.port_or_known_default() == made.port_or_known_default()
        && path_covers(planned, made)
        && query_covers(planned.query(), made.query())
}

fn path_covers(planned: &Url, made: &Url) -> bool {
    let (planned, made) = (segments(planned), segments(made));
    let mut made = made.iter();
    let mut planned = planned.iter().peekable();
    while let Some(segment) = planned.next() {
        if segment == REST && planned.peek().is_none() {
            return made.next().is_some();
        }
        let Some(actual) = made.next() else {
            return false;
        };
        let open = is_placeholder(segment) && !actual.is_empty();
        if !open && segment != actual {
            return false;
        }
    }
    made.next().is_none()
}

fn query_covers(planned: Option<&str>, made: Option<&str>) -> bool {
    match planned {
        Some(q) if decoded(q) == REST => true,
        _ => planned == made,
    }
}

/// The path's segments, percent-decoded. A URL that cannot have a path
/// (`mailto:`) has none.
fn segments(url: &Url) -> Vec<String> {
    url.path_segments()
        .map(|s| s.map(decoded).collect())
        .unwrap_or_default()
}

fn decoded(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

fn is_placeholder(segment: &str) -> bool {
    let Some(name) = segment.strip_prefix(':') else {
        return false;
    };
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A requested URL as it may appear in a refusal, a log line or the audit
/// trail: the origin and the first path segment, with `…` for the rest and
/// for any query. Some executors keep secrets in their URLs (webhook
/// addresses), and only the executor knows which parts.
pub(crate) fn shown(url: &str) -> String {
    let Ok(url) = Url::parse(url) else {
        return "(a URL that does not parse)".to_string();
    };
    let origin = url.origin().ascii_serialization();
    let segments: Vec<&str> = url
        .path_segments()
        .map(|s| s.filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    let path = match segments.as_slice() {
        [] => "/".to_string(),
        [only] => format!("/{only}"),
        [first, ..] => format!("/{first}/{REST}"),
    };
    let query = if url.query().is_some() { "?…" } else { "" };
    format!("{origin}{path}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(method: &str, url: &str) -> PlannedCall {
        PlannedCall {
            method: method.into(),
            url: url.into(),
            body: None,
            effect: String::new(),
        }
    }

    fn covers(planned_url: &str, url: &str) -> bool {
        planned("POST", planned_url).covers("POST", url)
    }

    #[test]
    fn a_call_covers_the_same_request_and_its_method_in_any_case() {
        let call = planned(
            "DELETE",
            "https://gitlab.example/api/v4/groups/7/members/42",
        );
        assert!(call.covers(
            "delete",
            "https://gitlab.example/api/v4/groups/7/members/42"
        ));
        assert!(!call.covers("GET", "https://gitlab.example/api/v4/groups/7/members/42"));
        assert!(!call.covers(
            "DELETE",
            "https://gitlab.example/api/v4/groups/7/members/43"
        ));
        assert!(!call.covers("DELETE", "https://gitlab.example/api/v4/groups/7/members"));
        assert!(!call.covers(
            "DELETE",
            "https://gitlab.example/api/v4/groups/7/members/42/x"
        ));
    }

    #[test]
    fn scheme_host_and_port_must_match_and_default_ports_equal_none() {
        let url = "https://api.github.com/orgs/acme/members/bob";
        assert!(covers(
            url,
            "https://api.github.com:443/orgs/acme/members/bob"
        ));
        assert!(covers(url, "https://API.github.com/orgs/acme/members/bob"));
        assert!(!covers(url, "http://api.github.com/orgs/acme/members/bob"));
        assert!(!covers(
            url,
            "https://api.github.com:8443/orgs/acme/members/bob"
        ));
        assert!(!covers(
            url,
            "https://api.github.com.evil.example/orgs/acme/members/bob"
        ));
    }

    #[test]
    fn a_named_segment_stands_for_exactly_one_segment() {
        let url = "https://gitlab.example/api/v4/users/:id/block";
        assert!(covers(url, "https://gitlab.example/api/v4/users/42/block"));
        assert!(!covers(
            url,
            "https://gitlab.example/api/v4/users/42/unblock"
        ));
        assert!(!covers(
            url,
            "https://gitlab.example/api/v4/users/4/2/block"
        ));
        assert!(!covers(url, "https://gitlab.example/api/v4/users//block"));
        assert!(!covers(url, "https://gitlab.example/api/v4/users/block"));
        // Not a name: compared as written.
        assert!(!covers(
            "https://gitlab.example/users/:4/block",
            "https://gitlab.example/users/42/block"
        ));
        assert!(covers(
            "https://gitlab.example/users/:4/block",
            "https://gitlab.example/users/:4/block"
        ));
    }

    #[test]
    fn a_last_ellipsis_stands_for_one_or_more_segments_and_nowhere_else() {
        let url = "https://hooks.example/services/…";
        assert!(covers(url, "https://hooks.example/services/T0/B0/secret"));
        assert!(covers(url, "https://hooks.example/services/T0"));
        assert!(!covers(url, "https://hooks.example/services"));
        assert!(!covers(url, "https://hooks.example/other/T0"));
        // Inside the path it is an ordinary segment.
        assert!(!covers(
            "https://hooks.example/…/x",
            "https://hooks.example/a/x"
        ));
    }

    #[test]
    fn queries_compare_as_written_unless_left_open() {
        let url = "https://gitlab.example/api/v4/users?username=mallory";
        assert!(covers(
            url,
            "https://gitlab.example/api/v4/users?username=mallory"
        ));
        assert!(!covers(
            url,
            "https://gitlab.example/api/v4/users?username=eve"
        ));
        assert!(!covers(url, "https://gitlab.example/api/v4/users"));
        let open = "https://hooks.example/hook?…";
        assert!(covers(open, "https://hooks.example/hook?token=x&c=1"));
        assert!(covers(open, "https://hooks.example/hook?"));
        assert!(!covers(open, "https://hooks.example/other?token=x"));
        assert!(!covers(
            "https://hooks.example/hook",
            "https://hooks.example/hook?token=x"
        ));
    }

    #[test]
    fn segments_compare_percent_decoded() {
        assert!(covers(
            "https://gitlab.example/api/v4/projects/acme%2Fapp/protected_branches/main",
            "https://gitlab.example/api/v4/projects/acme%2fapp/protected_branches/main"
        ));
        assert!(!covers(
            "https://gitlab.example/api/v4/projects/acme%2Fapp/protected_branches/main",
            "https://gitlab.example/api/v4/projects/acme/app/protected_branches/main"
        ));
    }

    #[test]
    fn a_url_that_does_not_parse_is_covered_by_nothing() {
        assert!(!covers("not a url", "not a url"));
        assert!(!covers("https://gitlab.example/x", "gitlab.example/x"));
    }

    #[test]
    fn shown_keeps_the_origin_and_first_segment_only() {
        assert_eq!(
            shown("https://hooks.example/services/T0/B0/secret?token=x"),
            "https://hooks.example/services/…?…"
        );
        assert_eq!(
            shown("http://127.0.0.1:4000/api"),
            "http://127.0.0.1:4000/api"
        );
        assert_eq!(shown("https://h.example"), "https://h.example/");
        assert_eq!(shown("::"), "(a URL that does not parse)");
    }
}
