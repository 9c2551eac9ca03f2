//! Reads SCIM 2.0 ListResponses, users and groups (RFC 7643, RFC 7644) as
//! identity providers actually write them: attribute names in any case
//! (RFC 7643 §2.1), and `active` as a boolean or, from Entra ID, as the
//! string `"True"` or `"False"`.
//!
//! An export is one document, so anything malformed fails the whole read
//! with a message naming the document, the resource and the attribute.

use serde_json::{Map, Value as Json};

use org_mesh_plugin::types::PluginError;

pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// One page of a listing, or a whole exported listing.
#[derive(Debug, Clone)]
pub struct ListPage {
    pub total_results: Option<u64>,
    pub resources: Vec<Json>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Email {
    pub value: String,
    pub kind: Option<String>,
    pub primary: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct User {
    pub id: String,
    pub user_name: String,
    pub external_id: Option<String>,
    pub active: Option<bool>,
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub emails: Vec<Email>,
    pub employee_number: Option<String>,
    pub department: Option<String>,
    pub manager_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub value: String,
    /// `User` or `Group` when the provider says.
    pub kind: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub id: String,
    pub display_name: Option<String>,
    pub external_id: Option<String>,
    pub members: Vec<Member>,
}

fn invalid(message: String) -> PluginError {
    PluginError::InvalidInput(message)
}

/// The attribute of that name, compared without regard to case.
fn attr<'a>(object: &'a Map<String, Json>, name: &str) -> Option<&'a Json> {
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// Parses a ListResponse. `Resources` may be left out only when
/// `totalResults` is 0, as RFC 7644 §3.4.2 allows.
pub fn list_page(document: &str, bytes: &[u8]) -> Result<ListPage, PluginError> {
    let json: Json =
        serde_json::from_slice(bytes).map_err(|e| invalid(format!("{document}: not JSON: {e}")))?;
    let Json::Object(object) = json else {
        return Err(invalid(format!(
            "{document}: not a SCIM ListResponse object"
        )));
    };
    let total_results =
        match attr(&object, "totalResults") {
            None | Some(Json::Null) => None,
            Some(value) => Some(value.as_u64().ok_or_else(|| {
                invalid(format!("{document}: totalResults is {value}, not a count"))
            })?),
        };
    let resources = match attr(&object, "Resources") {
        Some(Json::Array(items)) => items.clone(),
        None if total_results == Some(0) => Vec::new(),
        None => {
            return Err(invalid(format!(
                "{document}: no Resources; is this a single resource rather than a ListResponse?"
            )));
        }
        Some(other) => {
            return Err(invalid(format!(
                "{document}: Resources is {}, not a list",
                kind_of(other)
            )));
        }
    };
    Ok(ListPage {
        total_results,
        resources,
    })
}

fn kind_of(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "an object",
    }
}

/// Names a resource in messages by where it was found and whatever
/// identifies it.
fn describe(place: &str, object: &Map<String, Json>) -> String {
    let name = ["userName", "displayName", "id"]
        .into_iter()
        .find_map(|a| attr(object, a).and_then(Json::as_str));
    match name {
        Some(name) => format!("{place} ({name:?})"),
        None => place.to_string(),
    }
}

fn required_text(
    object: &Map<String, Json>,
    name: &str,
    whose: &dyn Fn() -> String,
) -> Result<String, PluginError> {
    match attr(object, name) {
        Some(Json::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Json::String(_)) => Err(invalid(format!("{}: {name} is empty", whose()))),
        None | Some(Json::Null) => Err(invalid(format!("{}: has no {name}", whose()))),
        Some(other) => Err(invalid(format!(
            "{}: {name} is {}, not a string",
            whose(),
            kind_of(other)
        ))),
    }
}

/// An optional descriptive attribute. Numbers are kept as text, since
/// providers disagree on whether an employee number is one.
fn optional_text(
    object: &Map<String, Json>,
    name: &str,
    whose: &dyn Fn() -> String,
) -> Result<Option<String>, PluginError> {
    match attr(object, name) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) if s.is_empty() => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(Json::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(invalid(format!(
            "{}: {name} is {}, not a string",
            whose(),
            kind_of(other)
        ))),
    }
}

