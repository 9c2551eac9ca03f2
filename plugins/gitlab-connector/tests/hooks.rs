//! Every GitLab hook payload in `conformance/data/gitlab-hooks`, delivered
//! with the `X-Gitlab-Event` header GitLab sends for it.

use std::path::PathBuf;

use serde_json::{Value as Json, json};

use gitlab_connector::{Handled, REDACTED, handle};
use org_mesh_plugin::connector::IncomingRequest;
use org_mesh_plugin::types::{Batch, Coverage, PluginError, Value};

type TestResult = Result<(), String>;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance/data/gitlab-hooks")
}

/// The header GitLab sends with each copied payload.
fn hook_header(file: &str) -> Result<&'static str, String> {
    if file.starts_with("systemhooks/") {
        return Ok("System Hook");
    }
    let name = file
        .trim_start_matches("webhooks/")
        .trim_end_matches(".json");
    Ok(match name {
        "member" => "Member Hook",
        "subgroup" => "Subgroup Hook",
        "note_commit" | "note_issue" | "note_merge_request" | "note_snippet" => "Note Hook",
        "merge_request" | "group_merge_request" | "service_merge_request" => "Merge Request Hook",
        "push" => "Push Hook",
        "tag_push" => "Tag Push Hook",
        "issue" => "Issue Hook",
        "pipeline" => "Pipeline Hook",
        "build" | "job" => "Job Hook",
        "deployment" => "Deployment Hook",
        "feature_flag" => "Feature Flag Hook",
        "release" => "Release Hook",
        "wiki_page" => "Wiki Page Hook",
        "resource_access_token_group" | "resource_access_token_project" => {
            "Resource Access Token Hook"
        }
        other => return Err(format!("no header known for {other}")),
    })
}

fn payload(file: &str) -> Result<Json, String> {
    let path = data_dir().join(file);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{file}: {e}"))
}

