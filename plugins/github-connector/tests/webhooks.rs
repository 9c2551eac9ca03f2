//! Webhook deliveries: every example of every mapped event in the npm
//! package `@octokit/webhooks-examples` (pinned in
//! `conformance/replay/package.json`, installed by `.ci/setup`), and
//! variations of them for the cases the examples lack.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::{Value as Json, json};

use github_connector::{EVENTS, Handled, PROTECTION_PROPERTIES, handle};
use org_mesh_plugin::connector::IncomingRequest;
use org_mesh_plugin::types::{Batch, Coverage, PluginError, Value};

type TestResult = Result<(), String>;

/// Every example, as `(event, body)`, in the package's order; read once.
fn examples() -> Result<Vec<(String, Json)>, String> {
    static ALL: OnceLock<Result<Vec<(String, Json)>, String>> = OnceLock::new();
    ALL.get_or_init(read_examples).clone()
}

fn read_examples() -> Result<Vec<(String, Json)>, String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(
        "../../conformance/replay/node_modules/@octokit/webhooks-examples/api.github.com/index.json",
    );
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: {e}; run .ci/setup to install the pinned npm packages",
            path.display()
        )
    })?;
    let events: Vec<Json> = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for event in events {
        let name = event["name"].as_str().ok_or("an event without a name")?;
        for example in event["examples"].as_array().ok_or("no examples list")? {
            out.push((name.to_string(), example.clone()));
        }
    }
    Ok(out)
}

fn first(event: &str, action: Option<&str>) -> Result<Json, String> {
    examples()?
        .into_iter()
        .find(|(e, body)| e == event && body["action"].as_str() == action)
        .map(|(_, body)| body)
        .ok_or_else(|| format!("no example of {event} {action:?}"))
}

/// Delivers `body` to a connector configured for the organisation the
/// body is about (the examples come from several).
fn deliver(event: &str, body: &Json) -> Result<Handled, PluginError> {
    let org = body["organization"]["login"]
        .as_str()
        .unwrap_or("Octocoders");
    deliver_to(org, event, body)
}

fn deliver_to(org: &str, event: &str, body: &Json) -> Result<Handled, PluginError> {
    handle(&IncomingRequest {
        config: json!({ "org": org }).to_string(),
        method: "POST".into(),
        path: "/".into(),
        headers: vec![
            ("x-github-event".into(), event.into()),
            ("content-type".into(), "application/json".into()),
        ],
        body: serde_json::to_vec(body).unwrap_or_default(),
    })
}

fn delivered(event: &str, body: &Json) -> Result<Batch, String> {
    let handled = deliver(event, body).map_err(|e| format!("{event}: {e:?}"))?;
    assert_eq!(handled.status, 202);
    assert!(handled.batch.partial, "{event}: push batches are partial");
    Ok(handled.batch)
}

fn node_props(batch: &Batch, key: &str) -> Result<Vec<(String, Value)>, String> {
    batch
        .nodes
        .iter()
        .find(|n| n.key == key)
        .map(|n| n.properties.clone())
        .ok_or_else(|| format!("no node {key} in {:?}", keys(batch)))
}

/// A property as JSON, which compares; `Some(null)` is an explicit null.
fn prop(props: &[(String, Value)], name: &str) -> Option<Json> {
    let (_, value) = props.iter().find(|(k, _)| k == name)?;
    Some(match value {
        Value::Null => Json::Null,
        Value::Boolean(b) => json!(b),
        Value::Integer(i) => json!(i),
        Value::Text(s) => json!(s),
        other => json!(format!("{other:?}")),
    })
}

fn keys(batch: &Batch) -> Vec<String> {
    batch.nodes.iter().map(|n| n.key.clone()).collect()
}

fn edges(batch: &Batch) -> Vec<String> {
    batch
        .edges
        .iter()
        .map(|e| {
            let props: Vec<String> = e
                .properties
                .iter()
                .filter_map(|(k, _)| Some(format!("{k}={}", prop(&e.properties, k)?)))
                .collect();
            format!(
                "{} -{}-> {} {}",
                e.from.key,
                e.kind,
                e.to.key,
                props.join(",")
            )
        })
        .collect()
}

