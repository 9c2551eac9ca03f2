//! Who may call what on `org-mesh serve`: every route the service serves is
//! classified here (public, a role of the API, a webhook secret, a SCIM
//! bearer), and each is called without credentials, with wrong ones and
//! with every credential that is not enough. A route added to the router
//! without a line in `ROUTES` fails `every_served_route_is_classified`, so
//! no route reaches users without a decision about who may call it.
//!
//! Run with `cargo test -p org-mesh --test access`.

#![expect(clippy::panic, reason = "helpers of a test fail it by panicking")]

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{
    ADMIN, APPROVER, GITHUB_SECRET, GITLAB_SECRET, SCIM_TOKEN, VIEWER, client, sign, start,
};
use org_mesh_harness::root;
use reqwest::Method;
use serde_json::Value;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Anyone: probes, metrics, the API's description and the console's
    /// static files, none of which holds data of the twin.
    Public,
    Viewer,
    Approver,
    Admin,
    /// The HMAC signature of the body with the connector's secret.
    GithubWebhook,
    /// The connector's shared secret in `X-Gitlab-Token`.
    GitlabWebhook,
    /// The connector's SCIM bearer token.
    Scim,
}

/// A served route as the router spells it, the methods it answers, the
/// path a test calls it on, and who may call it.
struct Route {
    template: &'static str,
    methods: &'static [&'static str],
    example: &'static str,
    access: Access,
}

const fn route(
    template: &'static str,
    methods: &'static [&'static str],
    example: &'static str,
    access: Access,
) -> Route {
    Route {
        template,
        methods,
        example,
        access,
    }
}

const GET: &[&str] = &["GET"];
const POST: &[&str] = &["POST"];
const GET_POST: &[&str] = &["GET", "POST"];
const ONE_RESOURCE: &[&str] = &["GET", "PUT", "PATCH", "DELETE"];

