use serde_json::json;

use super::*;

fn user() -> Map<String, Value> {
    match json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "u1",
        "userName": "bjensen",
        "active": true,
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ]
    }) {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn group() -> Map<String, Value> {
    match json!({
        "id": "g1",
        "displayName": "Eng",
        "members": [{"value": "a"}, {"value": "b"}, {"value": "c"}]
    }) {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn ops(list: Value) -> Value {
    let mut body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]});
    body["Operations"] = list;
    body
}

fn run(
    kind: ResourceKind,
    mut r: Map<String, Value>,
    list: Value,
) -> Result<Map<String, Value>, ScimError> {
    apply(kind, &mut r, &ops(list))?;
    Ok(r)
}

fn members(r: &Map<String, Value>) -> Vec<&str> {
    r.get("members")
        .and_then(Value::as_array)
        .map(|m| m.iter().filter_map(|v| v["value"].as_str()).collect())
        .unwrap_or_default()
}

fn scim_type(e: &ScimError) -> Value {
    e.to_body()["scimType"].clone()
}

#[test]
fn op_names_are_case_insensitive() {
    for op in ["replace", "Replace", "REPLACE"] {
        let r = run(
            ResourceKind::User,
            user(),
            json!([{"op": op, "path": "DisplayName", "value": "B"}]),
        )
        .unwrap();
        assert_eq!(r["displayName"], "B");
    }
    let e = run(
        ResourceKind::User,
        user(),
        json!([{"op": "move", "path": "a", "value": 1}]),
    )
    .unwrap_err();
    assert_eq!(scim_type(&e), "invalidSyntax");
}

#[test]
fn no_path_replace_deactivates_and_expands_dotted_names() {
    let r = run(
        ResourceKind::User,
        user(),
        json!([{"op": "replace", "value": {
            "active": "False",
            "name.givenName": "Babs",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "42",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"}
        }}]),
    )
    .unwrap();
    assert_eq!(r["active"], false);
    assert_eq!(
        r["name"],
        json!({"givenName": "Babs", "familyName": "Jensen"})
    );
    let ext = &r["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"];
    assert_eq!(ext["employeeNumber"], "42");
    assert_eq!(ext["department"], "R&D");
}

#[test]
fn booleans_must_be_booleans() {
    for ok in [json!(false), json!("false"), json!("FALSE"), json!("True")] {
        assert!(
            run(
                ResourceKind::User,
                user(),
                json!([{"op": "replace", "path": "active", "value": ok}])
            )
            .is_ok()
        );
    }
    for bad in [json!("no"), json!(0), json!([true]), json!({"a": 1})] {
        let e = run(
            ResourceKind::User,
            user(),
            json!([{"op": "replace", "path": "active", "value": bad}]),
        )
        .unwrap_err();
        assert_eq!(scim_type(&e), "invalidValue");
    }
}

#[test]
fn own_id_is_ignored_and_a_foreign_one_refused() {
    let r = run(
        ResourceKind::Group,
        group(),
        json!([{"op": "replace", "value": {"id": "g1", "displayName": "New"}}]),
    )
    .unwrap();
    assert_eq!(r["displayName"], "New");
    assert_eq!(r["id"], "g1");
    let e = run(
        ResourceKind::Group,
        group(),
        json!([{"op": "replace", "value": {"id": "g2"}}]),
    )
    .unwrap_err();
    assert_eq!(scim_type(&e), "mutability");
    let e = run(
        ResourceKind::User,
        user(),
        json!([{"op": "add", "path": "groups", "value": [{"value": "x"}]}]),
    )
    .unwrap_err();
    assert_eq!(scim_type(&e), "mutability");
}

#[test]
fn remove_with_value_list_removes_only_those_members() {
    let r = run(
        ResourceKind::Group,
        group(),
        json!([{"op": "Remove", "path": "members", "value": [{"value": "b"}]}]),
    )
    .unwrap();
    assert_eq!(members(&r), vec!["a", "c"]);
    let r = run(
        ResourceKind::Group,
        group(),
        json!([{"op": "remove", "path": "members[value eq \"c\"]"}]),
    )
    .unwrap();
    assert_eq!(members(&r), vec!["a", "b"]);
    let r = run(
        ResourceKind::Group,
        group(),
        json!([{"op": "remove", "path": "members"}]),
    )
    .unwrap();
    assert!(members(&r).is_empty());
    let r = run(
        ResourceKind::Group,
        group(),
        json!([{"op": "remove", "path": "members[value eq \"zz\"]"}]),
    )
    .unwrap();
    assert_eq!(
        members(&r).len(),
        3,
        "removing an absent member is harmless"
    );
}