/// `active` as RFC 7643 has it (a boolean) or as Entra ID sends it (the
/// text `True` or `False`, in any case).
pub fn parse_active(value: &Json) -> Option<bool> {
    match value {
        Json::Bool(b) => Some(*b),
        Json::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Json::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn object<'a>(
    value: &'a Json,
    whose: &dyn Fn() -> String,
) -> Result<&'a Map<String, Json>, PluginError> {
    value
        .as_object()
        .ok_or_else(|| invalid(format!("{}: is {}, not an object", whose(), kind_of(value))))
}

/// The `index`th user of a listing.
pub fn user(document: &str, index: usize, value: &Json) -> Result<User, PluginError> {
    resource_user(&format!("{document}: Resources[{index}]"), value)
}

/// One user resource; `place` says where it came from in messages.
pub fn resource_user(place: &str, value: &Json) -> Result<User, PluginError> {
    let plain = || place.to_string();
    let object = object(value, &plain)?;
    let whose = || describe(place, object);
    let active = match attr(object, "active") {
        None | Some(Json::Null) => None,
        Some(raw) => Some(parse_active(raw).ok_or_else(|| {
            invalid(format!(
                "{}: active is {raw}, neither a boolean nor \"True\"/\"False\"",
                whose()
            ))
        })?),
    };
    let (given_name, family_name) = match attr(object, "name") {
        Some(Json::Object(name)) => (
            optional_text(name, "givenName", &whose)?,
            optional_text(name, "familyName", &whose)?,
        ),
        _ => (None, None),
    };
    let mut user = User {
        id: required_text(object, "id", &whose)?,
        user_name: required_text(object, "userName", &whose)?,
        external_id: optional_text(object, "externalId", &whose)?,
        active,
        display_name: optional_text(object, "displayName", &whose)?,
        given_name,
        family_name,
        emails: emails(object, &whose)?,
        ..User::default()
    };
    if let Some(Json::Object(enterprise)) = attr(object, ENTERPRISE_USER) {
        user.employee_number = optional_text(enterprise, "employeeNumber", &whose)?;
        user.department = optional_text(enterprise, "department", &whose)?;
        user.manager_id = match attr(enterprise, "manager") {
            Some(Json::Object(manager)) => optional_text(manager, "value", &whose)?,
            // Some exports flatten the manager to its id.
            Some(Json::String(id)) if !id.is_empty() => Some(id.clone()),
            _ => None,
        };
    }
    Ok(user)
}

fn emails(
    object: &Map<String, Json>,
    whose: &dyn Fn() -> String,
) -> Result<Vec<Email>, PluginError> {
    let items = match attr(object, "emails") {
        None | Some(Json::Null) => return Ok(Vec::new()),
        Some(Json::Array(items)) => items,
        Some(other) => {
            return Err(invalid(format!(
                "{}: emails is {}, not a list",
                whose(),
                kind_of(other)
            )));
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let entry = object_of(item, "emails", whose)?;
        let Some(value) = optional_text(entry, "value", whose)? else {
            continue;
        };
        out.push(Email {
            value,
            kind: optional_text(entry, "type", whose)?,
            primary: attr(entry, "primary")
                .and_then(parse_active)
                .unwrap_or(false),
        });
    }
    Ok(out)
}

fn object_of<'a>(
    item: &'a Json,
    list: &str,
    whose: &dyn Fn() -> String,
) -> Result<&'a Map<String, Json>, PluginError> {
    item.as_object().ok_or_else(|| {
        invalid(format!(
            "{}: an entry of {list} is {}, not an object",
            whose(),
            kind_of(item)
        ))
    })
}

/// The address to match people by: the primary one, else the first `work`
/// one, else the first; lower-cased.
pub fn preferred_email(emails: &[Email]) -> Option<String> {
    emails
        .iter()
        .find(|e| e.primary)
        .or_else(|| {
            emails.iter().find(|e| {
                e.kind
                    .as_deref()
                    .is_some_and(|k| k.eq_ignore_ascii_case("work"))
            })
        })
        .or_else(|| emails.first())
        .map(|e| e.value.trim().to_lowercase())
}

/// The `index`th group of a listing.
pub fn group(document: &str, index: usize, value: &Json) -> Result<Group, PluginError> {
    resource_group(&format!("{document}: Resources[{index}]"), value)
}

