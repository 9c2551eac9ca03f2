//! Branch protection as GitHub's `PUT .../branches/B/protection` takes it,
//! and how a requested baseline is laid over the protection a branch has.
//!
//! The PUT replaces the whole protection, so the body starts from the
//! current protection and only ever strengthens it: a setting the request
//! does not mention keeps its current value, and one it does mention ends
//! up at the stronger of the two. Keys come out in the order GitHub's own
//! client sends them, and optional rules appear only when they are on, so
//! a request with nothing to carry over produces exactly the body GitHub's
//! recorded exchanges show.

use serde::Serialize;
use serde_json::Value as Json;

/// What an action asks of a branch's protection; `None` leaves a setting as
/// it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Requested {
    pub enforce_admins: Option<bool>,
    pub required_approving_review_count: Option<i64>,
    pub dismiss_stale_reviews: Option<bool>,
    pub require_code_owner_reviews: Option<bool>,
    pub required_status_checks_strict: Option<bool>,
    pub allow_force_pushes: Option<bool>,
    pub allow_deletions: Option<bool>,
    pub required_linear_history: Option<bool>,
    pub required_signatures: Option<bool>,
    pub required_conversation_resolution: Option<bool>,
    /// Status checks that must pass, added to the current ones.
    pub status_check_contexts: Option<Vec<String>>,
    /// Who may dismiss reviews; replaces the current list when given.
    pub dismissal_restrictions: Option<Restrictions>,
    /// Who may push; replaces the current list when given.
    pub push_restrictions: Option<Restrictions>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Restrictions {
    pub users: Vec<String>,
    pub teams: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apps: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatusChecks {
    pub strict: bool,
    pub contexts: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Reviews {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dismissal_restrictions: Option<Restrictions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dismiss_stale_reviews: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_code_owner_reviews: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_approving_review_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_last_push_approval: Option<bool>,
}

/// A PUT body. The four rule objects GitHub requires are always sent, as
/// null when off; the optional switches only when on (or when asked for).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Body {
    pub required_status_checks: Option<StatusChecks>,
    pub required_pull_request_reviews: Option<Reviews>,
    pub restrictions: Option<Restrictions>,
    pub enforce_admins: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_linear_history: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_force_pushes: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_deletions: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_creations: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_conversation_resolution: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_branch: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_fork_syncing: Option<bool>,
}

/// A branch's protection: the PUT body that would reproduce it, and
/// whether signed commits are required (set through its own endpoint).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Protection {
    pub body: Body,
    pub required_signatures: bool,
}

fn enabled(doc: &Json, name: &str) -> Option<bool> {
    doc.get(name)?.get("enabled")?.as_bool()
}

/// A switch kept only when on: off is what leaving it out means.
fn on(doc: &Json, name: &str) -> Option<bool> {
    enabled(doc, name).filter(|v| *v)
}

