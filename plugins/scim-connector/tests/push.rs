//! Pushed SCIM changes: the stored resources the host forwards after each
//! write, from RFC 7643's examples and in the shape Entra ID writes them.

use serde_json::{Value as Json, json};

use org_mesh_plugin::connector::IncomingRequest;
use org_mesh_plugin::types::{Batch, Coverage, PluginError, Value};
use scim_connector::handle_push;

const BJENSEN: &str = "2819c223-7f76-453a-919d-413861904646";
const MANDY: &str = "902c246b-6245-4190-8e05-00816be7344a";
const TOUR_GUIDES: &str = "e9e30dba-f08f-4109-8486-d5c6a331660a";

type TestResult = Result<(), String>;

fn rfc(name: &str) -> Result<Json, String> {
    let path = format!("{}/tests/data/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))
}

/// A user as Entra ID provisions one: booleans as strings, `Primary` with
/// a capital, and no `type` on group members.
fn entra_user(active: &str) -> Json {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": MANDY,
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7e3f3a7b4c1d",
        "userName": "Mandy@Contoso.com",
        "active": active,
        "displayName": "Mandy Pepperidge",
        "emails": [{"Primary": "True", "type": "work", "value": "Mandy@Contoso.com"}],
        "name": {"givenName": "Mandy", "familyName": "Pepperidge"},
    })
}

fn push(method: &str, path: &str, body: Option<&Json>) -> Result<Batch, PluginError> {
    handle_push(&IncomingRequest {
        config: r#"{"provider":"azure-ad"}"#.into(),
        method: method.into(),
        path: path.into(),
        headers: vec![("content-type".into(), "application/scim+json".into())],
        body: body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
    })
}

fn pushed(method: &str, path: &str, body: Option<&Json>) -> Result<Batch, String> {
    let batch = push(method, path, body).map_err(|e| format!("{method} {path}: {e:?}"))?;
    assert!(batch.partial, "push batches are partial");
    Ok(batch)
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
            Value::Null => Json::Null,
            Value::Boolean(b) => json!(b),
            Value::Text(s) => json!(s),
            Value::Texts(list) => json!(list),
            other => json!(format!("{other:?}")),
        };
        out.insert(name.clone(), value);
    }
    Ok(Json::Object(out))
}

