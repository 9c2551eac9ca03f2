//! Plans and executions against a strict scripted GitLab served on
//! 127.0.0.1: every request crosses a real socket, must carry the token in
//! `PRIVATE-TOKEN`, and must match the script exactly. The answers follow
//! the shapes GitLab documents for its REST API v4; the values are ours.

use serde_json::{Value as Json, json};

use gitlab_executor::{BLOCK_USER, PROTECT_BRANCH, REMOVE_MEMBER, execute, plan};
use org_mesh_plugin::executor::{Action, ActionRequest, PlannedCall};
use org_mesh_plugin::props::Props;
use org_mesh_plugin::types::{NodeRef, PluginError};
use org_mesh_plugin_testkit::{Server, Step, Wire, expect};

type TestResult = Result<(), String>;

const TOKEN: &str = "glpat-loopback-only-0123456789";

/// Every scripted request must be authenticated and ask for JSON.
fn gitlab(steps: Vec<Step>) -> Result<Server, String> {
    Server::start(
        steps
            .into_iter()
            .map(|s| {
                s.header("private-token", TOKEN)
                    .header("accept", "application/json")
            })
            .collect(),
    )
    .map_err(|e| e.to_string())
}

fn wire() -> Wire {
    Wire::new().secret("token", TOKEN)
}

fn request(server: &Server, kind: &str, parameters: Props) -> ActionRequest {
    ActionRequest {
        config: json!({"api_url": format!("{}/api/v4", server.base_url())}).to_string(),
        action: Action {
            kind: kind.into(),
            target: NodeRef {
                label: "Account".into(),
                key: "gitlab:jdoe".into(),
            },
            parameters: parameters.build(),
            idempotency_key: "fix-1".into(),
        },
    }
}

fn summary(server: &Server, calls: &[PlannedCall]) -> Vec<String> {
    let base = format!("{}/api/v4", server.base_url());
    calls
        .iter()
        .map(|c| format!("{} {}", c.method, c.url.trim_start_matches(&base)))
        .collect()
}

fn user(state: &str) -> Json {
    json!({
        "id": 42,
        "username": "jdoe",
        "name": "Jo Doe",
        "state": state,
        "locked": false,
        "avatar_url": "https://gitlab.example.com/uploads/-/system/user/avatar/42/avatar.png",
        "web_url": "https://gitlab.example.com/jdoe"
    })
}

fn member() -> Json {
    json!({
        "id": 42,
        "username": "jdoe",
        "name": "Jo Doe",
        "state": "active",
        "avatar_url": "",
        "web_url": "https://gitlab.example.com/jdoe",
        "access_level": 30,
        "created_at": "2024-03-01T09:30:00.000Z",
        "expires_at": null,
        "membership_state": "active"
    })
}

fn levels(entries: &[(i64, &str)]) -> Json {
    Json::Array(
        entries
            .iter()
            .enumerate()
            .map(|(i, (level, description))| {
                json!({
                    "id": 100 + i,
                    "access_level": level,
                    "access_level_description": description,
                    "deploy_key_id": null,
                    "user_id": null,
                    "group_id": null
                })
            })
            .collect(),
    )
}

fn protection(push: &[(i64, &str)], merge: &[(i64, &str)]) -> Json {
    json!({
        "id": 7,
        "name": "main",
        "push_access_levels": levels(push),
        "merge_access_levels": levels(merge),
        "allow_force_push": false,
        "code_owner_approval_required": false
    })
}

fn not_found(what: &str) -> Json {
    json!({"message": format!("404 {what}")})
}

const LOOKUP: &str = "/api/v4/users?username=jdoe";
const BLOCK: &str = "/api/v4/users/42/block";

fn block(server: &Server, props: Props) -> ActionRequest {
    request(server, BLOCK_USER, props)
}

