//! Whole reads, from attachments and from a scripted SCIM server: the
//! records, the coverage they claim, and the failures that must stop a sync.

use std::cell::RefCell;
use std::collections::VecDeque;

use serde_json::{Value as Json, json};

use org_mesh_plugin::connector::Attachment;
use org_mesh_plugin::http::{self, AuthScheme, Request, Response};
use org_mesh_plugin::rest::Transport;
use org_mesh_plugin::types::{Batch, Coverage, PluginError, Value};
use scim_connector::{Config, read};

const BASE: &str = "http://127.0.0.1:9/scim/v2";
const BJENSEN: &str = "2819c223-7f76-453a-919d-413861904646";
const MANDY: &str = "902c246b-6245-4190-8e05-00816be7344a";

type TestResult = Result<(), String>;

fn rfc(name: &str) -> Result<Json, String> {
    let path = format!("{}/tests/data/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))
}

fn list(resources: Vec<Json>) -> Json {
    let total = resources.len();
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": total,
        "Resources": Json::Array(resources),
    })
}

/// Mandy, a member of RFC 7643's "Tour Guides" group, as Entra ID would
/// send her after disabling her: `active` as the string "False".
fn mandy() -> Json {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": MANDY,
        "userName": "mandy@example.com",
        "active": "False",
        "emails": [{"value": "Mandy@Example.com", "type": "work"}],
    })
}

fn attachment(name: &str, document: &Json) -> Attachment {
    Attachment {
        name: name.to_string(),
        content: document.to_string().into_bytes(),
    }
}

fn config(url: Option<&str>) -> Result<Config, String> {
    let mut json = json!({"provider": "okta", "page_size": 2});
    if let Some(url) = url {
        json["url"] = json!(url);
    }
    Config::parse(&json.to_string()).map_err(|e| format!("{e:?}"))
}

/// No transport is needed when reading attachments; this one fails every
/// request so a test notices if one is made.
struct Offline;

impl Transport for Offline {
    fn send(&self, _request: &Request) -> Result<Response, http::Error> {
        Err(http::Error::Denied("tests make no requests".into()))
    }

    fn now_unix_secs(&self) -> u64 {
        0
    }

    fn sleep_secs(&self, _secs: u64) {}

    fn warn(&self, _message: &str, _fields: &[(&str, String)]) {}
}

