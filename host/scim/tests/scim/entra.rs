//! The requests Entra ID sends, and a replay of the Entra-shaped Postman
//! collection from Microsoft's SCIM reference code.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test loudly on a broken setup"
)]

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::common::{ENTRA_TOKEN, patch_op, q, reply, start};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn entra_user(upn: &str, nickname: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "externalId": nickname,
        "userName": upn,
        "active": true,
        "emails": [{"primary": true, "type": "work", "value": upn}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "Ada Lovelace", "familyName": "Lovelace", "givenName": "Ada"},
        "roles": [],
        ENTERPRISE: {"employeeNumber": "100", "department": "Engines"}
    })
}

#[tokio::test]
async fn entra_provisioning_sequence() {
    let server = start().await.speaking_as("entra", ENTRA_TOKEN);

    // Match, then create with the enterprise extension.
    let r = server
        .get(&format!(
            "/Users?filter={}",
            q("userName eq \"ada@contoso.com\"")
        ))
        .await;
    assert_eq!(r.body["totalResults"], 0);
    let r = server
        .post("/Users", &entra_user("ada@contoso.com", "ada"))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body[ENTERPRISE]["employeeNumber"], "100");
    assert_eq!(
        r.body["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE])
    );
    let bob = server
        .post("/Users", &entra_user("bob@contoso.com", "bob"))
        .await
        .body;
    let carol = server
        .post("/Users", &entra_user("carol@contoso.com", "carol"))
        .await
        .body;
    let (bob, carol) = (bob["id"].as_str().unwrap(), carol["id"].as_str().unwrap());

    // The other matching attributes are filterable too.
    for filter in [
        "externalId eq \"ada\"",
        "emails[type eq \"work\"].value eq \"ADA@contoso.com\"",
        "emails[type eq \"work\" and value co \"@\"] and userName sw \"ada\"",
    ] {
        let r = server.get(&format!("/Users?filter={}", q(filter))).await;
        assert_eq!(r.status, 200, "{filter}: {}", r.body);
        assert_eq!(r.body["totalResults"], 1, "{filter}");
    }

    // Capitalised Replace ops with filter paths and dotted names.
    let r = server
        .patch(
            &format!("/Users/{id}"),
            &patch_op(json!([
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "ada.l@contoso.com"},
                {"op": "Replace", "path": "name.familyName", "value": "Byron"},
                {"op": "Replace", "path": format!("{ENTERPRISE}:employeeNumber"), "value": "101"},
                {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100"},
                {"op": "Replace", "value": {"name.givenName": "Augusta", "displayName": "Augusta Ada",
                    format!("{ENTERPRISE}:department"): "Analytics"}}
            ])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let u = &r.body;
    assert_eq!(
        u["emails"],
        json!([{"primary": true, "type": "work", "value": "ada.l@contoso.com"}])
    );
    assert_eq!(u["name"]["familyName"], "Byron");
    assert_eq!(u["name"]["givenName"], "Augusta");
    assert_eq!(u["displayName"], "Augusta Ada");
    assert_eq!(u[ENTERPRISE]["employeeNumber"], "101");
    assert_eq!(u[ENTERPRISE]["department"], "Analytics");
    assert_eq!(
        u["phoneNumbers"],
        json!([{"type": "mobile", "value": "+1 555 0100"}])
    );
    assert_eq!(
        server.last_handed(&id).await.unwrap()[ENTERPRISE]["employeeNumber"],
        "101"
    );

    // Disable with a string; any case; then a real boolean; junk is refused.
    let r = server
        .patch(
            &format!("/Users/{id}"),
            &patch_op(json!([{"op": "Replace", "path": "active", "value": "False"}])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], false);
    assert_eq!(server.last_handed(&id).await.unwrap()["active"], false);
    let r = server
        .patch(
            &format!("/Users/{id}"),
            &patch_op(json!([{"op": "replace", "path": "ACTIVE", "value": "tRUE"}])),
        )
        .await;
    assert_eq!(r.body["active"], true);
    let r = server
        .patch(
            &format!("/Users/{id}"),
            &patch_op(json!([{"op": "replace", "path": "active", "value": false}])),
        )
        .await;
    assert_eq!(r.body["active"], false);
    let r = server
        .patch(
            &format!("/Users/{id}"),
            &patch_op(json!([{"op": "Replace", "path": "active", "value": "no"}])),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["scimType"], "invalidValue");
    let r = server.get(&format!("/Users/{id}")).await;
    assert_eq!(r.status, 200, "inactive users are still returned");
    assert_eq!(r.body["active"], false);

    // Groups with an extra Microsoft schema URN.
    let r = server
        .post(
            "/Groups",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group",
                            "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
                "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
                "displayName": "Analysts",
                "meta": {"resourceType": "Group"}
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let gid = r.body["id"].as_str().unwrap().to_owned();
    let r = server
        .patch(
            &format!("/Groups/{gid}"),
            &patch_op(json!([{"op": "Add", "path": "members", "value": [{"value": id}, {"value": bob}, {"value": carol}]}])),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let r = server
        .get(&format!(
            "/Groups?excludedAttributes=members&filter={}",
            q("displayName eq \"analysts\"")
        ))
        .await;
    assert_eq!(r.body["totalResults"], 1);
    assert_eq!(r.body["Resources"][0]["id"], gid.as_str());
    assert!(r.body["Resources"][0].get("members").is_none());
    let r = server
        .get(&format!("/Groups/{gid}?excludedAttributes=members"))
        .await;
    assert!(r.body.get("members").is_none());
    assert_eq!(r.body["displayName"], "Analysts");

    // Remove with a value list removes only those members.
    let r = server
        .patch(
            &format!("/Groups/{gid}"),
            &patch_op(json!([{"op": "Remove", "path": "members", "value": [{"value": bob}]}])),
        )
        .await;
    assert_eq!(r.status, 204);
    let g = server.get(&format!("/Groups/{gid}")).await.body;
    assert_eq!(g["members"], json!([{"value": id}, {"value": carol}]));
    assert_eq!(
        server.last_handed(&gid).await.unwrap()["members"],
        g["members"]
    );

    // Replace of displayName answers 204.
    let r = server
        .patch(
            &format!("/Groups/{gid}"),
            &patch_op(json!([{"op": "Replace", "path": "displayName", "value": "Analysts EMEA"}])),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        server.get(&format!("/Groups/{gid}")).await.body["displayName"],
        "Analysts EMEA"
    );

    // Searches by POST, per kind and across both.
    let search = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "userName sw \"ADA\" or displayName eq \"Analysts EMEA\"",
        "attributes": ["userName", "displayName"],
        "startIndex": 1,
        "count": 10
    });
    let r = server.post("/.search", &search).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["totalResults"], 2);
    assert!(r.body["Resources"][0].get("emails").is_none());
    let r = server.post("/Users/.search", &search).await;
    assert_eq!(r.body["totalResults"], 1);
    assert_eq!(r.body["Resources"][0]["userName"], "ada@contoso.com");

    // Delete a user.
    let r = server.delete(&format!("/Users/{id}")).await;
    assert_eq!(r.status, 204);
    assert_eq!(server.get(&format!("/Users/{id}")).await.status, 404);
    assert!(server.last_handed(&id).await.is_none());
    // Entra's users never appear to the Okta connector.
    let okta = start().await;
    assert_eq!(okta.get("/Users").await.body["totalResults"], 0);
}

fn collection() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../conformance/scim/data/entra-scim/PostmanCollection.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every request of the collection, depth first, with the variable its test
/// script sets from the response's `id`, if any.
fn requests(items: &Value, out: &mut Vec<(Value, Option<String>)>) {
    for item in items.as_array().unwrap() {
        if let Some(children) = item.get("item") {
            requests(children, out);
            continue;
        }
        let script = item["event"].to_string();
        let captured = script
            .split("environment.set(\\\"")
            .nth(1)
            .and_then(|rest| rest.split("\\\"").next())
            .map(str::to_owned);
        out.push((item["request"].clone(), captured));
    }
}

fn substitute(text: &str, base: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = text
        .replace("{{Protocol}}://{{Server}}{{Port}}/{{Api}}", base)
        .replace("${__UUID}", "0f6b7c56-0000-4000-8000-000000000001");
    for (name, value) in vars {
        out = out.replace(&format!("{{{{{name}}}}}"), value);
    }
    // Ids never captured (their create failed) stay unknown to the server.
    while let (Some(start), Some(end)) = (out.find("{{"), out.find("}}")) {
        if end < start {
            break;
        }
        out.replace_range(start..end + 2, "unknown-id");
    }
    out
}

#[tokio::test]
async fn entra_postman_collection_never_gets_a_server_error() {
    let server = start().await.speaking_as("entra", ENTRA_TOKEN);
    let mut all = Vec::new();
    requests(&collection()["item"], &mut all);
    assert!(all.len() > 60, "the collection has about 80 requests");
    let mut vars = BTreeMap::new();
    let mut statuses = BTreeMap::<u16, usize>::new();
    for (request, captured) in all {
        let method = request["method"].as_str().unwrap();
        let url = substitute(
            request["url"]["raw"].as_str().unwrap(),
            &server.base(),
            &vars,
        );
        let mut call = server
            .client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                &url,
            )
            .header("authorization", format!("Bearer {}", server.token()));
        if let Some(raw) = request["body"]["raw"].as_str() {
            call = call
                .header("content-type", "application/scim+json")
                .body(substitute(raw, &server.base(), &vars));
        }
        let r = reply(call.send().await.unwrap()).await;
        assert!(r.status < 500, "{method} {url} -> {}: {}", r.status, r.body);
        if r.status >= 400 {
            assert_eq!(r.content_type, "application/scim+json", "{method} {url}");
            assert_eq!(r.body["status"], r.status.to_string(), "{method} {url}");
        }
        *statuses.entry(r.status).or_default() += 1;
        if let (Some(name), Some(id)) = (captured, r.body["id"].as_str()) {
            vars.insert(name, id.to_owned());
        }
    }
    // Most of the collection is well-formed and must succeed.
    let ok: usize = statuses
        .iter()
        .filter(|(s, _)| **s < 300)
        .map(|(_, n)| n)
        .sum();
    assert!(ok >= 45, "statuses: {statuses:?}");
}