fn coverage(batch: &Batch) -> Vec<String> {
    batch
        .complete
        .iter()
        .map(|c| match c {
            Coverage::Node(n) => format!("node {}", n.key),
            Coverage::EdgesTo((kind, to)) => format!("{kind} to {}", to.key),
            Coverage::EdgesFrom((kind, from)) => format!("{kind} from {}", from.key),
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn a_put_user_gives_the_account_a_sync_gives() -> TestResult {
    let user = rfc("rfc7643-8.3-enterprise_user")?;
    let path = format!("/Users/{BJENSEN}");
    let batch = pushed("PUT", &path, Some(&user))?;
    let account = props(&batch, &format!("azure-ad:{BJENSEN}"))?;
    assert_eq!(account["user_name"], "bjensen@example.com");
    assert_eq!(account["email"], "bjensen@example.com");
    assert_eq!(account["active"], true);
    assert_eq!(account["department"], "Tour Operations");
    assert_eq!(account["deprovisioned"], Json::Null);
    // The enterprise example sets every property the mapping knows, so
    // only `deprovisioned` is cleared.
    let nulls: Vec<&String> = account
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(_, v)| v.is_null())
                .map(|(k, _)| k)
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(nulls, vec!["deprovisioned"]);
    assert!(batch.edges.is_empty() && batch.complete.is_empty());
    Ok(())
}

#[test]
fn attributes_a_pushed_user_lacks_are_cleared() -> TestResult {
    let user = rfc("rfc7643-8.1-user-minimal")?;
    let batch = pushed("PUT", &format!("/Users/{BJENSEN}"), Some(&user))?;
    let account = props(&batch, &format!("azure-ad:{BJENSEN}"))?;
    assert_eq!(account["user_name"], "bjensen@example.com");
    for cleared in ["email", "emails", "active", "department", "manager_id"] {
        assert_eq!(account.get(cleared), Some(&Json::Null), "{cleared}");
    }
    Ok(())
}

#[test]
fn entra_string_booleans_set_active() -> TestResult {
    let path = format!("/Users/{MANDY}");
    for (raw, expected) in [("True", true), ("False", false), ("false", false)] {
        let batch = pushed("PUT", &path, Some(&entra_user(raw)))?;
        let account = props(&batch, &format!("azure-ad:{MANDY}"))?;
        assert_eq!(account["active"], expected, "{raw}");
        assert_eq!(account["email"], "mandy@contoso.com");
    }
    let err = push("PUT", &path, Some(&entra_user("Nope"))).err();
    assert!(
        matches!(&err, Some(PluginError::InvalidInput(m)) if m.starts_with(&format!("PUT {path} (\"Mandy@Contoso.com\"): active is"))),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn a_put_group_gives_edges_from_members_and_covers_the_rest() -> TestResult {
    let group = rfc("rfc7643-8.4-group")?;
    let batch = pushed("PUT", &format!("/Groups/{TOUR_GUIDES}"), Some(&group))?;
    let node = props(&batch, &format!("azure-ad:{TOUR_GUIDES}"))?;
    assert_eq!(node["display_name"], "Tour Guides");
    assert_eq!(node["external_id"], Json::Null);
    let edges: Vec<String> = batch
        .edges
        .iter()
        .map(|e| format!("{} {} -{}-> {}", e.from.label, e.from.key, e.kind, e.to.key))
        .collect();
    assert_eq!(
        edges,
        vec![
            format!("Account azure-ad:{BJENSEN} -MEMBER_OF-> azure-ad:{TOUR_GUIDES}"),
            format!("Account azure-ad:{MANDY} -MEMBER_OF-> azure-ad:{TOUR_GUIDES}"),
        ]
    );
    assert_eq!(
        coverage(&batch),
        vec![format!("MEMBER_OF to azure-ad:{TOUR_GUIDES}")]
    );

    // Entra ID removes the last member by replacing the list with nothing:
    // no edges, and the coverage marks the old ones gone.
    let mut emptied = group;
    emptied["members"] = json!([]);
    let batch = pushed("PUT", &format!("/Groups/{TOUR_GUIDES}"), Some(&emptied))?;
    assert!(batch.edges.is_empty());
    assert_eq!(batch.complete.len(), 1);
    Ok(())
}

#[test]
fn nested_group_members_stay_groups() -> TestResult {
    let group = json!({
        "id": "g1", "displayName": "Outer",
        "members": [{"value": "g2", "type": "Group"}, {"value": "u1", "type": "User"}],
    });
    let batch = pushed("PUT", "/Groups/g1", Some(&group))?;
    let from: Vec<String> = batch
        .edges
        .iter()
        .map(|e| format!("{} {}", e.from.label, e.from.key))
        .collect();
    assert_eq!(from, vec!["Group azure-ad:g2", "Account azure-ad:u1"]);
    Ok(())
}

#[test]
fn a_deleted_user_is_kept_deprovisioned_and_its_memberships_covered() -> TestResult {
    let path = format!("/Users/{MANDY}");
    let batch = pushed("DELETE", &path, Some(&entra_user("True")))?;
    let key = format!("azure-ad:{MANDY}");
    let account = props(&batch, &key)?;
    assert_eq!(account["active"], false);
    assert_eq!(account["deprovisioned"], true);
    assert_eq!(account["user_name"], "Mandy@Contoso.com");
    assert!(batch.edges.is_empty());
    assert_eq!(coverage(&batch), vec![format!("MEMBER_OF from {key}")]);

    // Without the stored user the flags alone are sent.
    let batch = pushed("DELETE", &path, None)?;
    let account = props(&batch, &key)?;
    assert_eq!(
        account,
        json!({"provider": "azure-ad", "active": false, "deprovisioned": true})
    );
    Ok(())
}

#[test]
fn a_deleted_group_is_covered_and_left_out() -> TestResult {
    let group = rfc("rfc7643-8.4-group")?;
    let batch = pushed("DELETE", &format!("/Groups/{TOUR_GUIDES}"), Some(&group))?;
    assert!(batch.nodes.is_empty() && batch.edges.is_empty());
    assert_eq!(
        coverage(&batch),
        vec![
            format!("node azure-ad:{TOUR_GUIDES}"),
            format!("MEMBER_OF to azure-ad:{TOUR_GUIDES}"),
            format!("MEMBER_OF from azure-ad:{TOUR_GUIDES}"),
        ]
    );
    Ok(())
}

#[test]
fn requests_that_cannot_be_mapped_say_why() {
    let user = entra_user("True");
    let cases = [
        (
            "PUT",
            "/Users/other-id".to_string(),
            Some(&user),
            "is not the path's",
        ),
        (
            "PATCH",
            format!("/Users/{MANDY}"),
            Some(&user),
            "only PUT and DELETE",
        ),
        (
            "PUT",
            "/Schemas".to_string(),
            Some(&user),
            "not a SCIM resource path",
        ),
        ("PUT", format!("/Users/{MANDY}"), None, "holds no resource"),
    ];
    for (method, path, body, says) in cases {
        let err = push(method, &path, body).err();
        assert!(
            matches!(&err, Some(PluginError::InvalidInput(m)) if m.contains(says)),
            "{method} {path}: {err:?}"
        );
    }
    let err = handle_push(&IncomingRequest {
        config: r#"{"provider":"azure-ad"}"#.into(),
        method: "PUT".into(),
        path: "/Users/1".into(),
        headers: Vec::new(),
        body: b"{oops".to_vec(),
    })
    .err();
    assert!(matches!(&err, Some(PluginError::InvalidInput(m)) if m.contains("not JSON")));
}
