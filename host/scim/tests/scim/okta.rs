//! The requests Okta sends, in the order it sends them, with the stored state
//! and the sink's view checked after each step.

use serde_json::{Value, json};

use crate::common::{Event, q, start};

fn okta_user(n: usize) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": format!("user{n}@example.com"),
        "name": {"givenName": format!("Given{n}"), "familyName": "Family"},
        "emails": [{"primary": true, "value": format!("user{n}@example.com"), "type": "work"}],
        "displayName": format!("Given{n} Family"),
        "locale": "en-US",
        "externalId": format!("00u{n:05}"),
        "groups": [],
        "password": "1mz050nq",
        "active": true
    })
}

#[tokio::test]
async fn okta_provisioning_sequence() {
    let server = start().await;

    // Test the connection.
    let r = server.get("/Users?startIndex=1&count=2").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "application/scim+json");
    assert_eq!(r.body["totalResults"], 0);
    assert_eq!(r.body["Resources"], json!([]));
    let r = server.get("/Groups?startIndex=1&count=100").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["totalResults"], 0);

    // Assign: match by userName, no match, then create.
    let filter = q("userName eq \"user0@example.com\"");
    let r = server
        .get(&format!("/Users?filter={filter}&startIndex=1&count=100"))
        .await;
    assert_eq!(r.body["totalResults"], 0);
    let r = server.post("/Users", &okta_user(0)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["meta"]["resourceType"], "User");
    assert!(
        r.body["meta"]["location"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/Users/{id}"))
    );
    assert!(
        r.body.get("password").is_none(),
        "password must never be returned"
    );
    assert_eq!(
        server.last_handed(&id).await.unwrap()["userName"],
        "user0@example.com"
    );
    let dup = server
        .post("/Users", &json!({"userName": "USER0@example.com"}))
        .await;
    assert_eq!(dup.status, 409);
    assert_eq!(dup.body["scimType"], "uniqueness");
    let r = server
        .get(&format!("/Users?filter={filter}&startIndex=1&count=100"))
        .await;
    assert_eq!(r.body["totalResults"], 1);
    assert_eq!(r.body["Resources"][0]["id"], id.as_str());

    // Import, paging by 100 over 250 users: integers, no gaps, no repeats.
    for n in 1..250 {
        assert_eq!(server.post("/Users", &okta_user(n)).await.status, 201);
    }
    let mut seen = Vec::new();
    for start_index in [1, 101, 201] {
        let r = server
            .get(&format!("/Users?startIndex={start_index}&count=100"))
            .await;
        assert!(r.body["totalResults"].is_u64());
        assert_eq!(r.body["totalResults"], 250);
        assert_eq!(r.body["startIndex"], start_index);
        assert!(r.body["itemsPerPage"].is_u64());
        for u in r.body["Resources"].as_array().unwrap() {
            seen.push(u["userName"].as_str().unwrap().to_owned());
        }
    }
    let expected: Vec<String> = (0..250).map(|n| format!("user{n}@example.com")).collect();
    assert_eq!(seen, expected, "pages must follow creation order");

    // Update a profile: GET, then PUT of the whole user with id, groups, meta.
    let mut user = server.get(&format!("/Users/{id}")).await.body;
    user["name"]["familyName"] = json!("Renamed");
    user["groups"] = json!([{"value": "whatever"}]);
    user["id"] = json!(id);
    let r = server.put(&format!("/Users/{id}"), &user).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["name"]["familyName"], "Renamed");
    assert_eq!(r.body["id"], id.as_str());
    assert_eq!(
        server.last_handed(&id).await.unwrap()["name"]["familyName"],
        "Renamed"
    );

    // Deactivate: a no-path replace with {"active": false}.
    let r = server
        .patch(
            &format!("/Users/{id}"),
            &json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "value": {"active": false}}]
            }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], false);
    let r = server.get(&format!("/Users/{id}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["active"], false);
    assert_eq!(r.body["name"]["familyName"], "Renamed");
    assert_eq!(server.last_handed(&id).await.unwrap()["active"], false);

    // Push a group, then rename it with its own id resent.
    let r = server
        .post(
            "/Groups",
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Engineering", "members": []}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let gid = r.body["id"].as_str().unwrap().to_owned();
    let users = server.get("/Users?count=3").await.body;
    let member = |i: usize| users["Resources"][i]["id"].as_str().unwrap().to_owned();
    let (a, b, c) = (member(0), member(1), member(2));
    let r = server
        .patch(
            &format!("/Groups/{gid}"),
            &json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    {"op": "replace", "value": {"id": gid, "displayName": "Engineering Team"}},
                    {"op": "add", "path": "members", "value": [{"value": a, "display": "a"}, {"value": b, "display": "b"}]}
                ]
            }),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let g = server.get(&format!("/Groups/{gid}")).await.body;
    assert_eq!(g["displayName"], "Engineering Team");
    assert_eq!(g["members"].as_array().unwrap().len(), 2);

    // A rename with a foreign id is refused.
    let r = server
        .patch(
            &format!("/Groups/{gid}"),
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                   "Operations": [{"op": "replace", "value": {"id": "someone-else", "displayName": "X"}}]}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["scimType"], "mutability");

    // Membership change resent with the name: remove by filter, add a list.
    let r = server
        .patch(
            &format!("/Groups/{gid}"),
            &json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    {"op": "replace", "value": {"id": gid, "displayName": "Engineering Team"}},
                    {"op": "remove", "path": format!("members[value eq \"{a}\"]")},
                    {"op": "add", "path": "members", "value": [{"value": b}, {"value": c}]}
                ]
            }),
        )
        .await;
    assert_eq!(r.status, 204);
    let g = server.get(&format!("/Groups/{gid}")).await.body;
    let ids: Vec<&str> = g["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![b.as_str(), c.as_str()],
        "no duplicates, a removed"
    );
    assert_eq!(
        server.last_handed(&gid).await.unwrap()["members"],
        g["members"]
    );

    // A full push replaces members.
    let r = server
        .patch(
            &format!("/Groups/{gid}"),
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                   "Operations": [{"op": "replace", "path": "members", "value": [{"value": a}]}]}),
        )
        .await;
    assert_eq!(r.status, 204);
    let g = server.get(&format!("/Groups/{gid}")).await.body;
    assert_eq!(g["members"], json!([{"value": a}]));

    // Older integrations use PUT for group changes too.
    let r = server
        .put(
            &format!("/Groups/{gid}"),
            &json!({"id": gid, "displayName": "Engineering Team", "members": [{"value": c}], "meta": {"resourceType": "Group"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["members"], json!([{"value": c}]));

    // Unlink the group.
    let r = server.delete(&format!("/Groups/{gid}")).await;
    assert_eq!(r.status, 204);
    let r = server.get(&format!("/Groups/{gid}")).await;
    assert_eq!(r.status, 404);
    assert!(!r.body["detail"].as_str().unwrap().is_empty());
    assert!(server.last_handed(&gid).await.is_none());
    assert!(matches!(
        server.sink.events().last(),
        Some(Event::Deleted(c, _, g)) if c == "okta" && g["id"] == gid.as_str()
    ));

    // The deactivated user is still there and still listed.
    let filter = q("active eq false");
    let r = server.get(&format!("/Users?filter={filter}")).await;
    assert_eq!(r.body["totalResults"], 1);
    assert_eq!(r.body["Resources"][0]["id"], id.as_str());
}
