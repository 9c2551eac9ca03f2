//! Hostile and broken requests: each is a 4xx SCIM error, nothing is stored,
//! and the server keeps serving.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test loudly on a broken setup"
)]

use std::sync::Arc;

use org_mesh_scim::MemoryRepository;
use serde_json::json;

use crate::common::{OKTA_TOKEN, Server, assert_scim_error, q, reply, start, start_with};

async fn raw(
    server: &Server,
    method: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> crate::common::Reply {
    let request = server
        .client
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{}{path}", server.base()),
        )
        .header("authorization", format!("Bearer {OKTA_TOKEN}"))
        .header("content-type", content_type)
        .body(body);
    reply(request.send().await.unwrap()).await
}

async fn nothing_stored(server: &Server) {
    let r = server.get("/Users").await;
    assert_eq!(r.status, 200, "the server must keep serving");
    assert_eq!(r.body["totalResults"], 0);
    assert_eq!(server.service.unsent().await.unwrap(), 0);
    assert!(server.sink.events().is_empty());
}

#[tokio::test]
async fn bad_requests_are_scim_errors_and_store_nothing() {
    let server = start_with(Arc::new(MemoryRepository::new()), Some(4096)).await;

    let r = raw(
        &server,
        "POST",
        "/Users",
        "application/scim+json",
        b"{\"userName\": ".to_vec(),
    )
    .await;
    assert_scim_error(&r, 400);
    assert_eq!(r.body["scimType"], "invalidSyntax");
    nothing_stored(&server).await;

    let r = raw(
        &server,
        "POST",
        "/Users",
        "text/plain",
        b"{\"userName\": \"a\"}".to_vec(),
    )
    .await;
    assert_scim_error(&r, 415);
    nothing_stored(&server).await;

    // Plain JSON is accepted.
    let r = raw(
        &server,
        "POST",
        "/Users",
        "application/json; charset=utf-8",
        b"{\"userName\": \"ok\"}".to_vec(),
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        server
            .delete(&format!("/Users/{}", r.body["id"].as_str().unwrap()))
            .await
            .status,
        204
    );
    server.service.hand_over_unsent().await.unwrap();
    server.sink.events.lock().unwrap().clear();

    let big = json!({"userName": "big", "displayName": "x".repeat(8192)}).to_string();
    let r = raw(
        &server,
        "POST",
        "/Users",
        "application/scim+json",
        big.into_bytes(),
    )
    .await;
    assert_scim_error(&r, 413);
    nothing_stored(&server).await;

    let r = server
        .post("/Users", &json!({"displayName": "no userName"}))
        .await;
    assert_scim_error(&r, 400);
    nothing_stored(&server).await;

    let r = server
        .post("/Users", &json!({"userName": "a", "active": "maybe"}))
        .await;
    assert_scim_error(&r, 400);
    assert_eq!(r.body["scimType"], "invalidValue");
    nothing_stored(&server).await;

    for filter in [
        "userName eq",
        "userName xx \"a\"",
        "(userName eq \"a\"",
        "userName eq \"a\" and",
        &"(".repeat(100),
    ] {
        let r = server.get(&format!("/Users?filter={}", q(filter))).await;
        assert_scim_error(&r, 400);
        assert_eq!(r.body["scimType"], "invalidFilter");
        assert!(
            r.body["detail"].as_str().unwrap().contains("position"),
            "{}",
            r.body
        );
    }
    let r = server.get("/Users?startIndex=one").await;
    assert_scim_error(&r, 400);
    // A search whose members have the wrong type is refused, not read as
    // a search for everything.
    for (search, named) in [
        (json!({"filter": 5}), "filter"),
        (json!({"filter": ["userName pr"]}), "filter"),
        (json!({"attributes": {"a": 1}}), "attributes"),
        (json!({"excludedAttributes": [1]}), "excludedAttributes"),
    ] {
        let r = server.post("/Users/.search", &search).await;
        assert_scim_error(&r, 400);
        assert!(
            r.body["detail"].as_str().unwrap().contains(named),
            "{search}: {}",
            r.body
        );
    }
    let r = server.post("/Users/.search", &json!({"filter": 5})).await;
    assert_eq!(r.body["scimType"], "invalidFilter", "{}", r.body);

    let r = server.get("/Users/does-not-exist").await;
    assert_scim_error(&r, 404);
    let r = server
        .patch(
            "/Users/does-not-exist",
            &json!({"Operations": [{"op": "replace", "value": {"active": false}}]}),
        )
        .await;
    assert_scim_error(&r, 404);
    let r = server.delete("/Groups/does-not-exist").await;
    assert_scim_error(&r, 404);
    nothing_stored(&server).await;

    // Discovery endpoints only answer GET.
    let r = server.post("/ServiceProviderConfig", &json!({})).await;
    assert_scim_error(&r, 405);
    let r = server.delete("/Schemas").await;
    assert_scim_error(&r, 405);
    let r = server.get("/Nowhere").await;
    assert_scim_error(&r, 404);
    nothing_stored(&server).await;
}

#[tokio::test]
async fn unknown_connectors_and_bad_tokens_are_refused() {
    let server = start().await;
    let url = format!("{}/scim/v2/nobody/Users", server.addr);
    let r = reply(
        server
            .client
            .get(&url)
            .bearer_auth(OKTA_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_scim_error(&r, 404);

    let url = format!("{}/Users", server.base());
    let r = reply(server.client.get(&url).send().await.unwrap()).await;
    assert_scim_error(&r, 401);
    for token in ["wrong", "", "okta-test-token-", "entra-test-token-2"] {
        let r = reply(
            server
                .client
                .get(&url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_scim_error(&r, 401);
    }
    let r = reply(
        server
            .client
            .post(&url)
            .bearer_auth("wrong")
            .header("content-type", "application/scim+json")
            .body(json!({"userName": "intruder"}).to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_scim_error(&r, 401);
    nothing_stored(&server).await;
    let r = reply(
        server
            .client
            .get(format!("{}/ServiceProviderConfig", server.base()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_scim_error(&r, 401);
}