const ROUTES: &[Route] = &[
    route("/healthz", GET, "/healthz", Access::Public),
    route("/readyz", GET, "/readyz", Access::Public),
    route("/metrics", GET, "/metrics", Access::Public),
    route(
        "/api/v1/openapi.json",
        GET,
        "/api/v1/openapi.json",
        Access::Public,
    ),
    route("/", GET, "/", Access::Public),
    route("/console/{name}", GET, "/console/app.js", Access::Public),
    route("/api/v1/findings", GET, "/api/v1/findings", Access::Viewer),
    route(
        "/api/v1/proposals",
        GET,
        "/api/v1/proposals",
        Access::Viewer,
    ),
    route(
        "/api/v1/proposals/{id}/approve",
        POST,
        "/api/v1/proposals/no-such-proposal/approve",
        Access::Approver,
    ),
    route(
        "/api/v1/proposals/{id}/reject",
        POST,
        "/api/v1/proposals/no-such-proposal/reject",
        Access::Approver,
    ),
    route(
        "/api/v1/proposals/{id}/retry",
        POST,
        "/api/v1/proposals/no-such-proposal/retry",
        Access::Approver,
    ),
    route(
        "/api/v1/entities",
        GET,
        "/api/v1/entities?label=Account",
        Access::Viewer,
    ),
    route(
        "/api/v1/entities/{label}/{key}",
        GET,
        "/api/v1/entities/Organisation/github:octokit-fixture-org",
        Access::Viewer,
    ),
    route("/api/v1/plugins", GET, "/api/v1/plugins", Access::Viewer),
    route("/api/v1/policies", GET, "/api/v1/policies", Access::Viewer),
    route("/api/v1/sync", POST, "/api/v1/sync", Access::Admin),
    route("/api/v1/status", GET, "/api/v1/status", Access::Viewer),
    route("/api/v1/reloads", GET, "/api/v1/reloads", Access::Viewer),
    route("/api/v1/reload", POST, "/api/v1/reload", Access::Admin),
    route("/api/v1/whoami", GET, "/api/v1/whoami", Access::Viewer),
    route("/api/v1/events", GET, "/api/v1/events", Access::Viewer),
    route(
        "/api/v1/campaigns/{fingerprint}",
        GET,
        "/api/v1/campaigns/no-such-campaign",
        Access::Viewer,
    ),
    route(
        "/webhooks/github/{connector}",
        POST,
        "/webhooks/github/github",
        Access::GithubWebhook,
    ),
    route(
        "/webhooks/gitlab/{connector}",
        POST,
        "/webhooks/gitlab/gitlab",
        Access::GitlabWebhook,
    ),
    route(
        "/scim/v2/{connector}/ServiceProviderConfig",
        GET,
        "/scim/v2/okta/ServiceProviderConfig",
        Access::Scim,
    ),
    route(
        "/scim/v2/{connector}/ResourceTypes",
        GET,
        "/scim/v2/okta/ResourceTypes",
        Access::Scim,
    ),
    route(
        "/scim/v2/{connector}/ResourceTypes/{name}",
        GET,
        "/scim/v2/okta/ResourceTypes/User",
        Access::Scim,
    ),
    route(
        "/scim/v2/{connector}/Schemas",
        GET,
        "/scim/v2/okta/Schemas",
        Access::Scim,
    ),
    route(
        "/scim/v2/{connector}/Schemas/{id}",
        GET,
        "/scim/v2/okta/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
        Access::Scim,
    ),
    route(
        "/scim/v2/{connector}/Users",
        GET_POST,
        "/scim/v2/okta/Users",
        Access::Scim,
    ),
    route(
        "/scim/v2/{connector}/Groups",
        GET_POST,
        "/scim/v2/okta/Groups",
        Access::Scim,
    ),
    route(
        "/scim/v2/{connector}/Users/.search",
        POST,
        "/scim/v2/okta/Users/.search",
        Access::Scim,
    ),
    route(
        "/scim/v2/{connector}/Groups/.search",
        POST,
        "/scim/v2/okta/Groups/.search",
        Access::Scim,
    ),
    route(
        "/scim/v2/{connector}/.search",
        POST,
        "/scim/v2/okta/.search",
        Access::Scim,
    ),
    route(
        "/scim/v2/{connector}/Users/{id}",
        ONE_RESOURCE,
        "/scim/v2/okta/Users/no-such-user",
        Access::Scim,
    ),
    route(
        "/scim/v2/{connector}/Groups/{id}",
        ONE_RESOURCE,
        "/scim/v2/okta/Groups/no-such-group",
        Access::Scim,
    ),
];

