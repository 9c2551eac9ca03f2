//! GitLab's protected-branch access levels, and what to do with a branch's
//! current protection given the levels an action asks for.
//!
//! GitLab lets a role push (or merge) when any entry of the branch's list
//! allows it, so a list is as permissive as its most permissive role entry.
//! Entries naming a user, a group or a deploy key (GitLab Premium) are
//! deliberate exceptions, not role levels: they are never judged here and
//! never removed.
//!
//! Raising a protection means unprotecting the branch and protecting it
//! again, since only GitLab Premium changes access levels in place (the
//! Free tier's update call takes `allow_force_push` and deploy keys only).
//! That recreates the protection from the action's levels alone, so it is
//! done only when nothing the branch has would be lost or weakened by it;
//! otherwise the action is refused, naming what stands in the way.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// One of the levels GitLab accepts for pushing and merging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    NoOne,
    Developer,
    Maintainer,
    Admin,
}

impl Level {
    pub fn from_value(value: i64) -> Option<Self> {
        match value {
            0 => Some(Self::NoOne),
            30 => Some(Self::Developer),
            40 => Some(Self::Maintainer),
            60 => Some(Self::Admin),
            _ => None,
        }
    }

    /// The role words GitLab's interface and the GitLab connector use.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "no_access" | "no_one" => Some(Self::NoOne),
            "developer" => Some(Self::Developer),
            "maintainer" => Some(Self::Maintainer),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    /// The number GitLab's API takes and returns.
    pub fn value(self) -> i64 {
        match self {
            Self::NoOne => 0,
            Self::Developer => 30,
            Self::Maintainer => 40,
            Self::Admin => 60,
        }
    }

    /// Higher is stricter: fewer people may act. The numbers do not say
    /// this by themselves, since 0 (no one) is the strictest of all.
    fn strictness(self) -> u8 {
        match self {
            Self::Developer => 1,
            Self::Maintainer => 2,
            Self::Admin => 3,
            Self::NoOne => 4,
        }
    }

    pub fn at_least_as_strict_as(self, other: Self) -> bool {
        self.strictness() >= other.strictness()
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::NoOne => "no one",
            Self::Developer => "developers and maintainers",
            Self::Maintainer => "maintainers",
            Self::Admin => "administrators",
        }
    }
}

/// One entry of an access-level list as GitLab returns it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Entry {
    pub access_level: Option<i64>,
    pub user_id: Option<i64>,
    pub group_id: Option<i64>,
    pub deploy_key_id: Option<i64>,
}

impl Entry {
    fn names_someone(&self) -> bool {
        self.user_id.is_some() || self.group_id.is_some() || self.deploy_key_id.is_some()
    }
}

/// A `GET /projects/:id/protected_branches/:name` answer, with what this
/// executor looks at.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Current {
    pub push_access_levels: Vec<Entry>,
    pub merge_access_levels: Vec<Entry>,
    /// Present on GitLab Premium only.
    pub unprotect_access_levels: Option<Vec<Entry>>,
    pub allow_force_push: bool,
    pub code_owner_approval_required: bool,
}

impl Current {
    pub fn from_json(doc: &Json) -> Result<Self, String> {
        Self::deserialize(doc).map_err(|e| format!("unexpected protected branch: {e}"))
    }
}

/// The role level a list grants, or none when no role entry grants
/// anything (only named users, groups or deploy keys may act).
fn role_level(list: &[Entry], what: &str) -> Result<Option<Level>, String> {
    let mut loosest: Option<Level> = None;
    for entry in list.iter().filter(|e| !e.names_someone()) {
        let Some(value) = entry.access_level else {
            continue;
        };
        let level = Level::from_value(value).ok_or_else(|| {
            format!("the branch's {what} list has access level {value}, which this executor does not know")
        })?;
        loosest = Some(match loosest {
            Some(l) if !level.at_least_as_strict_as(l) => level,
            Some(l) => l,
            None => level,
        });
    }
    Ok(loosest)
}

/// Whether a list is at least as strict as `wanted`; a list that grants no
/// role anything is as strict as GitLab allows.
fn meets(have: Option<Level>, wanted: Level) -> bool {
    have.is_none_or(|h| h.at_least_as_strict_as(wanted))
}

/// What the protection had before it is recreated, so that a failed
/// re-protection can put it back.
#[derive(Debug, Clone, PartialEq)]
pub struct Previous {
    pub push: Level,
    pub merge: Level,
    pub allow_force_push: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// The branch is not protected: protect it.
    Protect,
    /// Push and merge are already at least as strict as asked.
    AlreadyStrict,
    /// Unprotect and protect again at the asked levels.
    Recreate(Previous),
    /// Recreating would lose or weaken something; the text says what.
    Refuse(String),
}