/// One group resource; `place` says where it came from in messages.
pub fn resource_group(place: &str, value: &Json) -> Result<Group, PluginError> {
    let plain = || place.to_string();
    let object = object(value, &plain)?;
    let whose = || describe(place, object);
    let members = match attr(object, "members") {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::Array(items)) => {
            let mut members = Vec::with_capacity(items.len());
            for item in items {
                let entry = object_of(item, "members", &whose)?;
                let value = required_text(entry, "value", &|| format!("{} member", whose()))?;
                members.push(Member {
                    value,
                    kind: optional_text(entry, "type", &whose)?,
                });
            }
            members
        }
        Some(other) => {
            return Err(invalid(format!(
                "{}: members is {}, not a list",
                whose(),
                kind_of(other)
            )));
        }
    };
    Ok(Group {
        id: required_text(object, "id", &whose)?,
        display_name: optional_text(object, "displayName", &whose)?,
        external_id: optional_text(object, "externalId", &whose)?,
        members,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rfc(name: &str) -> Result<Vec<u8>, String> {
        let path = format!("{}/tests/data/{name}.json", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).map_err(|e| format!("{path}: {e}"))
    }

    fn rfc_json(name: &str) -> Result<Json, String> {
        serde_json::from_slice(&rfc(name)?).map_err(|e| e.to_string())
    }

    fn err_text<T: std::fmt::Debug>(result: Result<T, PluginError>) -> String {
        match result {
            Err(PluginError::InvalidInput(m)) => m,
            other => format!("not an invalid-input error: {other:?}"),
        }
    }

    #[test]
    fn minimal_user_has_id_and_user_name_only() -> Result<(), String> {
        let u = user("users", 0, &rfc_json("rfc7643-8.1-user-minimal")?)
            .map_err(|e| format!("{e:?}"))?;
        assert_eq!(u.id, "2819c223-7f76-453a-919d-413861904646");
        assert_eq!(u.user_name, "bjensen@example.com");
        assert_eq!(u.active, None);
        assert!(u.emails.is_empty());
        Ok(())
    }

    #[test]
    fn full_user_keeps_names_emails_and_status() -> Result<(), String> {
        let u =
            user("users", 0, &rfc_json("rfc7643-8.2-user-full")?).map_err(|e| format!("{e:?}"))?;
        assert_eq!(u.external_id.as_deref(), Some("701984"));
        assert_eq!(u.active, Some(true));
        assert_eq!(u.display_name.as_deref(), Some("Babs Jensen"));
        assert_eq!(u.given_name.as_deref(), Some("Barbara"));
        assert_eq!(u.family_name.as_deref(), Some("Jensen"));
        assert_eq!(u.emails.len(), 2);
        assert_eq!(
            preferred_email(&u.emails).as_deref(),
            Some("bjensen@example.com")
        );
        Ok(())
    }

    #[test]
    fn enterprise_extension_gives_employee_number_department_and_manager() -> Result<(), String> {
        let u = user("users", 0, &rfc_json("rfc7643-8.3-enterprise_user")?)
            .map_err(|e| format!("{e:?}"))?;
        assert_eq!(u.employee_number.as_deref(), Some("701984"));
        assert_eq!(u.department.as_deref(), Some("Tour Operations"));
        assert_eq!(
            u.manager_id.as_deref(),
            Some("26118915-6090-4610-87e4-49d8ca9f808d")
        );
        Ok(())
    }

    #[test]
    fn group_lists_its_members() -> Result<(), String> {
        let g =
            group("groups", 0, &rfc_json("rfc7643-8.4-group")?).map_err(|e| format!("{e:?}"))?;
        assert_eq!(g.display_name.as_deref(), Some("Tour Guides"));
        let ids: Vec<&str> = g.members.iter().map(|m| m.value.as_str()).collect();
        assert_eq!(
            ids,
            vec![
                "2819c223-7f76-453a-919d-413861904646",
                "902c246b-6245-4190-8e05-00816be7344a"
            ]
        );
        Ok(())
    }

    #[test]
    fn list_response_without_paging_fields_still_reads() -> Result<(), String> {
        let page = list_page(
            "users",
            &rfc("rfc7644-3.4.2-list_response-partial_attributes")?,
        )
        .map_err(|e| format!("{e:?}"))?;
        assert_eq!(page.total_results, Some(2));
        let names: Vec<String> = page
            .resources
            .iter()
            .enumerate()
            .map(|(i, r)| user("users", i, r).map(|u| u.user_name))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{e:?}"))?;
        assert_eq!(names, vec!["bjensen", "jsmith"]);
        Ok(())
    }

    #[test]
    fn a_resource_without_user_name_is_named_in_the_error() -> Result<(), String> {
        // RFC 7644 §3.4.3's answer mixes a group into a user search.
        let page = list_page("users", &rfc("rfc7644-3.4.3-list_response-post_query")?)
            .map_err(|e| format!("{e:?}"))?;
        let message = err_text(user("users", 1, &page.resources[1]));
        assert_eq!(
            message,
            "users: Resources[1] (\"Smith Family\"): has no userName"
        );
        Ok(())
    }

    #[test]
    fn nested_groups_keep_the_member_type() -> Result<(), String> {
        let page = list_page(
            "groups",
            &rfc("rfc7644-3.7.1-list_response-circular_reference")?,
        )
        .map_err(|e| format!("{e:?}"))?;
        let g = group("groups", 0, &page.resources[0]).map_err(|e| format!("{e:?}"))?;
        assert_eq!(g.members[0].kind.as_deref(), Some("Group"));
        Ok(())
    }

    #[test]
    fn entra_string_booleans_in_any_case() -> Result<(), String> {
        for (raw, expected) in [
            (json!("False"), false),
            (json!("True"), true),
            (json!("false"), false),
            (json!("TRUE"), true),
            (json!(false), false),
        ] {
            let resource = json!({"id": "1", "userName": "a@b.c", "active": raw});
            let u = user("users", 0, &resource).map_err(|e| format!("{e:?}"))?;
            assert_eq!(u.active, Some(expected), "{raw}");
        }
        Ok(())
    }

    #[test]
    fn anything_else_as_active_names_the_user() {
        for raw in [json!("yes"), json!(0), json!("Falsch"), json!(["False"])] {
            let resource = json!({"id": "1", "userName": "a@b.c", "active": raw});
            let message = err_text(user("users", 4, &resource));
            assert!(
                message.starts_with("users: Resources[4] (\"a@b.c\"): active is"),
                "{message}"
            );
        }
    }

    #[test]
    fn attribute_names_match_in_any_case() -> Result<(), String> {
        // Entra ID writes `Primary` with a capital, as in its reference
        // collection.
        let resource = json!({
            "ID": "7", "UserName": "Ryan@Contoso.com", "Active": "False",
            "emails": [
                {"Primary": false, "type": "home", "value": "ryan@home.example"},
                {"Primary": true, "type": "work", "value": "Ryan@Contoso.com"}
            ]
        });
        let u = user("users", 0, &resource).map_err(|e| format!("{e:?}"))?;
        assert_eq!(u.id, "7");
        assert_eq!(u.active, Some(false));
        assert_eq!(
            preferred_email(&u.emails).as_deref(),
            Some("ryan@contoso.com")
        );
        Ok(())
    }

    #[test]
    fn preferred_email_falls_back_to_work_then_first() {
        let e = |v: &str, k: Option<&str>| Email {
            value: v.into(),
            kind: k.map(str::to_string),
            primary: false,
        };
        let emails = [
            e("Home@X.test", Some("home")),
            e("Work@X.test", Some("work")),
        ];
        assert_eq!(preferred_email(&emails).as_deref(), Some("work@x.test"));
        let emails = [e("A@X.test", Some("home")), e("B@X.test", None)];
        assert_eq!(preferred_email(&emails).as_deref(), Some("a@x.test"));
        assert_eq!(preferred_email(&[]), None);
    }

    #[test]
    fn malformed_documents_say_what_is_wrong() {
        assert!(err_text(list_page("users", b"{not json")).starts_with("users: not JSON"));
        assert!(err_text(list_page("users", b"[]")).contains("not a SCIM ListResponse"));
        let single = br#"{"id":"1","userName":"a"}"#;
        assert!(err_text(list_page("users", single)).contains("no Resources"));
        let wrong = br#"{"totalResults":1,"Resources":{}}"#;
        assert!(err_text(list_page("users", wrong)).contains("Resources is an object"));
        let empty = br#"{"totalResults":0}"#;
        assert!(
            matches!(list_page("users", empty), Ok(ListPage { ref resources, .. }) if resources.is_empty())
        );
        let no_id = json!({"userName": "a"});
        assert_eq!(
            err_text(user("users", 2, &no_id)),
            "users: Resources[2] (\"a\"): has no id"
        );
        let member = json!({"id": "g", "displayName": "G", "members": [{"display": "x"}]});
        assert!(err_text(group("groups", 0, &member)).contains("member: has no value"));
    }
}