fn covered(batch: &Batch) -> Vec<String> {
    batch
        .complete
        .iter()
        .map(|c| match c {
            Coverage::Node(n) => format!("node {}", n.key),
            Coverage::Edge((kind, from, to)) => format!("{} -{kind}-> {}", from.key, to.key),
            other => format!("{other:?}"),
        })
        .collect()
}

/// What every mapped batch must hold whatever the event: provider keys,
/// one occurrence of each property name, and nothing both recorded and
/// covered as gone.
fn check_sensible(what: &str, batch: &Batch) -> TestResult {
    for node in &batch.nodes {
        if !node.key.starts_with("github:") || node.key.len() <= "github:".len() {
            return Err(format!("{what}: key {:?}", node.key));
        }
        let names: BTreeSet<&str> = node.properties.iter().map(|(k, _)| k.as_str()).collect();
        if names.len() != node.properties.len() {
            return Err(format!("{what}: {} repeats a property", node.key));
        }
        if node.label == "Account" && prop(&node.properties, "login").is_none() {
            return Err(format!("{what}: account {} has no login", node.key));
        }
    }
    for edge in &batch.edges {
        if !(edge.from.key.starts_with("github:") && edge.to.key.starts_with("github:")) {
            return Err(format!("{what}: edge {edge:?}"));
        }
    }
    let recorded: BTreeSet<String> = keys(batch).into_iter().collect();
    for coverage in &batch.complete {
        if let Coverage::Node(n) = coverage
            && recorded.contains(&n.key)
        {
            return Err(format!("{what}: {} both recorded and covered", n.key));
        }
    }
    Ok(())
}

#[test]
fn every_example_of_every_mapped_event_is_handled() -> TestResult {
    let mut per_event: std::collections::BTreeMap<&str, usize> =
        EVENTS.iter().map(|e| (*e, 0)).collect();
    for (index, (event, body)) in examples()?.iter().enumerate() {
        let Some(count) = per_event.get_mut(event.as_str()) else {
            continue;
        };
        *count += 1;
        let what = format!("{event} example {index} ({})", body["action"]);
        let batch = delivered(event, body)?;
        check_sensible(&what, &batch)?;
        // The deleted-team membership is the one example acknowledged
        // without records; everything else of these events records something.
        let deleted_team = event == "membership" && body["team"]["deleted"] == json!(true);
        let rule_elsewhere = event == "branch_protection_rule"
            && body["rule"]["name"] != body["repository"]["default_branch"];
        let empty = batch.nodes.is_empty() && batch.complete.is_empty();
        assert_eq!(empty, deleted_team || rule_elsewhere, "{what}: {batch:?}");
    }
    for (event, count) in per_event {
        assert!(count > 0, "the package has no example of {event}");
    }
    Ok(())
}

#[test]
fn every_other_event_is_acknowledged_with_nothing_recorded() -> TestResult {
    let mut others = 0;
    for (event, body) in examples()? {
        if EVENTS.contains(&event.as_str()) {
            continue;
        }
        others += 1;
        let batch = delivered(&event, &body)?;
        assert!(batch.nodes.is_empty() && batch.edges.is_empty() && batch.complete.is_empty());
    }
    assert!(others > 200, "only {others} examples of other events");
    Ok(())
}

#[test]
fn a_member_added_with_a_pending_invitation_stays_pending() -> TestResult {
    let body = first("organization", Some("member_added"))?;
    assert_eq!(body["membership"]["state"], "pending");
    let batch = delivered("organization", &body)?;
    assert_eq!(
        edges(&batch),
        vec!["github:hacktocat -MEMBER_OF-> github:Octocoders role=\"member\",state=\"pending\""]
    );
    let org = node_props(&batch, "github:Octocoders")?;
    assert_eq!(prop(&org, "id"), Some(json!(38_302_899)));
    Ok(())
}