fn read_attachments(attachments: &[Attachment]) -> Result<(Batch, Vec<String>), PluginError> {
    let config = Config::parse(r#"{"provider":"okta"}"#)?;
    read(&config, attachments, Offline)
}

fn props(batch: &Batch, key: &str) -> Result<Json, String> {
    let node = batch
        .nodes
        .iter()
        .find(|n| n.key == key)
        .ok_or_else(|| format!("no node {key}"))?;
    let mut out = serde_json::Map::new();
    for (name, value) in &node.properties {
        let value = match value {
            Value::Boolean(b) => json!(b),
            Value::Integer(i) => json!(i),
            Value::Text(s) => json!(s),
            Value::Texts(list) => json!(list),
            other => json!(format!("{other:?}")),
        };
        out.insert(name.clone(), value);
    }
    Ok(Json::Object(out))
}

fn edges(batch: &Batch) -> Vec<String> {
    batch
        .edges
        .iter()
        .map(|e| format!("{} -{}-> {}", e.from.key, e.kind, e.to.key))
        .collect()
}

fn coverage(batch: &Batch) -> Vec<String> {
    batch
        .complete
        .iter()
        .map(|c| match c {
            Coverage::Nodes(label) => format!("nodes {label}"),
            Coverage::EdgesTo((kind, to)) => format!("{kind} to {}", to.key),
            Coverage::EdgesFrom((kind, from)) => format!("{kind} from {}", from.key),
            Coverage::Node(node) => format!("node {}", node.key),
            Coverage::Edge((kind, from, to)) => format!("{kind} {} to {}", from.key, to.key),
        })
        .collect()
}

fn exported() -> Result<Vec<Attachment>, String> {
    let users = list(vec![rfc("rfc7643-8.3-enterprise_user")?, mandy()]);
    let groups = list(vec![rfc("rfc7643-8.4-group")?]);
    Ok(vec![
        attachment("users", &users),
        attachment("groups", &groups),
    ])
}

#[test]
fn exported_files_become_accounts_groups_and_memberships() -> TestResult {
    let (batch, notes) = read_attachments(&exported()?).map_err(|e| format!("{e:?}"))?;
    assert_eq!(
        props(&batch, &format!("okta:{BJENSEN}"))?,
        json!({
            "provider": "okta",
            "user_name": "bjensen@example.com",
            "email": "bjensen@example.com",
            "emails": ["bjensen@example.com", "babs@jensen.org"],
            "external_id": "701984",
            "active": true,
            "display_name": "Babs Jensen",
            "given_name": "Barbara",
            "family_name": "Jensen",
            "employee_number": "701984",
            "department": "Tour Operations",
            "manager_id": "26118915-6090-4610-87e4-49d8ca9f808d",
        })
    );
    let group_key = "okta:e9e30dba-f08f-4109-8486-d5c6a331660a";
    assert_eq!(
        props(&batch, group_key)?,
        json!({"provider": "okta", "display_name": "Tour Guides"})
    );
    assert_eq!(
        edges(&batch),
        vec![
            format!("okta:{BJENSEN} -MEMBER_OF-> {group_key}"),
            format!("okta:{MANDY} -MEMBER_OF-> {group_key}"),
        ]
    );
    assert_eq!(
        coverage(&batch),
        vec![
            "nodes Account".to_string(),
            "nodes Group".to_string(),
            format!("MEMBER_OF to {group_key}"),
        ]
    );
    assert!(notes.is_empty(), "{notes:?}");
    Ok(())
}

#[test]
fn entra_false_string_marks_the_account_inactive() -> TestResult {
    let (batch, _) = read_attachments(&exported()?).map_err(|e| format!("{e:?}"))?;
    let account = props(&batch, &format!("okta:{MANDY}"))?;
    assert_eq!(account["active"], false);
    assert_eq!(account["email"], "mandy@example.com");
    Ok(())
}

#[test]
fn without_groups_only_accounts_are_covered() -> TestResult {
    let users = list(vec![mandy()]);
    let (batch, _) =
        read_attachments(&[attachment("users", &users)]).map_err(|e| format!("{e:?}"))?;
    assert_eq!(coverage(&batch), vec!["nodes Account"]);
    Ok(())
}

#[test]
fn nested_groups_become_group_memberships() -> TestResult {
    let users = list(vec![mandy()]);
    let groups = rfc("rfc7644-3.7.1-list_response-circular_reference")?;
    let (batch, _) =
        read_attachments(&[attachment("users", &users), attachment("groups", &groups)])
            .map_err(|e| format!("{e:?}"))?;
    assert_eq!(
        edges(&batch),
        vec![
            "okta:6c5bb468-14b2-4183-baf2-06d523e03bd3 -MEMBER_OF-> okta:c3a26dd3-27a0-4dec-a2ac-ce211e105f97",
            "okta:c3a26dd3-27a0-4dec-a2ac-ce211e105f97 -MEMBER_OF-> okta:6c5bb468-14b2-4183-baf2-06d523e03bd3",
        ]
    );
    let from_labels: Vec<&str> = batch.edges.iter().map(|e| e.from.label.as_str()).collect();
    assert_eq!(from_labels, vec!["Group", "Group"]);
    Ok(())
}

#[test]
fn members_missing_from_the_users_are_skipped_and_counted() -> TestResult {
    let users = list(vec![rfc("rfc7643-8.1-user-minimal")?]);
    let groups = list(vec![rfc("rfc7643-8.4-group")?]);
    let (batch, notes) =
        read_attachments(&[attachment("users", &users), attachment("groups", &groups)])
            .map_err(|e| format!("{e:?}"))?;
    assert_eq!(batch.edges.len(), 1, "only bjensen is listed");
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("Skipped 1 group membership")),
        "{notes:?}"
    );
    Ok(())
}

#[test]
fn the_same_user_twice_fails_the_read() -> TestResult {
    // RFC 7643's full and enterprise examples describe the same user.
    let users = list(vec![
        rfc("rfc7643-8.2-user-full")?,
        rfc("rfc7643-8.3-enterprise_user")?,
    ]);
    let result = read_attachments(&[attachment("users", &users)]);
    assert!(
        matches!(&result, Err(PluginError::InvalidInput(m)) if m.contains("appears twice")),
        "{result:?}"
    );
    Ok(())
}

#[test]
fn a_bad_user_fails_the_whole_export() -> TestResult {
    let mut bad = mandy();
    bad["active"] = json!("disabled");
    let users = list(vec![rfc("rfc7643-8.3-enterprise_user")?, bad]);
    let result = read_attachments(&[attachment("users", &users)]);
    assert!(
        matches!(&result, Err(PluginError::InvalidInput(m))
            if m == "users: Resources[1] (\"mandy@example.com\"): active is \"disabled\", neither a boolean nor \"True\"/\"False\""),
        "{result:?}"
    );
    Ok(())
}

#[test]
fn a_single_page_of_a_larger_listing_is_refused() -> TestResult {
    let users = rfc("rfc7644-3.4.3-list_response-post_query")?;
    let result = read_attachments(&[attachment("users", &users)]);
    assert!(
        matches!(&result, Err(PluginError::InvalidInput(m)) if m.contains("holds 2 of 100")),
        "{result:?}"
    );
    Ok(())
}