/// The paths every `.route(...)` call in `folder` registers, read from the
/// source: the router is built at run time and cannot list itself, and
/// reading the calls catches a route whichever file adds it.
fn routes_in(folder: &Path, found: &mut BTreeSet<String>) {
    let entries = std::fs::read_dir(folder).unwrap_or_else(|e| panic!("{}: {e}", folder.display()));
    for entry in entries {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if path.is_dir() {
            routes_in(&path, found);
            continue;
        }
        if path.extension().is_none_or(|x| x != "rs") {
            continue;
        }
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // A router that builds paths from a prefix names it `base`.
        let base = text
            .split_once("let base = \"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(b, _)| b.to_string());
        for (_, after) in text
            .match_indices(".route(")
            .map(|(i, _)| text.split_at(i + 7))
        {
            let Some((_, literal)) = after.split_once('"') else {
                continue;
            };
            let Some((literal, _)) = literal.split_once('"') else {
                continue;
            };
            let template = match (&base, literal.strip_prefix("{base}")) {
                (Some(base), Some(rest)) => {
                    format!("{base}{}", rest.replace("{{", "{").replace("}}", "}"))
                }
                (None, Some(_)) => {
                    panic!("{}: a route uses {{base}} but none is set", path.display())
                }
                (_, None) => literal.to_string(),
            };
            found.insert(template);
        }
    }
}

#[test]
fn every_served_route_is_classified() {
    let mut served = BTreeSet::new();
    routes_in(&root().join("host/app/src"), &mut served);
    routes_in(&root().join("host/scim/src"), &mut served);
    assert!(
        served.contains("/api/v1/findings") && served.contains("/scim/v2/{connector}/Users"),
        "the route scan found too little: {served:?}"
    );
    let classified: BTreeSet<String> = ROUTES.iter().map(|r| r.template.to_string()).collect();
    let unclassified: Vec<_> = served.difference(&classified).collect();
    assert!(
        unclassified.is_empty(),
        "served routes nobody decided access for; add them to ROUTES: {unclassified:?}"
    );
    let gone: Vec<_> = classified.difference(&served).collect();
    assert!(
        gone.is_empty(),
        "ROUTES lists routes no longer served: {gone:?}"
    );
}

/// Calls `path` and returns the status and, for a refusal, the body. A
/// success body is not read: the events route streams for minutes.
async fn call(
    http: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Value) {
    let method = Method::from_bytes(method.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let mut req = http.request(method.clone(), format!("{base}{path}"));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = req
        .body(body.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = resp.status().as_u16();
    if status < 400 {
        return (status, Value::Null);
    }
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A body each route takes as well-formed, so a refusal is about who asks,
/// not about what was sent.
fn body_for(route: &Route, method: &str) -> &'static str {
    match (route.access, method) {
        (Access::Approver, _) => r#"{"reason": "checking access"}"#,
        (Access::Scim, "POST" | "PUT") if route.template.ends_with(".search") => {
            r#"{"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}"#
        }
        (Access::Scim, "POST" | "PUT") => {
            r#"{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "access-check@example.com"}"#
        }
        (Access::Scim, "PATCH") => {
            r#"{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "active", "value": false}]}"#
        }
        _ => "{}",
    }
}

fn content_type(access: Access) -> &'static str {
    match access {
        Access::Scim => "application/scim+json",
        _ => "application/json",
    }
}

fn assert_api_error(what: &str, status: u16, body: &Value, code: &str) {
    let error = &body["error"];
    assert_eq!(error["status"], status, "{what}: {body}");
    assert_eq!(error["code"], code, "{what}: {body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: {body}"
    );
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(1),
        "{what}: the error shape has one member: {body}"
    );
}

fn assert_scim_error(what: &str, body: &Value) {
    assert_eq!(
        body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
        "{what}: {body}"
    );
    assert_eq!(body["status"], "401", "{what}: {body}");
}

/// A role route: refused without a token, with an unknown one, with another
/// service's secret and with every lower role; served to its own role.
async fn check_role(http: &reqwest::Client, base: &str, route: &Route, method: &str) {
    let body = body_for(route, method);
    let ct = ("content-type", "application/json");
    let what = |who: &str| format!("{method} {} {who}", route.example);
    let bearer = |t: &str| format!("Bearer {t}");
    for (who, auth) in [
        ("without a token", None),
        ("with an unknown token", Some(bearer("not-a-token"))),
        ("with an empty token", Some("Bearer ".to_string())),
        ("with basic auth", Some(format!("Basic {VIEWER}"))),
        ("with the SCIM token", Some(bearer(SCIM_TOKEN))),
        ("with the webhook secret", Some(bearer(GITHUB_SECRET))),
        (
            "with a token's prefix",
            Some(bearer(&ADMIN[..ADMIN.len() - 1])),
        ),
    ] {
        let mut headers = vec![ct];
        if let Some(a) = auth.as_deref() {
            headers.push(("authorization", a));
        }
        let (status, answer) = call(http, base, method, route.example, &headers, body).await;
        assert_eq!(status, 401, "{}: {answer}", what(who));
        assert_api_error(&what(who), 401, &answer, "unauthorized");
    }
    let lower: &[(&str, &str)] = match route.access {
        Access::Approver => &[("viewer", VIEWER)],
        Access::Admin => &[("viewer", VIEWER), ("approver", APPROVER)],
        _ => &[],
    };
    for (role, token) in lower {
        let auth = bearer(token);
        let headers = [ct, ("authorization", auth.as_str())];
        let (status, answer) = call(http, base, method, route.example, &headers, body).await;
        let who = format!("as {role}");
        assert_eq!(status, 403, "{}: {answer}", what(&who));
        assert_api_error(&what(&who), 403, &answer, "forbidden");
    }
    let enough = match route.access {
        Access::Approver => APPROVER,
        Access::Admin => ADMIN,
        _ => VIEWER,
    };
    let auth = bearer(enough);
    let headers = [ct, ("authorization", auth.as_str())];
    let (status, answer) = call(http, base, method, route.example, &headers, body).await;
    assert!(
        status != 401 && status != 403,
        "{}: {status} {answer}",
        what("with its own role")
    );
}

async fn check_public(http: &reqwest::Client, base: &str, route: &Route, method: &str) {
    let (status, answer) = call(http, base, method, route.example, &[], "").await;
    assert_eq!(
        status, 200,
        "{method} {} without a token: {answer}",
        route.example
    );
}

/// A SCIM route: refused without a bearer, with a wrong one, and with the
/// API's own tokens, each in the SCIM error schema.
async fn check_scim(http: &reqwest::Client, base: &str, route: &Route, method: &str) {
    let body = body_for(route, method);
    let ct = ("content-type", content_type(route.access));
    let bearer = |t: &str| format!("Bearer {t}");
    for (who, auth) in [
        ("without a bearer", None),
        (
            "with a wrong bearer",
            Some(bearer("okta-scim-bearer-wrong")),
        ),
        (
            "with the token's prefix",
            Some(bearer(&SCIM_TOKEN[..SCIM_TOKEN.len() - 1])),
        ),
        ("with the admin API token", Some(bearer(ADMIN))),
        ("with basic auth", Some(format!("Basic {SCIM_TOKEN}"))),
    ] {
        let mut headers = vec![ct];
        if let Some(a) = auth.as_deref() {
            headers.push(("authorization", a));
        }
        let (status, answer) = call(http, base, method, route.example, &headers, body).await;
        let what = format!("{method} {} {who}", route.example);
        assert_eq!(status, 401, "{what}: {answer}");
        assert_scim_error(&what, &answer);
    }
    let auth = bearer(SCIM_TOKEN);
    let headers = [ct, ("authorization", auth.as_str())];
    let (status, answer) = call(http, base, method, route.example, &headers, body).await;
    assert!(
        status != 401 && status != 403,
        "{method} {} with its bearer: {status} {answer}",
        route.example
    );
}

fn membership_delivery() -> String {
    serde_json::json!({
        "action": "member_added",
        "membership": {"state": "active", "role": "member", "user": {"login": "access-check", "id": 4_242_424, "type": "User"}},
        "organization": {"login": "octokit-fixture-org", "id": 1},
        "sender": {"login": "octocat", "id": 1}
    })
    .to_string()
}

/// A GitHub webhook route: refused unsigned, signed with another secret,
/// signed over another body, and with bearer tokens instead of a signature.
async fn check_github(http: &reqwest::Client, base: &str, route: &Route) {
    let body = membership_delivery();
    let wrong_secret = {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"not the secret")
            .unwrap_or_else(|e| panic!("{e}"));
        mac.update(body.as_bytes());
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    };
    let other_body = sign(b"{}");
    let truncated = sign(body.as_bytes());
    let truncated = &truncated[..truncated.len() - 2];
    let admin = format!("Bearer {ADMIN}");
    for (who, signature, auth) in [
        ("unsigned", None, None),
        (
            "signed with another secret",
            Some(wrong_secret.as_str()),
            None,
        ),
        ("signed over another body", Some(other_body.as_str()), None),
        ("with a cut signature", Some(truncated), None),
        ("with sha1 only", Some("sha1=0123456789abcdef"), None),
        ("with an admin token instead", None, Some(admin.as_str())),
    ] {
        let mut headers = vec![
            ("content-type", "application/json"),
            ("x-github-event", "organization"),
        ];
        if let Some(s) = signature {
            headers.push(("x-hub-signature-256", s));
        }
        if let Some(a) = auth {
            headers.push(("authorization", a));
        }
        let (status, answer) = call(http, base, "POST", route.example, &headers, &body).await;
        let what = format!("POST {} {who}", route.example);
        assert_eq!(status, 401, "{what}: {answer}");
        assert_api_error(&what, 401, &answer, "unauthorized");
    }
    // A connector without a GitHub webhook has no such route at all.
    let good = sign(body.as_bytes());
    let headers = [
        ("content-type", "application/json"),
        ("x-github-event", "organization"),
        ("x-hub-signature-256", good.as_str()),
    ];
    let (status, answer) = call(
        http,
        base,
        "POST",
        "/webhooks/github/gitlab",
        &headers,
        &body,
    )
    .await;
    assert_eq!(
        status, 404,
        "a GitHub delivery to the GitLab connector: {answer}"
    );
    let mut headers = headers.to_vec();
    headers.push(("x-github-delivery", "access-signed"));
    let (status, answer) = call(http, base, "POST", route.example, &headers, &body).await;
    assert_eq!(status, 202, "a signed delivery: {answer}");
}