#[test]
fn ids_beyond_32_bits_survive() -> TestResult {
    // The largest id in the package (a workflow job's); no example of a
    // mapped event carries one that large, so a member is given it.
    let mut body = first("organization", Some("member_added"))?;
    body["membership"]["user"]["id"] = json!(14_541_957_942_i64);
    body["membership"]["state"] = json!("active");
    let batch = delivered("organization", &body)?;
    let account = node_props(&batch, "github:hacktocat")?;
    assert_eq!(prop(&account, "id"), Some(json!(14_541_957_942_i64)));
    assert!(edges(&batch)[0].contains("state=\"active\""));
    Ok(())
}

#[test]
fn an_invitation_is_a_pending_membership_in_membership_words() -> TestResult {
    let batch = delivered(
        "organization",
        &first("organization", Some("member_invited"))?,
    )?;
    assert_eq!(
        edges(&batch),
        vec!["github:hacktocat -MEMBER_OF-> github:Octocoders role=\"member\",state=\"pending\""]
    );
    let mut email_only = first("organization", Some("member_invited"))?;
    email_only["invitation"]["login"] = Json::Null;
    email_only["user"] = Json::Null;
    let batch = delivered("organization", &email_only)?;
    assert!(batch.edges.is_empty() && batch.nodes.is_empty());
    Ok(())
}

#[test]
fn removals_cover_the_edge_and_leave_it_out() -> TestResult {
    let mut body = first("organization", Some("member_added"))?;
    body["action"] = json!("member_removed");
    let batch = delivered("organization", &body)?;
    assert!(batch.edges.is_empty());
    assert_eq!(
        covered(&batch),
        vec!["github:hacktocat -MEMBER_OF-> github:Octocoders"]
    );

    let batch = delivered("membership", &first("membership", Some("removed"))?)?;
    assert!(batch.edges.is_empty());
    assert_eq!(
        covered(&batch),
        vec!["github:Codertocat -MEMBER_OF-> github:Octocoders/github"]
    );
    let batch = delivered("membership", &first("membership", Some("added"))?)?;
    assert_eq!(
        edges(&batch),
        vec!["github:Codertocat -MEMBER_OF-> github:Octocoders/github role=\"member\""]
    );

    let mut body = first("member", Some("added"))?;
    body["action"] = json!("removed");
    let batch = delivered("member", &body)?;
    assert_eq!(
        covered(&batch),
        vec!["github:hacktocat -HAS_PERMISSION-> github:Codertocat/Hello-World"]
    );
    Ok(())
}

#[test]
fn collaborator_role_comes_from_changes_or_is_left_to_the_store() -> TestResult {
    let edited = first("member", Some("edited"))?;
    let batch = delivered("member", &edited)?;
    assert_eq!(
        edges(&batch),
        vec!["github:octocat -HAS_PERMISSION-> github:Codertocat/Hello-World "]
    );
    let mut body = edited;
    body["changes"] = json!({"permission": {"from": "write", "to": "admin"}});
    assert!(edges(&delivered("member", &body)?)[0].ends_with("role=\"admin\""));
    body["changes"] = json!({"role_name": {"from": "write", "to": "maintain"}});
    assert!(edges(&delivered("member", &body)?)[0].ends_with("role=\"maintain\""));
    Ok(())
}

#[test]
fn teams_on_repositories_get_the_team_permission() -> TestResult {
    let batch = delivered("team", &first("team", Some("added_to_repository"))?)?;
    assert!(edges(&batch).contains(
        &"github:Octocoders/github -HAS_PERMISSION-> github:Octocoders/Hello-World role=\"read\""
            .to_string()
    ));
    let batch = delivered("team", &first("team", Some("removed_from_repository"))?)?;
    assert_eq!(
        covered(&batch),
        vec!["github:Octocoders/github -HAS_PERMISSION-> github:Octocoders/Hello-World"]
    );
    let batch = delivered("team", &first("team", Some("deleted"))?)?;
    assert_eq!(
        covered(&batch),
        vec![
            "node github:Octocoders/github",
            "github:Octocoders -OWNS-> github:Octocoders/github"
        ]
    );
    assert!(!keys(&batch).contains(&"github:Octocoders/github".to_string()));
    Ok(())
}

