//! Sends one message to a webhook, retrying what may succeed later.
//!
//! A 5xx, a 408, a 429, a timeout or a dropped connection is retried with
//! the same body and the same `Idempotency-Key`, so a receiver that
//! de-duplicates sees one message however often it was sent. The wait is
//! what `Retry-After` asks (seconds or an HTTP date), else 1, 2, 4 and 8
//! seconds. Attempts and each wait are bounded by the configuration, and
//! all waits together by [`TOTAL_WAIT_SECS`], so a call stays well inside
//! the host's time limit for one plugin call. A wait longer than allowed
//! is handed to the host as a rate limit to reschedule; any other 4xx is
//! final, since sending the same message again cannot change the answer.

use org_mesh_plugin::executor::PlannedCall;
use org_mesh_plugin::http::{self, Request, Response};
use org_mesh_plugin::rest::Transport;
use org_mesh_plugin::types::PluginError;

use crate::address::WebhookUrl;

/// The most time one execution spends waiting between attempts.
pub const TOTAL_WAIT_SECS: u64 = 60;

pub const USER_AGENT: &str = concat!("org-mesh-notify-executor/", env!("CARGO_PKG_VERSION"));

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_attempts: u32,
    pub max_wait_secs: u64,
}

/// Why one attempt did not deliver.
enum Failed {
    /// Worth another attempt after the wait, if the server named one.
    Retry {
        what: String,
        status: Option<u16>,
        retry_after: Option<u64>,
    },
    Final(PluginError),
}

/// The request exactly as sent: JSON, the key as a header, no credential.
pub fn request(url: &WebhookUrl, body: &str, key: &str) -> Request {
    Request {
        method: "POST".into(),
        url: url.as_str().to_string(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("idempotency-key".into(), key.into()),
            ("user-agent".into(), USER_AGENT.into()),
        ],
        body: Some(body.as_bytes().to_vec()),
        auth: None,
    }
}

/// Delivers the message; returns each attempt as a call, in order.
pub fn deliver<T: Transport>(
    transport: &T,
    url: &WebhookUrl,
    body: &str,
    key: &str,
    limits: Limits,
) -> Result<Vec<PlannedCall>, PluginError> {
    let request = request(url, body, key);
    let mut made = Vec::new();
    let mut waited = 0;
    for attempt in 1..=limits.max_attempts {
        let result = transport.send(&request);
        let failed = match result {
            Ok(response) if (200..300).contains(&response.status) => {
                made.push(sent(
                    url,
                    body,
                    format!("accepted with {}", response.status),
                ));
                return Ok(made);
            }
            Ok(response) => classify(&response, transport.now_unix_secs(), url),
            Err(error) => from_transport(&error, url),
        };
        let (what, status, retry_after) = match failed {
            Failed::Final(error) => return Err(error),
            Failed::Retry {
                what,
                status,
                retry_after,
            } => (what, status, retry_after),
        };
        let wait = retry_after.unwrap_or(1 << (attempt - 1).min(3)).max(1);
        let last = attempt == limits.max_attempts;
        let too_long = wait > limits.max_wait_secs || waited + wait > TOTAL_WAIT_SECS;
        if last || too_long {
            made.push(sent(url, body, format!("{what}; given up")));
            return Err(give_up(&what, status, retry_after, wait, attempt, too_long));
        }
        made.push(sent(url, body, format!("{what}; retried after {wait} s")));
        transport.warn(
            "Webhook did not take the message, retrying",
            &[
                ("url", url.masked()),
                ("answer", what),
                ("attempt", attempt.to_string()),
                ("wait_secs", wait.to_string()),
            ],
        );
        transport.sleep_secs(wait);
        waited += wait;
    }
    // `max_attempts` is at least 1, so the loop always returns; this keeps
    // the function total if it ever is not.
    Err(PluginError::Internal(
        "no attempt was made: max_attempts is 0".into(),
    ))
}

fn sent(url: &WebhookUrl, body: &str, effect: String) -> PlannedCall {
    PlannedCall {
        method: "POST".into(),
        url: url.masked(),
        body: Some(body.to_string()),
        effect,
    }
}

fn give_up(
    what: &str,
    status: Option<u16>,
    retry_after: Option<u64>,
    wait: u64,
    attempt: u32,
    too_long: bool,
) -> PluginError {
    // The receiver said when it will take the message: let the host come
    // back then rather than fail the fix.
    if status == Some(429) || (too_long && retry_after.is_some()) {
        return PluginError::RateLimited(u32::try_from(wait).unwrap_or(u32::MAX));
    }
    let why = if too_long {
        format!("waiting {wait} s more is beyond this executor's limits")
    } else {
        format!("{attempt} attempts made")
    };
    PluginError::Upstream(format!(
        "the webhook did not take the message: {what}; {why}"
    ))
}