#[test]
fn blocking_by_username_looks_the_user_up_then_blocks_once() -> TestResult {
    let server = gitlab(vec![
        expect("GET", LOOKUP).answer(200, &json!([user("active")])),
        expect("POST", BLOCK).answer(201, &json!(true)),
    ])?;
    let req = block(&server, Props::new().text("username", "jdoe"));
    let outcome = execute(&req, wire()).map_err(|e| format!("{e:?}"))?;
    let done = server.finish();
    done.check()?;
    assert!(outcome.changed);
    assert_eq!(outcome.detail, "jdoe is blocked");
    assert_eq!(
        done.received.iter().map(|r| r.body.len()).sum::<usize>(),
        0,
        "neither call carries a body"
    );

    // Run again: GitLab now says blocked, so nothing is written.
    let server = gitlab(vec![
        expect("GET", LOOKUP).answer(200, &json!([user("blocked")])),
    ])?;
    let req = block(&server, Props::new().text("username", "jdoe"));
    let outcome = execute(&req, wire()).map_err(|e| format!("{e:?}"))?;
    server.finish().check()?;
    assert!(!outcome.changed);
    assert_eq!(outcome.detail, "already so: jdoe is blocked");
    Ok(())
}

#[test]
fn blocking_by_id_reads_the_user_first_and_skips_an_ldap_block() -> TestResult {
    let server = gitlab(vec![
        expect("GET", "/api/v4/users/42").answer(200, &user("ldap_blocked")),
    ])?;
    let outcome = execute(&block(&server, Props::new().integer("user_id", 42)), wire())
        .map_err(|e| format!("{e:?}"))?;
    server.finish().check()?;
    assert!(!outcome.changed);
    assert_eq!(outcome.calls.len(), 1, "only the read");
    Ok(())
}

#[test]
fn a_banned_or_unapproved_user_counts_as_blocked() -> TestResult {
    for state in ["banned", "blocked_pending_approval"] {
        let server = gitlab(vec![
            expect("GET", "/api/v4/users/42").answer(200, &user(state)),
        ])?;
        let outcome = execute(&block(&server, Props::new().integer("user_id", 42)), wire())
            .map_err(|e| format!("{state}: {e:?}"))?;
        server.finish().check()?;
        assert!(!outcome.changed, "{state}");
        assert_eq!(outcome.calls.len(), 1, "{state}: only the read");
    }
    Ok(())
}