#[test]
fn repositories_deleted_renamed_and_transferred_cover_the_old_key() -> TestResult {
    let mut body = first("repository", Some("created"))?;
    body["action"] = json!("deleted");
    let batch = delivered("repository", &body)?;
    assert!(batch.nodes.is_empty());
    assert_eq!(
        covered(&batch),
        vec![
            "node github:Octocoders/Hello-World",
            "github:Octocoders -OWNS-> github:Octocoders/Hello-World"
        ]
    );

    let mut body = first("repository", Some("renamed"))?;
    body["changes"]["repository"]["name"]["from"] = json!("Old-Name");
    let batch = delivered("repository", &body)?;
    assert_eq!(covered(&batch)[0], "node github:Octocoders/Old-Name");
    assert!(keys(&batch).contains(&"github:Octocoders/Hello-World".to_string()));

    let batch = delivered("repository", &first("repository", Some("transferred"))?)?;
    assert_eq!(covered(&batch), vec!["node github:octocat/Hello-World"]);
    assert!(
        edges(&batch)
            .iter()
            .any(|e| e.contains("-OWNS-> github:Octocoders/Hello-World"))
    );
    Ok(())
}

#[test]
fn a_default_branch_rule_sets_protection_under_the_sync_names() -> TestResult {
    let created = examples()?
        .into_iter()
        .find(|(e, b)| e == "branch_protection_rule" && b["rule"]["name"] == "main")
        .map(|(_, b)| b)
        .ok_or("no rule for main")?;
    let batch = delivered("branch_protection_rule", &created)?;
    let key = "github:wolfy1339/octoherd-script-replace-pika-with-esbuild";
    let repo = node_props(&batch, key)?;
    let expect = [
        ("default_branch_protected", json!(true)),
        ("protection_enforce_admins", json!(false)),
        ("protection_required_approving_review_count", json!(1)),
        ("protection_dismiss_stale_reviews", json!(true)),
        ("protection_require_code_owner_reviews", json!(false)),
        ("protection_required_status_checks_strict", json!(false)),
        ("protection_allow_force_pushes", json!(false)),
        ("protection_allow_deletions", json!(false)),
        ("protection_required_linear_history", json!(false)),
        ("protection_required_signatures", json!(false)),
        ("protection_required_conversation_resolution", json!(false)),
    ];
    for (name, value) in expect {
        assert_eq!(prop(&repo, name), Some(value), "{name}");
    }

    // Reviews switched off read as no approvals, as the sync reads them.
    let mut body = created;
    body["rule"]["pull_request_reviews_enforcement_level"] = json!("off");
    body["rule"]["allow_force_pushes_enforcement_level"] = json!("everyone");
    let repo = node_props(&delivered("branch_protection_rule", &body)?, key)?;
    assert_eq!(
        prop(&repo, "protection_required_approving_review_count"),
        Some(json!(0))
    );
    assert_eq!(
        prop(&repo, "protection_allow_force_pushes"),
        Some(json!(true))
    );

    body["action"] = json!("deleted");
    let repo = node_props(&delivered("branch_protection_rule", &body)?, key)?;
    assert_eq!(prop(&repo, "default_branch_protected"), Some(json!(false)));
    for name in PROTECTION_PROPERTIES {
        assert_eq!(prop(&repo, name), Some(Json::Null), "{name}");
    }
    Ok(())
}

