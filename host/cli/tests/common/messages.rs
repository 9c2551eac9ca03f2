//! Signed GitHub deliveries that carry text (issues, comments) and grant
//! access, built from the recorded webhook examples, for the tests of
//! narrative risk.

use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use super::{VIEWER, get_json, settled, signed, webhook_examples};

pub const REPO_URL: &str = "https://github.com/Codertocat/Hello-World";

pub fn example(event: &str, action: &str) -> Value {
    webhook_examples()
        .into_iter()
        .find(|(e, b)| e == event && b["action"] == action)
        .map(|(_, b)| b)
        .unwrap_or_else(|| panic!("no {event}.{action} example"))
}

pub fn days_ago(days: i64) -> String {
    (OffsetDateTime::now_utc() - Duration::days(days))
        .format(&Rfc3339)
        .unwrap_or_else(|e| panic!("{e}"))
}

pub fn user(login: &str, id: u64) -> Value {
    json!({"login": login, "id": id, "type": "User", "site_admin": false})
}

/// An issue opened by `login`, `days` ago.
pub fn issue(number: u64, login: &str, id: u64, days: i64, body: &str) -> String {
    let mut b = example("issues", "opened");
    b["issue"]["number"] = json!(number);
    b["issue"]["id"] = json!(9_000_000 + number);
    b["issue"]["user"] = user(login, id);
    b["issue"]["author_association"] = json!("NONE");
    b["issue"]["created_at"] = json!(days_ago(days));
    b["issue"]["title"] = json!("Is this project still maintained?");
    b["issue"]["body"] = json!(body);
    b["issue"]["html_url"] = json!(format!("{REPO_URL}/issues/{number}"));
    b["sender"] = user(login, id);
    b.to_string()
}

/// A comment by `login` on issue `number`, `days` ago.
pub fn comment(
    comment_id: u64,
    number: u64,
    login: &str,
    id: u64,
    days: i64,
    body: &str,
) -> String {
    let mut b = example("issue_comment", "created");
    b["issue"]["number"] = json!(number);
    b["comment"]["id"] = json!(comment_id);
    b["comment"]["user"] = user(login, id);
    b["comment"]["author_association"] = json!("NONE");
    b["comment"]["created_at"] = json!(days_ago(days));
    b["comment"]["body"] = json!(body);
    b["comment"]["html_url"] = json!(format!(
        "{REPO_URL}/issues/{number}#issuecomment-{comment_id}"
    ));
    b["sender"] = user(login, id);
    b.to_string()
}

/// `login` added to the repository with `permission`, now.
pub fn collaborator(login: &str, id: u64, permission: &str) -> String {
    let mut b = example("member", "added");
    b["member"] = user(login, id);
    b["changes"] = json!({"permission": {"to": permission}});
    b.to_string()
}

pub async fn deliver(http: &reqwest::Client, base: &str, event: &str, n: usize, body: String) {
    let url = format!("{base}/webhooks/github/github");
    let delivery = format!("narrative-{n}");
    let resp = signed(http, &url, event, Some(&delivery), body).await;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    assert_eq!(status, 202, "{event} {n}: {text}");
}

/// Pressure on the maintainer of Codertocat/Hello-World from three young
/// accounts pushing for `helper-dev`: an issue and three comments, weeks
/// apart. `said` ends the second message.
pub fn pressure(said: &str) -> [(&'static str, String); 4] {
    [
        (
            "issues",
            issue(
                77,
                "rill-ostrander",
                91_000_001,
                40,
                "Is this project still alive? Pull requests wait for weeks and nothing gets merged. @Codertocat",
            ),
        ),
        (
            "issue_comment",
            comment(
                81_000_001,
                77,
                "vessa-quill",
                91_000_002,
                33,
                &format!(
                    "Same question. The project needs a co-maintainer with merge rights; @helper-dev knows the code. {said}"
                ),
            ),
        ),
        (
            "issue_comment",
            comment(
                81_000_002,
                78,
                "rill-ostrander",
                91_000_001,
                25,
                "Three weeks and no answer. Add a co-maintainer now or admit the project is dead.",
            ),
        ),
        (
            "issue_comment",
            comment(
                81_000_003,
                78,
                "taddeo-brix",
                91_000_003,
                20,
                "Agree with the others. Please hand it to @helper-dev now instead of letting it rot.",
            ),
        ),
    ]
}

/// The first narrative campaign among the findings, once every accepted
/// change is applied.
pub async fn campaign(http: &reqwest::Client, base: &str) -> Option<Value> {
    settled(http, base).await;
    let (status, body) = get_json(
        http,
        &format!("{base}/api/v1/findings?rule=narrative-campaign"),
        Some(VIEWER),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["findings"].as_array().and_then(|f| f.first().cloned())
}