fn files() -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for folder in ["webhooks", "systemhooks"] {
        let dir = data_dir().join(folder);
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let name = entry.map_err(|e| e.to_string())?.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".json") {
                out.push(format!("{folder}/{name}"));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn deliver(event: &str, body: &Json) -> Result<Handled, PluginError> {
    handle(&IncomingRequest {
        config: r#"{"instance":"gitlab.example.com"}"#.into(),
        method: "POST".into(),
        path: "/".into(),
        headers: vec![("x-gitlab-event".into(), event.into())],
        body: body.to_string().into_bytes(),
    })
}

fn delivered(file: &str) -> Result<Batch, String> {
    let body = payload(file)?;
    let handled = deliver(hook_header(file)?, &body).map_err(|e| format!("{file}: {e:?}"))?;
    assert_eq!(handled.status, 202, "{file}");
    assert!(handled.batch.partial, "{file}");
    Ok(handled.batch)
}

fn text(value: &Value) -> String {
    match value {
        Value::Text(s) => s.clone(),
        Value::Integer(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}

/// The batch in one line per record, to compare whole.
fn summary(batch: &Batch) -> Vec<String> {
    let mut out: Vec<String> = batch
        .nodes
        .iter()
        .map(|n| format!("{} {}", n.label, n.key))
        .collect();
    for e in &batch.edges {
        let role = e
            .properties
            .iter()
            .find(|(k, _)| k == "role")
            .map(|(_, v)| text(v));
        out.push(format!(
            "{} -{}-> {} role={}",
            e.from.key,
            e.kind,
            e.to.key,
            role.unwrap_or_default()
        ));
    }
    for c in &batch.complete {
        out.push(match c {
            Coverage::Node(n) => format!("gone {} {}", n.label, n.key),
            Coverage::Edge((kind, from, to)) => format!("gone {} -{kind}-> {}", from.key, to.key),
            other => format!("{other:?}"),
        });
    }
    out
}

fn prop(batch: &Batch, key: &str, name: &str) -> Option<String> {
    let node = batch.nodes.iter().find(|n| n.key == key)?;
    node.properties
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| text(v))
}

#[test]
fn every_payload_is_handled_and_mapped_as_expected() -> TestResult {
    let expected: Vec<(&str, Vec<&str>)> = vec![
        (
            "systemhooks/group_create.json",
            vec!["Group gitlab:storecloud"],
        ),
        (
            "systemhooks/group_destroy.json",
            vec!["gone Group gitlab:storecloud"],
        ),
        (
            "systemhooks/group_rename.json",
            vec![
                "Group gitlab:parent-group/better-name",
                "gone Group gitlab:parent-group/old-name",
            ],
        ),
        ("systemhooks/key_create.json", vec!["Account gitlab:root"]),
        ("systemhooks/key_destroy.json", vec!["Account gitlab:root"]),
        (
            "systemhooks/merge_request.json",
            vec![
                "Account gitlab:root",
                "Repository gitlab:jsmith/example",
                "Message gitlab:jsmith/example/merge-request/90",
                "gitlab:root -AUTHORED-> gitlab:jsmith/example/merge-request/90 role=",
                "gitlab:jsmith/example/merge-request/90 -POSTED_IN-> gitlab:jsmith/example role=",
            ],
        ),
        (
            "systemhooks/project_create.json",
            vec!["Repository gitlab:jsmith/storecloud"],
        ),
        (
            "systemhooks/project_destroy.json",
            vec!["gone Repository gitlab:jsmith/underscore"],
        ),
        (
            "systemhooks/project_rename.json",
            vec![
                "Repository gitlab:jsmith/underscore",
                "gone Repository gitlab:jsmith/overscore",
            ],
        ),
        (
            "systemhooks/project_transfer.json",
            vec![
                "Repository gitlab:scores/underscore",
                "gone Repository gitlab:jsmith/overscore",
            ],
        ),
        (
            "systemhooks/project_update.json",
            vec!["Repository gitlab:jsmith/storecloud"],
        ),
        // Older system hooks leave the pusher's username out.
        (
            "systemhooks/push.json",
            vec!["Repository gitlab:mike/diaspora"],
        ),
        ("systemhooks/repository_update.json", vec![]),
        (
            "systemhooks/tag_push.json",
            vec!["Repository gitlab:jsmith/example"],
        ),
        (
            "systemhooks/user_add_to_group.json",
            vec![
                "Account gitlab:johnsmith",
                "Group gitlab:storecloud",
                "gitlab:johnsmith -MEMBER_OF-> gitlab:storecloud role=maintainer",
            ],
        ),
        (
            "systemhooks/user_add_to_team.json",
            vec![
                "Account gitlab:johnsmith",
                "Repository gitlab:jsmith/storecloud",
                "gitlab:johnsmith -HAS_PERMISSION-> gitlab:jsmith/storecloud role=maintainer",
            ],
        ),
        ("systemhooks/user_create.json", vec!["Account gitlab:js"]),
        (
            "systemhooks/user_destroy.json",
            vec!["gone Account gitlab:js"],
        ),
        ("systemhooks/user_failed_login.json", vec![]),
        (
            "systemhooks/user_remove_from_group.json",
            vec![
                "Account gitlab:johnsmith",
                "Group gitlab:storecloud",
                "gone gitlab:johnsmith -MEMBER_OF-> gitlab:storecloud",
            ],
        ),
        (
            "systemhooks/user_remove_from_team.json",
            vec![
                "Account gitlab:johnsmith",
                "Repository gitlab:jsmith/storecloud",
                "gone gitlab:johnsmith -HAS_PERMISSION-> gitlab:jsmith/storecloud",
            ],
        ),
        (
            "systemhooks/user_rename.json",
            vec![
                "Account gitlab:new-exciting-name",
                "gone Account gitlab:old-boring-name",
            ],
        ),
        (
            "systemhooks/user_update_for_group.json",
            vec![
                "Account gitlab:johnsmith",
                "Group gitlab:storecloud",
                "gitlab:johnsmith -MEMBER_OF-> gitlab:storecloud role=maintainer",
            ],
        ),
        (
            "systemhooks/user_update_for_team.json",
            vec![
                "Account gitlab:johnsmith",
                "Repository gitlab:jsmith/storecloud",
                "gitlab:johnsmith -HAS_PERMISSION-> gitlab:jsmith/storecloud role=maintainer",
            ],
        ),
        ("webhooks/build.json", vec![]),
        ("webhooks/deployment.json", vec![]),
        ("webhooks/feature_flag.json", vec![]),
        (
            "webhooks/group_merge_request.json",
            vec![
                "Account gitlab:user1",
                "Repository gitlab:exm-namespace/example-project",
            ],
        ),
        (
            "webhooks/issue.json",
            vec![
                "Account gitlab:root",
                "Repository gitlab:gitlabhq/gitlab-test",
                "Message gitlab:gitlabhq/gitlab-test/issue/301",
                "gitlab:root -AUTHORED-> gitlab:gitlabhq/gitlab-test/issue/301 role=",
                "gitlab:gitlabhq/gitlab-test/issue/301 -POSTED_IN-> gitlab:gitlabhq/gitlab-test role=",
            ],
        ),
        ("webhooks/job.json", vec![]),
        (
            "webhooks/member.json",
            vec![
                "Account gitlab:user1",
                "Group gitlab:webhook-test",
                "gitlab:user1 -MEMBER_OF-> gitlab:webhook-test role=guest",
            ],
        ),
        (
            "webhooks/merge_request.json",
            vec![
                "Account gitlab:user1",
                "Repository gitlab:gitlabhq/gitlab-test",
                "Message gitlab:gitlabhq/gitlab-test/merge-request/99",
                "gitlab:user1 -AUTHORED-> gitlab:gitlabhq/gitlab-test/merge-request/99 role=",
                "gitlab:gitlabhq/gitlab-test/merge-request/99 -POSTED_IN-> gitlab:gitlabhq/gitlab-test role=",
            ],
        ),
        (
            "webhooks/note_commit.json",
            vec![
                "Account gitlab:user1",
                "Repository gitlab:gitlabhq/gitlab-test",
                "Message gitlab:gitlabhq/gitlab-test/commit-comment/1243",
                "gitlab:user1 -AUTHORED-> gitlab:gitlabhq/gitlab-test/commit-comment/1243 role=",
                "gitlab:gitlabhq/gitlab-test/commit-comment/1243 -POSTED_IN-> gitlab:gitlabhq/gitlab-test role=",
            ],
        ),
        (
            "webhooks/note_issue.json",
            vec![
                "Account gitlab:user1",
                "Repository gitlab:gitlab-org/gitlab-test",
                "Message gitlab:gitlab-org/gitlab-test/issue-comment/1241",
                "gitlab:user1 -AUTHORED-> gitlab:gitlab-org/gitlab-test/issue-comment/1241 role=",
                "gitlab:gitlab-org/gitlab-test/issue-comment/1241 -POSTED_IN-> gitlab:gitlab-org/gitlab-test role=",
            ],
        ),
        (
            "webhooks/note_merge_request.json",
            vec![
                "Account gitlab:root",
                "Repository gitlab:gitlab-org/gitlab-test",
                "Message gitlab:gitlab-org/gitlab-test/merge-request-comment/1244",
                "gitlab:root -AUTHORED-> gitlab:gitlab-org/gitlab-test/merge-request-comment/1244 role=",
                "gitlab:gitlab-org/gitlab-test/merge-request-comment/1244 -POSTED_IN-> gitlab:gitlab-org/gitlab-test role=",
            ],
        ),
        (
            "webhooks/note_snippet.json",
            vec![
                "Account gitlab:user1",
                "Repository gitlab:gitlab-org/gitlab-test",
                "Message gitlab:gitlab-org/gitlab-test/snippet-comment/1245",
                "gitlab:user1 -AUTHORED-> gitlab:gitlab-org/gitlab-test/snippet-comment/1245 role=",
                "gitlab:gitlab-org/gitlab-test/snippet-comment/1245 -POSTED_IN-> gitlab:gitlab-org/gitlab-test role=",
            ],
        ),
        ("webhooks/pipeline.json", vec![]),
        (
            "webhooks/push.json",
            vec![
                "Account gitlab:jsmith",
                "Repository gitlab:mike/diaspora",
                "Message gitlab:mike/diaspora/commit/b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327",
                "Message gitlab:mike/diaspora/commit/da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
                "gitlab:jsmith -AUTHORED-> gitlab:mike/diaspora/commit/b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327 role=",
                "gitlab:mike/diaspora/commit/b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327 -POSTED_IN-> gitlab:mike/diaspora role=",
                "gitlab:jsmith -AUTHORED-> gitlab:mike/diaspora/commit/da1560886d4f094c3e6c9ef40349f7d38b5d27d7 role=",
                "gitlab:mike/diaspora/commit/da1560886d4f094c3e6c9ef40349f7d38b5d27d7 -POSTED_IN-> gitlab:mike/diaspora role=",
            ],
        ),
        ("webhooks/release.json", vec![]),
        ("webhooks/resource_access_token_group.json", vec![]),
        ("webhooks/resource_access_token_project.json", vec![]),
        (
            "webhooks/service_merge_request.json",
            vec!["Account gitlab:test", "Repository gitlab:test/woodpecker"],
        ),
        (
            "webhooks/subgroup.json",
            vec![
                "Group gitlab:group-1/subgroup-1",
                "Group gitlab:group-1",
                "gitlab:group-1/subgroup-1 -MEMBER_OF-> gitlab:group-1 role=",
            ],
        ),
        (
            "webhooks/tag_push.json",
            vec!["Account gitlab:jsmith", "Repository gitlab:jsmith/example"],
        ),
        ("webhooks/wiki_page.json", vec![]),
    ];
    let all = files()?;
    let listed: Vec<String> = expected.iter().map(|(f, _)| (*f).to_string()).collect();
    assert_eq!(
        all, listed,
        "every payload needs an expectation, and only those"
    );
    for (file, want) in expected {
        let batch = delivered(file)?;
        assert_eq!(summary(&batch), want, "{file}");
        for node in &batch.nodes {
            assert_eq!(
                prop(&batch, &node.key, "instance").as_deref(),
                Some("gitlab.example.com")
            );
        }
    }
    Ok(())
}

#[test]
fn accounts_keep_id_name_and_a_real_email() -> TestResult {
    let batch = delivered("systemhooks/user_add_to_group.json")?;
    let key = "gitlab:johnsmith";
    assert_eq!(prop(&batch, key, "id").as_deref(), Some("41"));
    assert_eq!(prop(&batch, key, "name").as_deref(), Some("John Smith"));
    assert_eq!(
        prop(&batch, key, "email").as_deref(),
        Some("johnsmith@gmail.com")
    );
    Ok(())
}

#[test]
fn redacted_emails_are_not_stored_as_emails() -> TestResult {
    let mut push = payload("webhooks/push.json")?;
    push["user_email"] = json!(REDACTED);
    let batch = deliver("Push Hook", &push)
        .map_err(|e| format!("{e:?}"))?
        .batch;
    assert_eq!(prop(&batch, "gitlab:jsmith", "email"), None);
    let mut note = payload("webhooks/note_issue.json")?;
    note["user"]["email"] = json!(REDACTED);
    let batch = deliver("Note Hook", &note)
        .map_err(|e| format!("{e:?}"))?
        .batch;
    assert_eq!(prop(&batch, "gitlab:user1", "email"), None);
    assert_eq!(
        prop(&batch, "gitlab:user1", "username").as_deref(),
        Some("user1")
    );
    Ok(())
}

#[test]
fn access_levels_give_role_names() -> TestResult {
    for (level, role) in [
        (json!("Owner"), "owner"),
        (json!(30), "developer"),
        (json!("Reporter"), "reporter"),
    ] {
        let mut member = payload("webhooks/member.json")?;
        member["group_access"] = level;
        let batch = deliver("Member Hook", &member)
            .map_err(|e| format!("{e:?}"))?
            .batch;
        let got = batch.edges[0]
            .properties
            .iter()
            .find(|(k, _)| k == "role")
            .map(|(_, v)| text(v));
        assert_eq!(got.as_deref(), Some(role));
    }
    Ok(())
}

#[test]
fn malformed_deliveries_name_the_event_and_field() -> TestResult {
    let mut member = payload("webhooks/member.json")?;
    member.as_object_mut().map(|m| m.remove("user_username"));
    let err = deliver("Member Hook", &member).err();
    assert!(
        matches!(&err, Some(PluginError::InvalidInput(m)) if m == "Member Hook user_add_to_group: user_username is missing"),
        "{err:?}"
    );
    let err = handle(&IncomingRequest {
        config: r#"{"instance":"gitlab.example.com"}"#.into(),
        method: "POST".into(),
        path: "/".into(),
        headers: Vec::new(),
        body: b"{}".to_vec(),
    })
    .err();
    assert!(matches!(&err, Some(PluginError::InvalidInput(m)) if m.starts_with("x-gitlab-event")));
    let err = deliver("Push Hook", &json!([1])).err();
    assert!(
        matches!(&err, Some(PluginError::InvalidInput(m)) if m == "Push Hook: the body is not a JSON object")
    );
    let ignored = deliver("Emoji Hook", &json!("anything")).map_err(|e| format!("{e:?}"))?;
    assert!(ignored.batch.nodes.is_empty() && ignored.status == 202);
    let err = handle(&IncomingRequest {
        config: "{}".into(),
        method: "POST".into(),
        path: "/".into(),
        headers: vec![("x-gitlab-event".into(), "Push Hook".into())],
        body: b"{}".to_vec(),
    })
    .err();
    assert!(matches!(&err, Some(PluginError::InvalidConfig(m)) if m.contains("instance")));
    Ok(())
}