#[test]
fn activity_records_the_author_the_repository_and_the_text() -> TestResult {
    for (event, action, kind, object) in [
        ("issues", Some("opened"), "issue", "issue"),
        ("issue_comment", Some("created"), "issue-comment", "comment"),
        (
            "pull_request",
            Some("opened"),
            "pull-request",
            "pull_request",
        ),
        (
            "pull_request_review_comment",
            Some("created"),
            "review-comment",
            "comment",
        ),
    ] {
        let body = first(event, action)?;
        let batch = delivered(event, &body)?;
        let id = &body[object]["id"];
        let message = format!("github:Codertocat/Hello-World/{kind}/{id}");
        let mut got = keys(&batch);
        got.sort();
        assert_eq!(
            got,
            vec![
                "github:Codertocat".to_string(),
                "github:Codertocat/Hello-World".to_string(),
                message.clone(),
            ],
            "{event}"
        );
        let props = node_props(&batch, &message)?;
        assert_eq!(
            prop(&props, "body"),
            Some(body[object]["body"].clone()),
            "{event}"
        );
        assert_eq!(prop(&props, "author_association"), Some(json!("OWNER")));
        assert!(prop(&props, "created_at").is_some(), "{event}: {props:?}");
        let thread = prop(&props, "thread").ok_or("no thread")?;
        assert!(
            thread
                .as_str()
                .is_some_and(|t| t.starts_with("github:Codertocat/Hello-World#")),
            "{event}: {thread}"
        );
        let mut links: Vec<String> = edges(&batch).iter().map(|e| e.trim().to_string()).collect();
        links.sort();
        assert_eq!(
            links,
            vec![
                format!("github:Codertocat -AUTHORED-> {message}"),
                format!("{message} -POSTED_IN-> github:Codertocat/Hello-World"),
            ],
            "{event}"
        );
    }
    Ok(())
}

#[test]
fn pushes_record_each_commit_message_under_its_branch() -> TestResult {
    let body = examples()?
        .into_iter()
        .find(|(e, b)| e == "push" && b["commits"].as_array().is_some_and(|c| !c.is_empty()))
        .map(|(_, b)| b)
        .ok_or("no push example with commits")?;
    let batch = delivered("push", &body)?;
    let sha = body["commits"][0]["id"].as_str().ok_or("no commit id")?;
    let key = format!("github:Codertocat/Hello-World/commit/{sha}");
    let props = node_props(&batch, &key)?;
    assert_eq!(prop(&props, "kind"), Some(json!("commit")));
    assert_eq!(
        prop(&props, "body"),
        Some(body["commits"][0]["message"].clone())
    );
    let git_ref = body["ref"].as_str().ok_or("no ref")?;
    let branch = git_ref.strip_prefix("refs/heads/").unwrap_or(git_ref);
    assert_eq!(
        prop(&props, "thread"),
        Some(json!(format!("github:Codertocat/Hello-World@{branch}")))
    );
    let mut links: Vec<String> = edges(&batch).iter().map(|e| e.trim().to_string()).collect();
    links.sort();
    assert_eq!(
        links,
        vec![
            format!("github:Codertocat -AUTHORED-> {key}"),
            format!("{key} -POSTED_IN-> github:Codertocat/Hello-World"),
        ]
    );
    Ok(())
}

#[test]
fn mentions_link_the_message_to_the_accounts_named() -> TestResult {
    let mut body = first("issue_comment", Some("created"))?;
    body["comment"]["body"] =
        json!("@maintainer-one please hand this over to @helper; mail me at x@example.com");
    let batch = delivered("issue_comment", &body)?;
    let mut links: Vec<String> = edges(&batch)
        .iter()
        .filter(|e| e.contains("-MENTIONS->"))
        .map(|e| e.trim().to_string())
        .collect();
    links.sort();
    let message = "github:Codertocat/Hello-World/issue-comment/492700400";
    assert_eq!(
        links,
        vec![
            format!("{message} -MENTIONS-> github:helper"),
            format!("{message} -MENTIONS-> github:maintainer-one"),
        ]
    );
    for login in ["helper", "maintainer-one"] {
        let props = node_props(&batch, &format!("github:{login}"))?;
        assert_eq!(prop(&props, "login"), Some(json!(login)));
    }
    Ok(())
}