/// A GitLab webhook route: refused without the token, with a wrong one and
/// with other services' secrets.
async fn check_gitlab(http: &reqwest::Client, base: &str, route: &Route) {
    let body = r#"{"object_kind": "push"}"#;
    let prefix = &GITLAB_SECRET[..GITLAB_SECRET.len() - 1];
    let longer = format!("{GITLAB_SECRET}x");
    for (who, token) in [
        ("without a token", None),
        ("with an empty token", Some("")),
        ("with a wrong token", Some("gitlab-shared-secreT")),
        ("with the token's prefix", Some(prefix)),
        ("with the token and more", Some(longer.as_str())),
        ("with the GitHub secret", Some(GITHUB_SECRET)),
    ] {
        let mut headers = vec![
            ("content-type", "application/json"),
            ("x-gitlab-event", "Push Hook"),
        ];
        if let Some(t) = token {
            headers.push(("x-gitlab-token", t));
        }
        let (status, answer) = call(http, base, "POST", route.example, &headers, body).await;
        let what = format!("POST {} {who}", route.example);
        assert_eq!(status, 401, "{what}: {answer}");
        assert_api_error(&what, 401, &answer, "unauthorized");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_callers_without_the_right_credential() {
    let server = start().await;
    let http = client();
    let base = server.base.as_str();
    for route in ROUTES {
        for method in route.methods {
            match route.access {
                Access::Public => check_public(&http, base, route, method).await,
                Access::Viewer | Access::Approver | Access::Admin => {
                    check_role(&http, base, route, method).await;
                }
                Access::Scim => check_scim(&http, base, route, method).await,
                Access::GithubWebhook => check_github(&http, base, route).await,
                Access::GitlabWebhook => check_gitlab(&http, base, route).await,
            }
        }
    }
}

/// The OpenAPI document describes every API route the service serves and
/// nothing else, each with the credential `ROUTES` says it takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_api_route_with_its_role() {
    let server = start().await;
    let http = client();
    let (status, doc) =
        common::get_json(&http, &format!("{}/api/v1/openapi.json", server.base), None).await;
    assert_eq!(status, 200, "{doc}");
    let documented: BTreeSet<String> = doc["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(path, _)| path.clone())
        .collect();
    let api: BTreeSet<String> = ROUTES
        .iter()
        .filter(|r| r.template.starts_with("/api/v1/") && r.access != Access::Public)
        .map(|r| r.template.to_string())
        .collect();
    assert_eq!(
        documented, api,
        "the OpenAPI paths and the served API routes"
    );
    // The query parameters the handlers read are declared.
    let queries = |path: &str| -> BTreeSet<String> {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "query")
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(
        queries("/api/v1/findings"),
        ["rule", "severity", "subject"].map(String::from).into()
    );
    assert_eq!(queries("/api/v1/entities"), ["label".to_string()].into());
    assert_eq!(queries("/api/v1/proposals"), ["state".to_string()].into());
    assert_eq!(
        queries("/api/v1/campaigns/{fingerprint}"),
        ["messages".to_string()].into()
    );
    for route in ROUTES.iter().filter(|r| api.contains(r.template)) {
        for method in route.methods {
            let operation = &doc["paths"][route.template][method.to_lowercase()];
            assert_eq!(
                operation["security"][0]["bearer"],
                Value::Array(vec![]),
                "{method} {}: {operation}",
                route.template
            );
            let role = match route.access {
                Access::Approver => "approver",
                Access::Admin => "admin",
                _ => "viewer",
            };
            assert!(
                operation["description"]
                    .as_str()
                    .is_some_and(|d| d.contains(&format!("the {role} role"))),
                "{method} {} should say it needs the {role} role: {operation}",
                route.template
            );
            // Every `{name}` of the template is a declared path parameter,
            // as OpenAPI requires, and no other is.
            let in_template: BTreeSet<&str> = route
                .template
                .split('/')
                .filter_map(|part| part.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            let declared: BTreeSet<&str> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path" && p["required"] == true)
                .filter_map(|p| p["name"].as_str())
                .collect();
            assert_eq!(declared, in_template, "{method} {}", route.template);
        }
    }
}

/// What a page on another site can make a signed-in operator's browser
/// send: a simple form POST (no custom header, so no preflight) and a
/// preflight for anything more. The console keeps its token in session
/// storage and sends it as a header, so the form POST arrives without it
/// and is refused; no answer sets a cookie that a browser would add for
/// the other site; and no preflight is granted, so a script there cannot
/// send the header or read an answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_request_has_no_cookie_to_ride_and_no_cors_grant() {
    const ELSEWHERE: &str = "https://attacker.invalid";
    let server = start().await;
    let http = client();
    let base = server.base.as_str();
    for route in ROUTES {
        let path = format!("{base}{}", route.example);
        for method in route.methods {
            let method = Method::from_bytes(method.as_bytes())
                .unwrap_or_else(|e| panic!("{}: {e}", route.template));
            let answer = http
                .request(method.clone(), &path)
                .header("origin", ELSEWHERE)
                .header("content-type", "text/plain")
                .body("x=1")
                .send()
                .await
                .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
            let what = format!("{method} {} from another site", route.template);
            assert!(
                answer.headers().get("set-cookie").is_none(),
                "{what} set a cookie"
            );
            assert!(
                answer
                    .headers()
                    .get("access-control-allow-origin")
                    .is_none(),
                "{what} was granted to that site"
            );
            if matches!(
                route.access,
                Access::Viewer | Access::Approver | Access::Admin
            ) {
                assert_eq!(answer.status().as_u16(), 401, "{what} without the token");
            }

            let preflight = http
                .request(Method::OPTIONS, &path)
                .header("origin", ELSEWHERE)
                .header("access-control-request-method", method.as_str())
                .header("access-control-request-headers", "authorization")
                .send()
                .await
                .unwrap_or_else(|e| panic!("OPTIONS {path}: {e}"));
            for grant in [
                "access-control-allow-origin",
                "access-control-allow-headers",
                "access-control-allow-credentials",
            ] {
                assert!(
                    preflight.headers().get(grant).is_none(),
                    "the preflight of {what} answered {grant}"
                );
            }
        }
    }
}
