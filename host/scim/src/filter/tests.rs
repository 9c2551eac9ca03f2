use serde_json::json;

use super::*;

fn user() -> Value {
    json!({
        "id": "2819c223",
        "externalId": "Bjensen",
        "userName": "BJensen@example.com",
        "active": true,
        "name": {"familyName": "Jensen", "givenName": "Barbara"},
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984"},
        "meta": {"created": "2011-08-01T18:29:49.793Z", "lastModified": "2011-08-01T18:29:49Z"}
    })
}

fn check(filter: &str) -> bool {
    let parsed = parse(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
    matches(&parsed, ResourceKind::User, &user())
}

#[test]
fn operators_match_case_insensitively_where_the_schema_says() {
    assert!(check("userName eq \"bjensen@example.com\""));
    assert!(check("USERNAME Eq \"BJENSEN@EXAMPLE.COM\""));
    assert!(
        !check("externalId eq \"bjensen\""),
        "externalId is caseExact"
    );
    assert!(check("externalId eq \"Bjensen\""));
    assert!(check("userName ne \"other\""));
    assert!(check("name.familyName co \"ens\""));
    assert!(check("userName sw \"bj\""));
    assert!(check("userName ew \".COM\""));
    assert!(!check("title pr"));
    assert!(check("name pr"));
    assert!(check("active eq true"));
    assert!(!check("active eq false"));
    assert!(check("title eq null"));
}

#[test]
fn logic_and_precedence() {
    assert!(check(
        "userName eq \"x\" or userName sw \"b\" and active eq true"
    ));
    assert!(!check(
        "(userName eq \"x\" or userName sw \"b\") and active eq false"
    ));
    assert!(check("not (userName eq \"x\")"));
    assert!(check("not(userName eq \"x\") and not (active eq false)"));
}

#[test]
fn value_paths_and_complex_values() {
    assert!(check("emails[type eq \"work\" and value co \"@example\"]"));
    assert!(!check(
        "emails[type eq \"work\" and value co \"jensen.org\"]"
    ));
    assert!(check("emails co \"jensen.org\""));
    assert!(check("emails.value ew \"jensen.org\""));
    assert!(check(
        "emails[type eq \"work\"].value eq \"bjensen@example.com\""
    ));
    assert!(!check(
        "emails[type eq \"home\"].value eq \"bjensen@example.com\""
    ));
}

#[test]
fn urn_qualified_and_datetimes() {
    assert!(check(
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq \"701984\""
    ));
    assert!(check(
        "urn:ietf:params:scim:schemas:core:2.0:User:userName sw \"b\""
    ));
    assert!(check("meta.created gt \"2011-05-13T04:42:34Z\""));
    assert!(!check("meta.created lt \"2011-05-13T04:42:34Z\""));
    assert!(check("meta.lastModified ge \"2011-08-01T18:29:49Z\""));
    assert!(check("meta.created gt \"2011-08-01T11:00:00-07:00\""));
}

#[test]
fn malformed_filters_say_where() {
    for (filter, position) in [
        ("userName eq", 11),
        ("userName foo \"a\"", 9),
        ("(userName eq \"a\"", 16),
        ("userName eq \"a\" extra", 16),
        ("userName eq \"unterminated", 12),
        ("emails[type eq \"work\"", 21),
        ("emails[type[value eq \"a\"]]", 11),
        ("1bad eq \"a\"", 0),
        ("", 0),
    ] {
        let err = parse(filter).unwrap_err();
        assert_eq!(err.position, position, "{filter}: {err}");
    }
}

#[test]
fn hostile_input_never_recurses_unboundedly() {
    let deep = format!("{}userName pr{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(parse(&deep).is_err());
    let nots = "not (".repeat(5_000);
    assert!(parse(&nots).is_err());
    let long_chain = vec!["userName pr"; 1_000].join(" and ");
    let parsed = parse(&long_chain).unwrap();
    assert!(matches(&parsed, ResourceKind::User, &user()));
    assert!(parse(&"a".repeat(MAX_LEN + 1)).is_err());
    let fine = format!(
        "{}userName pr{}",
        "(".repeat(MAX_DEPTH - 1),
        ")".repeat(MAX_DEPTH - 1)
    );
    assert!(parse(&fine).is_ok());
    for junk in [
        "\"\\", "[", "]", "(((", "eq eq eq", "a[", "a]", "a.b.c pr", "\u{0}", "é eq 1",
    ] {
        let _ = parse(junk);
        let _ = parse_patch_path(junk);
    }
}

#[test]
fn patch_paths() {
    let p = parse_patch_path("emails[type eq \"work\"].value").unwrap();
    assert_eq!(p.attr.name, "emails");
    assert_eq!(p.sub.as_deref(), Some("value"));
    assert!(p.filter.is_some());
    let p = parse_patch_path(
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    )
    .unwrap();
    assert_eq!(
        p.attr.schema.as_deref(),
        Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
    );
    assert_eq!(p.attr.name, "manager");
    assert_eq!(p.attr.sub.as_deref(), Some("value"));
    assert!(parse_patch_path("members[value eq \"1\"] junk").is_err());
    assert!(parse_patch_path("name.givenName[type eq \"x\"]").is_err());
}

#[test]
fn numbers_and_booleans_as_literals() {
    let f = parse("x gt 5 and y eq TRUE and z eq -1.5e3").unwrap();
    assert!(matches!(f, Filter::And(ref t) if t.len() == 3));
    assert!(parse("x eq 5x").is_err());
}