#[test]
fn a_deleted_comment_is_covered_and_no_text_is_kept() -> TestResult {
    let body = first("issue_comment", Some("deleted"))?;
    let batch = delivered("issue_comment", &body)?;
    assert!(
        !batch.nodes.iter().any(|n| n.label == "Message"),
        "{batch:?}"
    );
    let id = body["comment"]["id"].as_i64().ok_or("no comment id")?;
    assert_eq!(
        covered(&batch),
        vec![format!(
            "node github:Codertocat/Hello-World/issue-comment/{id}"
        )]
    );
    Ok(())
}

#[test]
fn text_is_left_out_when_the_operator_turns_it_off() -> TestResult {
    let body = first("issue_comment", Some("created"))?;
    let handled = handle(&IncomingRequest {
        config: r#"{"org":"Octocoders","messages":false}"#.into(),
        method: "POST".into(),
        path: "/".into(),
        headers: vec![("x-github-event".into(), "issue_comment".into())],
        body: serde_json::to_vec(&body).map_err(|e| e.to_string())?,
    })
    .map_err(|e| format!("{e:?}"))?;
    let mut got = keys(&handled.batch);
    got.sort();
    assert_eq!(
        got,
        vec!["github:Codertocat", "github:Codertocat/Hello-World"]
    );
    Ok(())
}

#[test]
fn malformed_bodies_of_mapped_events_name_the_event_and_field() -> TestResult {
    let mut body = first("organization", Some("member_added"))?;
    body["membership"]["user"] = json!({"id": 1});
    let err = deliver("organization", &body).err();
    assert!(
        matches!(&err, Some(PluginError::InvalidInput(m)) if m.starts_with("organization.member_added: membership.user is malformed")),
        "{err:?}"
    );
    let mut body = first("repository", Some("created"))?;
    body["repository"]["id"] = json!("12");
    let err = deliver("repository", &body).err();
    assert!(
        matches!(&err, Some(PluginError::InvalidInput(m)) if m.starts_with("repository.created: repository is malformed")),
        "{err:?}"
    );
    let err = handle(&IncomingRequest {
        config: r#"{"org":"o"}"#.into(),
        method: "POST".into(),
        path: "/".into(),
        headers: vec![("x-github-event".into(), "push".into())],
        body: b"not json".to_vec(),
    })
    .err();
    assert!(
        matches!(&err, Some(PluginError::InvalidInput(m)) if m.starts_with("push: the body is not JSON"))
    );
    // An event that is not mapped is acknowledged whatever its body.
    let handled = handle(&IncomingRequest {
        config: r#"{"org":"o"}"#.into(),
        method: "POST".into(),
        path: "/".into(),
        headers: vec![("x-github-event".into(), "ping".into())],
        body: b"not json".to_vec(),
    });
    assert!(matches!(handled, Ok(Handled { status: 202, .. })));
    Ok(())
}

#[test]
fn a_delivery_about_another_organisation_is_acknowledged_and_records_nothing() -> TestResult {
    let body = first("organization", Some("member_added"))?;
    assert_eq!(body["organization"]["login"], "Octocoders");
    let handled =
        deliver_to("octokit-fixture-org", "organization", &body).map_err(|e| format!("{e:?}"))?;
    assert_eq!(handled.status, 202);
    assert!(
        handled.batch.nodes.is_empty()
            && handled.batch.edges.is_empty()
            && handled.batch.complete.is_empty(),
        "{:?}",
        handled.batch
    );
    assert!(
        handled.body.contains(
            "an event of organisation Octocoders; this connector is for octokit-fixture-org"
        ),
        "{}",
        handled.body
    );
    // The configured login in another case is the same organisation.
    let same = deliver_to("octocoders", "organization", &body).map_err(|e| format!("{e:?}"))?;
    assert!(!same.batch.nodes.is_empty(), "{}", same.body);
    Ok(())
}