#[test]
fn no_url_and_no_users_attachment_is_a_config_error() -> TestResult {
    let groups = list(Vec::new());
    let result = read_attachments(&[attachment("groups", &groups)]);
    assert!(
        matches!(&result, Err(PluginError::InvalidConfig(m)) if m.starts_with("url:")),
        "{result:?}"
    );
    Ok(())
}

#[test]
fn malformed_json_is_invalid_input() -> TestResult {
    let result = read_attachments(&[Attachment {
        name: "users".into(),
        content: b"{\"Resources\": [".to_vec(),
    }]);
    assert!(
        matches!(&result, Err(PluginError::InvalidInput(m)) if m.starts_with("users: not JSON")),
        "{result:?}"
    );
    Ok(())
}

/// Answers SCIM requests in order and records them.
#[derive(Default)]
struct Server {
    answers: RefCell<VecDeque<(u16, Json)>>,
    sent: RefCell<Vec<Request>>,
}

impl Server {
    fn new(answers: Vec<(u16, Json)>) -> Self {
        Self {
            answers: RefCell::new(answers.into()),
            ..Self::default()
        }
    }

    fn paths(&self) -> Vec<String> {
        self.sent
            .borrow()
            .iter()
            .map(|r| r.url.trim_start_matches(BASE).to_string())
            .collect()
    }
}

impl Transport for &Server {
    fn send(&self, request: &Request) -> Result<Response, http::Error> {
        self.sent.borrow_mut().push(request.clone());
        let (status, body) = self
            .answers
            .borrow_mut()
            .pop_front()
            .unwrap_or((599, json!({"detail": "no answer scripted"})));
        Ok(Response {
            status,
            headers: vec![("content-type".into(), "application/scim+json".into())],
            body: body.to_string().into_bytes(),
        })
    }

    fn now_unix_secs(&self) -> u64 {
        0
    }

    fn sleep_secs(&self, _secs: u64) {}

    fn warn(&self, _message: &str, _fields: &[(&str, String)]) {}
}

fn page(total: usize, start: usize, resources: Vec<Json>) -> Json {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": resources.len(),
        "Resources": Json::Array(resources),
    })
}

#[test]
fn server_is_paged_by_start_index_until_total() -> TestResult {
    let minimal = rfc("rfc7643-8.1-user-minimal")?;
    let third = json!({"id": "3", "userName": "third@example.com", "active": true});
    let server = Server::new(vec![
        (200, page(3, 1, vec![minimal, mandy()])),
        (200, page(3, 3, vec![third])),
        (200, page(1, 1, vec![rfc("rfc7643-8.4-group")?])),
    ]);
    let (batch, _) = read(&config(Some(BASE))?, &[], &server).map_err(|e| format!("{e:?}"))?;
    assert_eq!(
        server.paths(),
        vec![
            "/Users?startIndex=1&count=2",
            "/Users?startIndex=3&count=2",
            "/Groups?startIndex=1&count=2",
        ]
    );
    let sent = server.sent.borrow();
    assert!(sent.iter().all(|r| {
        r.auth
            .as_ref()
            .is_some_and(|a| a.secret == "token" && matches!(a.scheme, AuthScheme::Bearer))
    }));
    assert_eq!(
        batch.nodes.iter().filter(|n| n.label == "Account").count(),
        3
    );
    assert_eq!(batch.edges.len(), 2);
    assert_eq!(coverage(&batch).len(), 3);
    Ok(())
}

#[test]
fn server_without_groups_still_covers_accounts() -> TestResult {
    let server = Server::new(vec![
        (200, page(1, 1, vec![mandy()])),
        (
            404,
            json!({"detail": "Resource type Groups not supported", "status": "404"}),
        ),
    ]);
    let (batch, notes) = read(&config(Some(BASE))?, &[], &server).map_err(|e| format!("{e:?}"))?;
    assert_eq!(coverage(&batch), vec!["nodes Account"]);
    assert!(notes.iter().any(|n| n.contains("no groups")), "{notes:?}");
    Ok(())
}

#[test]
fn server_that_stops_short_of_its_total_fails() -> TestResult {
    let server = Server::new(vec![
        (
            200,
            page(5, 1, vec![mandy(), rfc("rfc7643-8.1-user-minimal")?]),
        ),
        (200, page(5, 3, Vec::new())),
    ]);
    let result = read(&config(Some(BASE))?, &[], &server);
    assert!(
        matches!(&result, Err(PluginError::Upstream(m)) if m.contains("after 2 of 5")),
        "{result:?}"
    );
    Ok(())
}

#[test]
fn refused_token_is_forbidden() -> TestResult {
    let server = Server::new(vec![(401, json!({"detail": "Invalid bearer token"}))]);
    let result = read(&config(Some(BASE))?, &[], &server);
    assert!(
        matches!(&result, Err(PluginError::Forbidden(m)) if m.contains("Invalid bearer token")),
        "{result:?}"
    );
    Ok(())
}