fn names(list: Option<&Json>, field: &str) -> Vec<String> {
    list.and_then(Json::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.get(field).and_then(Json::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn restrictions(doc: Option<&Json>) -> Option<Restrictions> {
    let doc = doc.filter(|d| d.is_object())?;
    let apps = names(doc.get("apps"), "slug");
    Some(Restrictions {
        users: names(doc.get("users"), "login"),
        teams: names(doc.get("teams"), "slug"),
        apps: (!apps.is_empty()).then_some(apps),
    })
}

impl Protection {
    /// Reads a `GET .../protection` answer.
    pub fn from_current(doc: &Json) -> Self {
        let status_checks = doc
            .get("required_status_checks")
            .filter(|c| c.is_object())
            .map(|c| StatusChecks {
                strict: c.get("strict").and_then(Json::as_bool).unwrap_or(false),
                contexts: c
                    .get("contexts")
                    .and_then(Json::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
            });
        let reviews = doc
            .get("required_pull_request_reviews")
            .filter(|r| r.is_object())
            .map(|r| Reviews {
                dismissal_restrictions: restrictions(r.get("dismissal_restrictions")),
                dismiss_stale_reviews: r.get("dismiss_stale_reviews").and_then(Json::as_bool),
                require_code_owner_reviews: r
                    .get("require_code_owner_reviews")
                    .and_then(Json::as_bool),
                required_approving_review_count: r
                    .get("required_approving_review_count")
                    .and_then(Json::as_i64),
                require_last_push_approval: r
                    .get("require_last_push_approval")
                    .and_then(Json::as_bool)
                    .filter(|v| *v),
            });
        Self {
            body: Body {
                required_status_checks: status_checks,
                required_pull_request_reviews: reviews,
                restrictions: restrictions(doc.get("restrictions")),
                enforce_admins: enabled(doc, "enforce_admins").unwrap_or(false),
                required_linear_history: on(doc, "required_linear_history"),
                allow_force_pushes: on(doc, "allow_force_pushes"),
                allow_deletions: on(doc, "allow_deletions"),
                block_creations: on(doc, "block_creations"),
                required_conversation_resolution: on(doc, "required_conversation_resolution"),
                lock_branch: on(doc, "lock_branch"),
                allow_fork_syncing: on(doc, "allow_fork_syncing"),
            },
            required_signatures: enabled(doc, "required_signatures").unwrap_or(false),
        }
    }

    /// This protection raised to what is requested.
    pub fn raised(&self, req: &Requested) -> Self {
        let mut out = self.clone();
        let body = &mut out.body;
        body.enforce_admins = body.enforce_admins || req.enforce_admins == Some(true);
        let wants_checks =
            req.required_status_checks_strict.is_some() || req.status_check_contexts.is_some();
        if wants_checks || body.required_status_checks.is_some() {
            let checks = body
                .required_status_checks
                .get_or_insert_with(Default::default);
            checks.strict = checks.strict || req.required_status_checks_strict == Some(true);
            for context in req.status_check_contexts.iter().flatten() {
                if !checks.contexts.contains(context) {
                    checks.contexts.push(context.clone());
                }
            }
        }
        let wants_reviews = req.required_approving_review_count.is_some()
            || req.dismiss_stale_reviews.is_some()
            || req.require_code_owner_reviews.is_some()
            || req.dismissal_restrictions.is_some();
        if wants_reviews {
            let reviews = body
                .required_pull_request_reviews
                .get_or_insert_with(Default::default);
            if let Some(r) = &req.dismissal_restrictions {
                reviews.dismissal_restrictions = Some(r.clone());
            }
            reviews.dismiss_stale_reviews =
                requirement(reviews.dismiss_stale_reviews, req.dismiss_stale_reviews);
            reviews.require_code_owner_reviews = requirement(
                reviews.require_code_owner_reviews,
                req.require_code_owner_reviews,
            );
            reviews.required_approving_review_count = match (
                reviews.required_approving_review_count,
                req.required_approving_review_count,
            ) {
                (Some(have), Some(want)) => Some(have.max(want)),
                (have, want) => have.or(want),
            };
        }
        if let Some(r) = &req.push_restrictions {
            body.restrictions = Some(r.clone());
        }
        body.required_linear_history =
            switch_on(body.required_linear_history, req.required_linear_history);
        body.required_conversation_resolution = switch_on(
            body.required_conversation_resolution,
            req.required_conversation_resolution,
        );
        body.allow_force_pushes = permission(body.allow_force_pushes, req.allow_force_pushes);
        body.allow_deletions = permission(body.allow_deletions, req.allow_deletions);
        out.required_signatures = out.required_signatures || req.required_signatures == Some(true);
        out
    }

    /// The same protection with every switch that is off written as left
    /// out, for telling whether a PUT would change anything.
    pub fn normalised(&self) -> Self {
        let mut out = self.clone();
        let body = &mut out.body;
        for switch in [
            &mut body.required_linear_history,
            &mut body.allow_force_pushes,
            &mut body.allow_deletions,
            &mut body.block_creations,
            &mut body.required_conversation_resolution,
            &mut body.lock_branch,
            &mut body.allow_fork_syncing,
        ] {
            if *switch == Some(false) {
                *switch = None;
            }
        }
        out
    }
}

/// A review setting ends up on if either side has it on; a side that says
/// nothing defers to the other, so an explicit `false` is kept as sent.
fn requirement(have: Option<bool>, want: Option<bool>) -> Option<bool> {
    match (have, want) {
        (Some(h), Some(w)) => Some(h || w),
        (h, w) => h.or(w),
    }
}

/// An optional switch that is a requirement: left out means off, so only a
/// request to turn it on changes it.
fn switch_on(have: Option<bool>, want: Option<bool>) -> Option<bool> {
    if want == Some(true) { Some(true) } else { have }
}

/// An optional switch that is a permission: left out means off, which is
/// already the strongest, so only a request to turn it off changes it.
fn permission(have: Option<bool>, want: Option<bool>) -> Option<bool> {
    if want == Some(false) {
        Some(false)
    } else {
        have
    }
}

impl Body {
    /// The body as sent: compact JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain structs of strings, numbers and booleans cannot
        // fail; the fallback keeps this total rather than trusting that.
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn nothing_carried_over_leaves_the_required_rules_null() {
        let requested = Requested {
            enforce_admins: Some(false),
            ..Requested::default()
        };
        let body = Protection::default().raised(&requested).body.to_json();
        assert_eq!(
            body,
            r#"{"required_status_checks":null,"required_pull_request_reviews":null,"restrictions":null,"enforce_admins":false}"#
        );
    }

    #[test]
    fn raising_never_weakens() {
        let current = Protection::from_current(&json!({
            "enforce_admins": {"enabled": true},
            "required_pull_request_reviews": {"required_approving_review_count": 3, "dismiss_stale_reviews": true},
            "required_status_checks": {"strict": false, "contexts": ["ci/build"]},
            "allow_force_pushes": {"enabled": false},
            "allow_deletions": {"enabled": true},
        }));
        let requested = Requested {
            enforce_admins: Some(false),
            required_approving_review_count: Some(1),
            dismiss_stale_reviews: Some(false),
            required_status_checks_strict: Some(true),
            status_check_contexts: Some(vec!["ci/lint".into()]),
            allow_force_pushes: Some(true),
            allow_deletions: Some(false),
            ..Requested::default()
        };
        let raised = current.raised(&requested).body;
        assert!(raised.enforce_admins);
        let reviews = raised.required_pull_request_reviews.unwrap_or_default();
        assert_eq!(reviews.required_approving_review_count, Some(3));
        assert_eq!(reviews.dismiss_stale_reviews, Some(true));
        assert_eq!(
            raised.required_status_checks,
            Some(StatusChecks {
                strict: true,
                contexts: vec!["ci/build".into(), "ci/lint".into()]
            })
        );
        assert_eq!(raised.allow_force_pushes, None, "off stays off");
        assert_eq!(raised.allow_deletions, Some(false));
    }

    #[test]
    fn settings_the_request_ignores_are_carried_over() {
        let current = Protection::from_current(&json!({
            "restrictions": {"users": [{"login": "release-bot"}], "teams": [], "apps": []},
            "required_linear_history": {"enabled": true},
            "lock_branch": {"enabled": false},
            "required_signatures": {"enabled": true},
        }));
        let raised = current.raised(&Requested::default());
        assert_eq!(raised, current);
        assert_eq!(
            raised.body.to_json(),
            r#"{"required_status_checks":null,"required_pull_request_reviews":null,"restrictions":{"users":["release-bot"],"teams":[]},"enforce_admins":false,"required_linear_history":true}"#
        );
        assert!(raised.required_signatures);
    }
}