#[test]
fn add_members_skips_duplicates() {
    let r = run(
        ResourceKind::Group,
        group(),
        json!([{"op": "Add", "path": "members", "value": [{"value": "c"}, {"value": "d"}, {"value": "d"}]}]),
    )
    .unwrap();
    assert_eq!(members(&r), vec!["a", "b", "c", "d"]);
}

#[test]
fn filtered_paths() {
    let r = run(
        ResourceKind::User,
        user(),
        json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@example.com"}]),
    )
    .unwrap();
    assert_eq!(r["emails"][0]["value"], "new@example.com");
    assert_eq!(r["emails"][1]["value"], "babs@jensen.org");
    let r = run(
        ResourceKind::User,
        user(),
        json!([{"op": "replace", "path": "addresses[type eq \"work\"].locality", "value": "Hollywood"}]),
    )
    .unwrap();
    assert_eq!(
        r["addresses"],
        json!([{"type": "work", "locality": "Hollywood"}])
    );
    let e = run(
        ResourceKind::User,
        user(),
        json!([{"op": "replace", "path": "emails[value co \"zzz\"].type", "value": "other"}]),
    )
    .unwrap_err();
    assert_eq!(scim_type(&e), "noTarget");
    let r = run(
        ResourceKind::User,
        user(),
        json!([{"op": "remove", "path": "emails[type eq \"work\" and value ew \"example.com\"]"}]),
    )
    .unwrap();
    assert_eq!(r["emails"].as_array().map(Vec::len), Some(1));
}

#[test]
fn rfc_examples_apply() {
    let load = |name: &str| -> Value {
        let path = format!(
            "{}/../../conformance/scim/data/scim-rfc-examples/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let mut g = group();
    apply(
        ResourceKind::Group,
        &mut g,
        &load("rfc7644-3.5.2.1-patch_op-add_members.json"),
    )
    .unwrap();
    assert_eq!(members(&g).len(), 4);
    let mut u = user();
    apply(
        ResourceKind::User,
        &mut u,
        &load("rfc7644-3.5.2.3-patch_op-replace_user_work_address.json"),
    )
    .unwrap();
    assert_eq!(u["addresses"][0]["locality"], "Hollywood");
    apply(
        ResourceKind::User,
        &mut u,
        &load("rfc7644-3.5.2.3-patch_op-replace_all_email_values.json"),
    )
    .unwrap();
    apply(
        ResourceKind::User,
        &mut u,
        &load("rfc7644-3.5.2.2-patch_op-remove_multi_complex_value.json"),
    )
    .unwrap();
}

#[test]
fn malformed_bodies_are_refused() {
    for body in [
        json!([]),
        json!({}),
        json!({"Operations": []}),
        json!({"Operations": [1]}),
        json!({"Operations": [{"op": "remove"}]}),
        json!({"Operations": [{"op": "add", "path": "emails[", "value": 1}]}),
        json!({"Operations": [{"op": "add", "value": "not an object"}]}),
        json!({"Operations": [{"op": "add", "path": "userName"}]}),
        json!({"Operations": [{"op": "remove", "path": "userName"}]}),
        json!({"Operations": [{"op": "add", "path": 5, "value": 1}]}),
        json!({"Operations": [{"op": "add", "path": "urn:x:y:attr", "value": 1}]}),
    ] {
        let mut r = user();
        let before = r.clone();
        let result = apply(ResourceKind::User, &mut r, &body);
        assert!(result.is_err(), "{body}");
        assert_eq!(
            result.unwrap_err().status(),
            axum::http::StatusCode::BAD_REQUEST
        );
        let _ = before;
    }
}

#[test]
fn enterprise_manager_sub_attribute() {
    let r = run(
        ResourceKind::User,
        user(),
        json!([{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value", "value": "m1"}]),
    )
    .unwrap();
    assert_eq!(
        r["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["manager"]["value"],
        "m1"
    );
}

#[test]
fn enterprise_manager_given_as_its_id_alone_as_entra_sends_it() {
    let manager = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager";
    for op in ["add", "Replace"] {
        let r = run(
            ResourceKind::User,
            user(),
            json!([{"op": op, "path": manager, "value": "26118915-6090-4610-87a4-2fa2d5d3d7b3"}]),
        )
        .unwrap();
        assert_eq!(
            r["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["manager"],
            json!({"value": "26118915-6090-4610-87a4-2fa2d5d3d7b3"}),
            "{op}"
        );
    }
    // A complex attribute without a `value` still needs an object.
    assert!(
        run(
            ResourceKind::User,
            user(),
            json!([{"op": "replace", "path": "name", "value": "Barbara Jensen"}]),
        )
        .is_err()
    );
}