pub fn decide(current: Option<&Current>, push: Level, merge: Level) -> Result<Decision, String> {
    let Some(current) = current else {
        return Ok(Decision::Protect);
    };
    let have_push = role_level(&current.push_access_levels, "push")?;
    let have_merge = role_level(&current.merge_access_levels, "merge")?;
    if meets(have_push, push) && meets(have_merge, merge) {
        return Ok(Decision::AlreadyStrict);
    }
    let mut problems = Vec::new();
    for (parameter, have, wanted) in [
        ("push_access_level", have_push, push),
        ("merge_access_level", have_merge, merge),
    ] {
        let have = have.unwrap_or(Level::NoOne);
        if have != wanted && have.at_least_as_strict_as(wanted) {
            problems.push(format!(
                "{parameter}: the branch allows {} now, stricter than the {} asked; pass \
                 {parameter} {} to keep it",
                have.describe(),
                wanted.describe(),
                have.value()
            ));
        }
    }
    let named = current
        .push_access_levels
        .iter()
        .chain(&current.merge_access_levels)
        .any(Entry::names_someone);
    if named {
        problems.push(
            "the protection names users, groups or deploy keys, which protecting the branch \
             again would drop"
                .to_string(),
        );
    }
    if current.code_owner_approval_required {
        problems.push(
            "the protection requires code owner approval, which protecting the branch again \
             would drop"
                .to_string(),
        );
    }
    let default_unprotect = current.unprotect_access_levels.as_ref().is_none_or(|list| {
        list.iter()
            .all(|e| !e.names_someone() && e.access_level == Some(Level::Maintainer.value()))
    });
    if !default_unprotect {
        problems.push(
            "the protection sets who may unprotect it, which protecting the branch again would \
             reset to maintainers"
                .to_string(),
        );
    }
    if !problems.is_empty() {
        return Ok(Decision::Refuse(problems.join("; ")));
    }
    Ok(Decision::Recreate(Previous {
        push: have_push.unwrap_or(Level::NoOne),
        merge: have_merge.unwrap_or(Level::NoOne),
        allow_force_push: current.allow_force_push,
    }))
}

/// The body of `POST /projects/:id/protected_branches`, keys in the order
/// GitLab documents them.
#[derive(Debug, Serialize)]
struct ProtectBody<'a> {
    name: &'a str,
    push_access_level: i64,
    merge_access_level: i64,
    // GitLab's default is false; it is sent only to restore a branch that
    // allowed force pushes before.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    allow_force_push: bool,
}

/// The body as sent: compact JSON.
pub fn protect_body(branch: &str, push: Level, merge: Level, allow_force_push: bool) -> String {
    let body = ProtectBody {
        name: branch,
        push_access_level: push.value(),
        merge_access_level: merge.value(),
        allow_force_push,
    };
    // A struct of a string, numbers and a boolean always serialises; the
    // fallback keeps this total rather than trusting that.
    serde_json::to_string(&body).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn current(doc: &Json) -> Current {
        Current::from_json(doc).unwrap_or_default()
    }

    fn roles(levels: &[i64]) -> Json {
        Json::Array(
            levels
                .iter()
                .map(|l| json!({"id": 1, "access_level": l, "user_id": null, "group_id": null}))
                .collect(),
        )
    }

    #[test]
    fn strictness_puts_no_one_above_admin() {
        use Level::*;
        assert!(NoOne.at_least_as_strict_as(Admin));
        assert!(Admin.at_least_as_strict_as(Maintainer));
        assert!(Maintainer.at_least_as_strict_as(Developer));
        assert!(!Developer.at_least_as_strict_as(Maintainer));
        assert_eq!(Level::from_name("Maintainer"), Some(Maintainer));
        assert_eq!(Level::from_value(35), None);
    }

    #[test]
    fn the_loosest_role_entry_decides() {
        let c = current(
            &json!({"push_access_levels": roles(&[40, 30]), "merge_access_levels": roles(&[40])}),
        );
        assert_eq!(
            decide(Some(&c), Level::Maintainer, Level::Maintainer),
            Ok(Decision::Recreate(Previous {
                push: Level::Developer,
                merge: Level::Maintainer,
                allow_force_push: false
            }))
        );
    }

    #[test]
    fn same_or_stricter_levels_are_left_alone() {
        let c = current(
            &json!({"push_access_levels": roles(&[0]), "merge_access_levels": roles(&[40])}),
        );
        assert_eq!(
            decide(Some(&c), Level::Maintainer, Level::Maintainer),
            Ok(Decision::AlreadyStrict)
        );
        assert_eq!(
            decide(None, Level::Maintainer, Level::Maintainer),
            Ok(Decision::Protect)
        );
    }

    #[test]
    fn recreating_refuses_to_lower_the_other_list_or_drop_exceptions() {
        let c = current(&json!({
            "push_access_levels": roles(&[30]),
            "merge_access_levels": roles(&[0]),
            "code_owner_approval_required": true,
        }));
        let Ok(Decision::Refuse(why)) = decide(Some(&c), Level::Maintainer, Level::Maintainer)
        else {
            panic!("expected a refusal");
        };
        assert!(why.contains("merge_access_level 0"), "{why}");
        assert!(why.contains("code owner"), "{why}");

        let c = current(&json!({
            "push_access_levels": [{"access_level": 30}, {"access_level": 40, "user_id": 7}],
            "merge_access_levels": roles(&[40]),
        }));
        let decision = decide(Some(&c), Level::Maintainer, Level::Maintainer);
        assert!(
            matches!(&decision, Ok(Decision::Refuse(why)) if why.contains("users, groups or deploy keys")),
            "{decision:?}"
        );
    }

    #[test]
    fn an_unknown_level_is_an_error_not_a_guess() {
        let c = current(
            &json!({"push_access_levels": roles(&[35]), "merge_access_levels": roles(&[40])}),
        );
        assert!(decide(Some(&c), Level::Maintainer, Level::Maintainer).is_err());
    }

    #[test]
    fn body_follows_the_documented_shape() {
        assert_eq!(
            protect_body("main", Level::Maintainer, Level::Developer, false),
            r#"{"name":"main","push_access_level":40,"merge_access_level":30}"#
        );
        assert_eq!(
            protect_body("main", Level::Developer, Level::Developer, true),
            r#"{"name":"main","push_access_level":30,"merge_access_level":30,"allow_force_push":true}"#
        );
    }
}