#[test]
fn plans_make_no_request_and_name_every_call() -> TestResult {
    let server = gitlab(Vec::new())?;
    let by_id = plan(&block(&server, Props::new().integer("user_id", 42)), wire())
        .map_err(|e| format!("{e:?}"))?;
    assert_eq!(
        summary(&server, &by_id.calls),
        vec!["GET /users/42", "POST /users/42/block"]
    );
    assert_eq!(by_id.expected, "user 42 is blocked");

    let by_name = plan(
        &request(
            &server,
            REMOVE_MEMBER,
            Props::new()
                .text("group", "acme/platform")
                .text("username", "jdoe"),
        ),
        wire(),
    )
    .map_err(|e| format!("{e:?}"))?;
    assert_eq!(
        summary(&server, &by_name.calls),
        vec![
            "GET /users?username=jdoe",
            "GET /groups/acme%2Fplatform/members/:user_id",
            "DELETE /groups/acme%2Fplatform/members/:user_id",
        ]
    );
    assert!(
        by_name.calls[2]
            .effect
            .contains(":user_id is the id found for jdoe")
    );

    let protect = plan(
        &request(
            &server,
            PROTECT_BRANCH,
            Props::new()
                .text("project", "acme/api")
                .text("branch", "release/1.0")
                .integer("merge_access_level", 30),
        ),
        wire(),
    )
    .map_err(|e| format!("{e:?}"))?;
    assert_eq!(
        summary(&server, &protect.calls),
        vec![
            "GET /projects/acme%2Fapi/protected_branches/release%2F1.0",
            "DELETE /projects/acme%2Fapi/protected_branches/release%2F1.0",
            "POST /projects/acme%2Fapi/protected_branches",
        ]
    );
    assert_eq!(
        protect.calls[2].body.as_deref(),
        Some(r#"{"name":"release/1.0","push_access_level":40,"merge_access_level":30}"#)
    );
    let done = server.finish();
    done.check()?;
    assert!(done.received.is_empty(), "plans make no request");
    Ok(())
}

#[test]
fn a_token_without_admin_rights_cannot_block() -> TestResult {
    let server = gitlab(vec![
        expect("GET", LOOKUP).answer(200, &json!([user("active")])),
        expect("POST", BLOCK).answer(403, &json!({"message": "403 Forbidden"})),
    ])?;
    let result = execute(
        &block(&server, Props::new().text("username", "jdoe")),
        wire(),
    );
    server.finish().check()?;
    assert!(
        matches!(&result, Err(PluginError::Forbidden(m))
            if m.contains("blocking jdoe") && m.contains("administrator")),
        "{result:?}"
    );
    Ok(())
}

#[test]
fn a_refused_token_is_forbidden_and_an_unknown_user_is_named() -> TestResult {
    let server = gitlab(vec![
        expect("GET", LOOKUP).answer(401, &json!({"message": "401 Unauthorized"})),
        expect("GET", "/api/v4/users?username=ghost").answer(200, &json!([])),
    ])?;
    let refused = execute(
        &block(&server, Props::new().text("username", "jdoe")),
        wire(),
    );
    let unknown = execute(
        &block(&server, Props::new().text("username", "ghost")),
        wire(),
    );
    server.finish().check()?;
    assert!(
        matches!(&refused, Err(PluginError::Forbidden(m)) if m.contains("401")),
        "{refused:?}"
    );
    assert!(
        matches!(&unknown, Err(PluginError::Upstream(m)) if m == "no GitLab user has the username ghost"),
        "{unknown:?}"
    );
    Ok(())
}

const GROUP_MEMBER: &str = "/api/v4/groups/acme%2Fplatform/members/42";

fn remove(server: &Server) -> ActionRequest {
    request(
        server,
        REMOVE_MEMBER,
        Props::new()
            .text("group", "acme/platform")
            .integer("user_id", 42),
    )
}

#[test]
fn removing_a_member_deletes_once_and_then_finds_nothing_to_do() -> TestResult {
    let server = gitlab(vec![
        expect("GET", GROUP_MEMBER).answer(200, &member()),
        expect("DELETE", GROUP_MEMBER).answer_text(204, ""),
    ])?;
    let outcome = execute(&remove(&server), wire()).map_err(|e| format!("{e:?}"))?;
    server.finish().check()?;
    assert!(outcome.changed);
    assert_eq!(
        outcome.detail,
        "user 42 is not a direct member of group acme/platform"
    );

    let server = gitlab(vec![
        expect("GET", GROUP_MEMBER).answer(404, &not_found("Not found")),
    ])?;
    let outcome = execute(&remove(&server), wire()).map_err(|e| format!("{e:?}"))?;
    server.finish().check()?;
    assert!(!outcome.changed);
    assert_eq!(outcome.calls.len(), 1, "only the read");
    Ok(())
}

#[test]
fn removing_from_a_project_by_username() -> TestResult {
    let member_url = "/api/v4/projects/acme%2Fapi/members/42";
    let server = gitlab(vec![
        expect("GET", LOOKUP).answer(200, &json!([user("active")])),
        expect("GET", member_url).answer(200, &member()),
        // Removed by someone else between the read and the removal.
        expect("DELETE", member_url).answer(404, &not_found("Not found")),
    ])?;
    let req = request(
        &server,
        REMOVE_MEMBER,
        Props::new()
            .text("project", "acme/api")
            .text("username", "jdoe"),
    );
    let outcome = execute(&req, wire()).map_err(|e| format!("{e:?}"))?;
    server.finish().check()?;
    assert!(!outcome.changed);
    assert_eq!(outcome.calls.len(), 3);
    Ok(())
}

#[test]
fn a_missing_group_is_an_error_not_an_absent_member() -> TestResult {
    let server = gitlab(vec![
        expect("GET", GROUP_MEMBER).answer(404, &not_found("Group Not Found")),
    ])?;
    let result = execute(&remove(&server), wire());
    server.finish().check()?;
    assert!(
        matches!(&result, Err(PluginError::Upstream(m))
            if m.contains("404 Group Not Found") && m.contains("acme/platform")),
        "{result:?}"
    );
    Ok(())
}

#[test]
fn removing_without_the_owner_role_is_forbidden() -> TestResult {
    let server = gitlab(vec![
        expect("GET", GROUP_MEMBER).answer(200, &member()),
        expect("DELETE", GROUP_MEMBER).answer(403, &json!({"message": "403 Forbidden"})),
    ])?;
    let result = execute(&remove(&server), wire());
    server.finish().check()?;
    assert!(
        matches!(&result, Err(PluginError::Forbidden(m)) if m.contains("Owner role")),
        "{result:?}"
    );
    Ok(())
}

const PROTECTED: &str = "/api/v4/projects/acme%2Fapi/protected_branches/main";
const PROTECT: &str = "/api/v4/projects/acme%2Fapi/protected_branches";

fn protect(server: &Server, extra: Props) -> ActionRequest {
    let mut parameters = Props::new()
        .text("project", "acme/api")
        .text("branch", "main")
        .build();
    parameters.extend(extra.build());
    let mut req = request(server, PROTECT_BRANCH, Props::new());
    req.action.parameters = parameters;
    req
}

#[test]
fn an_unprotected_branch_is_protected_with_the_planned_body() -> TestResult {
    let body = json!({"name": "main", "push_access_level": 40, "merge_access_level": 30});
    let server = gitlab(vec![
        expect("GET", PROTECTED).answer(404, &not_found("Not found")),
        expect("POST", PROTECT).body(body.clone()).answer(
            201,
            &protection(&[(40, "Maintainers")], &[(30, "Developers + Maintainers")]),
        ),
    ])?;
    let req = protect(
        &server,
        Props::new().text("merge_access_level", "developer"),
    );
    let planned = plan(&req, wire()).map_err(|e| format!("{e:?}"))?;
    let outcome = execute(&req, wire()).map_err(|e| format!("{e:?}"))?;
    server.finish().check()?;
    assert!(outcome.changed);
    assert_eq!(outcome.calls[1].body, planned.calls[2].body);
    assert_eq!(
        serde_json::from_str::<Json>(outcome.calls[1].body.as_deref().unwrap_or_default()).ok(),
        Some(body)
    );
    Ok(())
}

#[test]
fn the_same_or_stricter_levels_change_nothing() -> TestResult {
    let server = gitlab(vec![
        expect("GET", PROTECTED).answer(
            200,
            &protection(&[(40, "Maintainers")], &[(40, "Maintainers")]),
        ),
        expect("GET", PROTECTED).answer(200, &protection(&[(0, "No one")], &[(40, "Maintainers")])),
    ])?;
    for _ in 0..2 {
        let outcome =
            execute(&protect(&server, Props::new()), wire()).map_err(|e| format!("{e:?}"))?;
        assert!(!outcome.changed);
        assert_eq!(outcome.calls.len(), 1);
    }
    server.finish().check()?;
    Ok(())
}

#[test]
fn looser_levels_are_raised_by_unprotecting_and_protecting_again() -> TestResult {
    let server = gitlab(vec![
        expect("GET", PROTECTED).answer(
            200,
            &protection(&[(30, "Developers + Maintainers")], &[(40, "Maintainers")]),
        ),
        expect("DELETE", PROTECTED).answer_text(204, ""),
        expect("POST", PROTECT)
            .body(json!({"name": "main", "push_access_level": 40, "merge_access_level": 40}))
            .answer(
                201,
                &protection(&[(40, "Maintainers")], &[(40, "Maintainers")]),
            ),
    ])?;
    let outcome = execute(&protect(&server, Props::new()), wire()).map_err(|e| format!("{e:?}"))?;
    server.finish().check()?;
    assert!(outcome.changed);
    assert_eq!(
        outcome
            .calls
            .iter()
            .map(|c| c.method.as_str())
            .collect::<Vec<_>>(),
        vec!["GET", "DELETE", "POST"]
    );
    Ok(())
}

#[test]
fn a_failed_protect_after_unprotecting_restores_the_levels_read() -> TestResult {
    let mut before = protection(
        &[(30, "Developers + Maintainers")],
        &[(30, "Developers + Maintainers")],
    );
    before["allow_force_push"] = json!(true);
    let server = gitlab(vec![
        expect("GET", PROTECTED).answer(200, &before),
        expect("DELETE", PROTECTED).answer_text(204, ""),
        expect("POST", PROTECT)
            .body(json!({"name": "main", "push_access_level": 40, "merge_access_level": 40}))
            .answer(500, &json!({"message": "500 Internal Server Error"})),
        expect("POST", PROTECT)
            .body(json!({"name": "main", "push_access_level": 30, "merge_access_level": 30, "allow_force_push": true}))
            .answer(201, &before),
    ])?;
    let result = execute(&protect(&server, Props::new()), wire());
    server.finish().check()?;
    assert!(
        matches!(&result, Err(PluginError::Upstream(m))
            if m.contains("answered 500") && m.contains("previous protection was restored")),
        "{result:?}"
    );
    Ok(())
}

#[test]
fn raising_one_list_never_lowers_the_other() -> TestResult {
    let server = gitlab(vec![expect("GET", PROTECTED).answer(
        200,
        &protection(&[(30, "Developers + Maintainers")], &[(0, "No one")]),
    )])?;
    let result = execute(&protect(&server, Props::new()), wire());
    let done = server.finish();
    done.check()?;
    assert!(
        matches!(&result, Err(PluginError::InvalidInput(m))
            if m.contains("merge_access_level: the branch allows no one now")
                && m.contains("pass merge_access_level 0")),
        "{result:?}"
    );
    assert_eq!(done.received.len(), 1, "only the read was sent");
    Ok(())
}

#[test]
fn named_exceptions_are_never_dropped() -> TestResult {
    let mut current = protection(&[(30, "Developers + Maintainers")], &[(40, "Maintainers")]);
    if let Some(list) = current["push_access_levels"].as_array_mut() {
        list.push(json!({"id": 9, "access_level": null, "deploy_key_id": 3, "user_id": null, "group_id": null}));
    }
    let server = gitlab(vec![expect("GET", PROTECTED).answer(200, &current)])?;
    let result = execute(&protect(&server, Props::new()), wire());
    server.finish().check()?;
    assert!(
        matches!(&result, Err(PluginError::InvalidInput(m)) if m.contains("deploy keys")),
        "{result:?}"
    );
    Ok(())
}

#[test]
fn a_missing_project_and_a_missing_permission_are_clear() -> TestResult {
    let server = gitlab(vec![
        expect("GET", PROTECTED).answer(404, &not_found("Project Not Found")),
        expect("GET", PROTECTED).answer(404, &not_found("Not found")),
        expect("POST", PROTECT)
            .body(json!({"name": "main", "push_access_level": 40, "merge_access_level": 40}))
            .answer(403, &json!({"message": "403 Forbidden"})),
    ])?;
    let missing = execute(&protect(&server, Props::new()), wire());
    let forbidden = execute(&protect(&server, Props::new()), wire());
    server.finish().check()?;
    assert!(
        matches!(&missing, Err(PluginError::Upstream(m))
            if m.contains("404 Project Not Found") && m.contains("cannot see it")),
        "{missing:?}"
    );
    assert!(
        matches!(&forbidden, Err(PluginError::Forbidden(m)) if m.contains("Maintainer role")),
        "{forbidden:?}"
    );
    Ok(())
}

#[test]
fn a_rate_limit_is_waited_out_as_gitlab_asks() -> TestResult {
    let server = gitlab(vec![
        expect("GET", GROUP_MEMBER)
            .answer(429, &json!({"message": "Retry later"}))
            .answer_header("retry-after", "2")
            .answer_header("ratelimit-remaining", "0"),
        expect("GET", GROUP_MEMBER).answer(404, &not_found("Not found")),
    ])?;
    let transport = wire();
    let outcome = execute(&remove(&server), &transport).map_err(|e| format!("{e:?}"))?;
    server.finish().check()?;
    assert!(!outcome.changed);
    assert_eq!(*transport.slept.borrow(), vec![2]);
    Ok(())
}

#[test]
fn malformed_parameters_and_dry_run_only_send_nothing() -> TestResult {
    let server = gitlab(Vec::new())?;
    let bad = execute(
        &protect(&server, Props::new().integer("push_access_level", 50)),
        wire(),
    );
    assert!(
        matches!(&bad, Err(PluginError::InvalidInput(m)) if m.contains("parameter push_access_level")),
        "{bad:?}"
    );
    let mut dry = remove(&server);
    dry.config = json!({
        "api_url": format!("{}/api/v4", server.base_url()),
        "dry_run_only": true
    })
    .to_string();
    let refused = execute(&dry, wire());
    assert!(
        matches!(refused, Err(PluginError::Denied(_))),
        "{refused:?}"
    );
    assert!(plan(&dry, wire()).is_ok());
    let done = server.finish();
    done.check()?;
    assert!(done.received.is_empty());
    Ok(())
}