/// The start of a receiver's explanation; Slack answers in plain words
/// such as `invalid_payload`.
fn said(response: &Response) -> String {
    let text = String::from_utf8_lossy(&response.body);
    let text: String = text.trim().chars().take(200).collect();
    if text.is_empty() {
        format!("{}", response.status)
    } else {
        format!("{} {text}", response.status)
    }
}

fn classify(response: &Response, now: u64, url: &WebhookUrl) -> Failed {
    let status = response.status;
    let what = format!("answered {}", said(response));
    if status == 408 || status == 429 || status >= 500 {
        return Failed::Retry {
            what,
            status: Some(status),
            retry_after: retry_after(&response.headers, now),
        };
    }
    let target = url.masked();
    Failed::Final(match status {
        400 | 422 => PluginError::Upstream(format!(
            "the webhook {target} refused the message as malformed ({}); not retried",
            said(response)
        )),
        401 | 403 => PluginError::Forbidden(format!(
            "the webhook {target} refused the message ({}): it may be revoked or not allowed \
             to post there; not retried",
            said(response)
        )),
        404 | 410 => PluginError::Upstream(format!(
            "the webhook {target} does not exist ({}): its URL is wrong or it was removed; \
             not retried",
            said(response)
        )),
        300..=399 => PluginError::Upstream(format!(
            "the webhook {target} redirects ({}), and redirects are not followed; configure \
             the URL it redirects to",
            said(response)
        )),
        _ => PluginError::Upstream(format!("the webhook {target} {what}; not retried")),
    })
}

fn from_transport(error: &http::Error, url: &WebhookUrl) -> Failed {
    let target = url.masked();
    match error {
        http::Error::Timeout => Failed::Retry {
            what: "no answer in time".into(),
            status: None,
            retry_after: None,
        },
        http::Error::Transport(e) => Failed::Retry {
            what: format!("connection failed: {e}"),
            status: None,
            retry_after: None,
        },
        http::Error::Denied(e) => Failed::Final(PluginError::Denied(format!(
            "posting to {target}: {e}; its host must be on this executor's grants.http_hosts"
        ))),
        http::Error::UnknownSecret(e) => Failed::Final(PluginError::Denied(format!(
            "posting to {target}: secret {e}"
        ))),
        // The answer came but was too big to read: whether it was taken is
        // unknown, and sending again could post twice.
        http::Error::TooLarge(n) => Failed::Final(PluginError::Upstream(format!(
            "the webhook {target} answered with more than {n} bytes; not retried"
        ))),
        http::Error::InvalidRequest(e) => {
            Failed::Final(PluginError::Internal(format!("posting to {target}: {e}")))
        }
    }
}

/// Seconds to wait from a `Retry-After` value: delay seconds, or an HTTP
/// date (a date already past means at once).
pub fn retry_after(headers: &[(String, String)], now: u64) -> Option<u64> {
    let value = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
        .map(|(_, v)| v.trim())?;
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs);
    }
    http_date(value).map(|at| at.saturating_sub(now))
}

/// Seconds since the epoch of an IMF-fixdate such as
/// `Sun, 06 Nov 1994 08:49:37 GMT`, the form HTTP senders must use.
fn http_date(value: &str) -> Option<u64> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    let [_, day, month, year, clock, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)?;
    let day: u64 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    let year: u64 = year.parse().ok().filter(|y| *y >= 1970)?;
    let hms: Vec<u64> = clock
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = hms.as_slice() else {
        return None;
    };
    if *h > 23 || *m > 59 || *s > 60 {
        return None;
    }
    let days = days_from_civil(year, month as u64 + 1, day);
    Some(days * 86_400 + h * 3_600 + m * 60 + s)
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar,
/// counting in 400-year eras that begin on 1 March.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let year_of_era = y - era * 400;
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    (era * 146_097 + day_of_era).saturating_sub(719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> Vec<(String, String)> {
        vec![("Retry-After".into(), value.into())]
    }

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        assert_eq!(retry_after(&headers("7"), 0), Some(7));
        assert_eq!(http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            http_date("Tue, 29 Feb 2028 12:00:00 GMT"),
            Some(1_835_438_400)
        );
        assert_eq!(
            retry_after(&headers("Sun, 06 Nov 1994 08:49:37 GMT"), 784_111_770),
            Some(7)
        );
        assert_eq!(
            retry_after(&headers("Sun, 06 Nov 1994 08:49:37 GMT"), 784_111_999),
            Some(0)
        );
        assert_eq!(retry_after(&headers("soon"), 0), None);
        assert_eq!(
            retry_after(&headers("Sun, 06 Nov 1994 25:49:37 GMT"), 0),
            None
        );
        assert_eq!(retry_after(&[], 0), None);
    }
}
