//! The actions this executor carries out, read from an action's
//! parameters. Parameters are checked strictly: an unknown name or a wrong
//! type is refused rather than ignored, since a typo in a remedy must not
//! silently change what gets applied.

use org_mesh_plugin::props::required_text as text;
use org_mesh_plugin::types::{PluginError, Properties, Value};

use crate::protection::Level;

pub const BLOCK_USER: &str = "gitlab.block-user";
pub const REMOVE_MEMBER: &str = "gitlab.remove-member";
pub const PROTECT_BRANCH: &str = "gitlab.protect-branch";

/// A GitLab user, by numeric id or by username. Most endpoints take the
/// id only, so a username costs one lookup first.
#[derive(Debug, Clone, PartialEq)]
pub enum User {
    Id(i64),
    Username(String),
}

impl User {
    pub fn describe(&self) -> String {
        match self {
            Self::Id(id) => format!("user {id}"),
            Self::Username(name) => name.clone(),
        }
    }
}

/// Where a membership lives. The value is what GitLab's `:id` takes: a
/// numeric id or a full path such as `acme/platform`.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Group(String),
    Project(String),
}

impl Source {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Group(_) => "group",
            Self::Project(_) => "project",
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Self::Group(id) | Self::Project(id) => id,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    BlockUser {
        user: User,
    },
    RemoveMember {
        source: Source,
        user: User,
    },
    ProtectBranch {
        /// A numeric id or `namespace/name`.
        project: String,
        branch: String,
        push: Level,
        merge: Level,
    },
}

fn invalid(message: String) -> PluginError {
    PluginError::InvalidInput(message)
}

fn positive(name: &str, value: &Value) -> Result<i64, PluginError> {
    match value {
        Value::Integer(n) if *n > 0 => Ok(*n),
        other => Err(invalid(format!(
            "parameter {name}: {other:?} is not a positive integer"
        ))),
    }
}

/// A group or project: its numeric id, or its full path. A path with an
/// empty segment would address another resource once encoded, so it is
/// refused.
fn namespace_id(name: &str, value: &Value) -> Result<String, PluginError> {
    let id = match value {
        Value::Integer(_) => positive(name, value)?.to_string(),
        _ => text(name, value)?,
    };
    if id.split('/').any(|segment| segment.trim().is_empty()) {
        return Err(invalid(format!(
            "parameter {name}: {id:?} is not a numeric id or a full path such as acme/platform"
        )));
    }
    Ok(id)
}

fn level(name: &str, value: &Value) -> Result<Level, PluginError> {
    let found = match value {
        Value::Integer(n) => Level::from_value(*n),
        Value::Text(s) => Level::from_name(s),
        _ => None,
    };
    found.ok_or_else(|| {
        invalid(format!(
            "parameter {name}: {value:?} is not an access level: 0 (no one), 30 (developer), \
             40 (maintainer) or 60 (admin), or one of those words"
        ))
    })
}

fn required<T>(found: Option<T>, kind: &str, name: &str) -> Result<T, PluginError> {
    found.ok_or_else(|| invalid(format!("{kind} needs the parameter {name}")))
}

fn unknown(kind: &str, name: &str) -> PluginError {
    invalid(format!("{kind} has no parameter {name}"))
}

/// Exactly one of `user_id` and `username`.
fn user(kind: &str, id: Option<i64>, username: Option<String>) -> Result<User, PluginError> {
    match (id, username) {
        (Some(id), None) => Ok(User::Id(id)),
        (None, Some(name)) => Ok(User::Username(name)),
        (Some(_), Some(_)) => Err(invalid(format!(
            "{kind} takes user_id or username, not both"
        ))),
        (None, None) => Err(invalid(format!(
            "{kind} needs the parameter user_id or username"
        ))),
    }
}

impl Action {
    pub fn parse(kind: &str, parameters: &Properties) -> Result<Self, PluginError> {
        match kind {
            BLOCK_USER => block_user(parameters),
            REMOVE_MEMBER => remove_member(parameters),
            PROTECT_BRANCH => protect_branch(parameters),
            other => Err(invalid(format!(
                "action {other:?} is not one this executor handles ({BLOCK_USER}, \
                 {REMOVE_MEMBER}, {PROTECT_BRANCH})"
            ))),
        }
    }
}

fn block_user(parameters: &Properties) -> Result<Action, PluginError> {
    let (mut id, mut username) = (None, None);
    for (name, value) in parameters {
        match name.as_str() {
            "user_id" => id = Some(positive(name, value)?),
            "username" => username = Some(text(name, value)?),
            other => return Err(unknown(BLOCK_USER, other)),
        }
    }
    Ok(Action::BlockUser {
        user: user(BLOCK_USER, id, username)?,
    })
}

fn remove_member(parameters: &Properties) -> Result<Action, PluginError> {
    let (mut id, mut username, mut group, mut project) = (None, None, None, None);
    for (name, value) in parameters {
        match name.as_str() {
            "user_id" => id = Some(positive(name, value)?),
            "username" => username = Some(text(name, value)?),
            "group" => group = Some(namespace_id(name, value)?),
            "project" => project = Some(namespace_id(name, value)?),
            other => return Err(unknown(REMOVE_MEMBER, other)),
        }
    }
    let source = match (group, project) {
        (Some(group), None) => Source::Group(group),
        (None, Some(project)) => Source::Project(project),
        (Some(_), Some(_)) => {
            return Err(invalid(format!(
                "{REMOVE_MEMBER} takes group or project, not both"
            )));
        }
        (None, None) => {
            return Err(invalid(format!(
                "{REMOVE_MEMBER} needs the parameter group or project"
            )));
        }
    };
    Ok(Action::RemoveMember {
        source,
        user: user(REMOVE_MEMBER, id, username)?,
    })
}

fn protect_branch(parameters: &Properties) -> Result<Action, PluginError> {
    let (mut project, mut branch, mut push, mut merge) = (None, None, None, None);
    for (name, value) in parameters {
        match name.as_str() {
            "project" => project = Some(namespace_id(name, value)?),
            "branch" => branch = Some(text(name, value)?),
            "push_access_level" => push = Some(level(name, value)?),
            "merge_access_level" => merge = Some(level(name, value)?),
            other => return Err(unknown(PROTECT_BRANCH, other)),
        }
    }
    Ok(Action::ProtectBranch {
        project: required(project, PROTECT_BRANCH, "project")?,
        branch: required(branch, PROTECT_BRANCH, "branch")?,
        // GitLab's own defaults when a protection is created without them.
        push: push.unwrap_or(Level::Maintainer),
        merge: merge.unwrap_or(Level::Maintainer),
    })
}

#[cfg(test)]
mod tests {
    use org_mesh_plugin::props::Props;

    use super::*;

    fn refused(kind: &str, props: Props) -> String {
        match Action::parse(kind, &props.build()) {
            Err(PluginError::InvalidInput(m)) => m,
            other => format!("not refused: {other:?}"),
        }
    }

    #[test]
    fn a_user_is_named_by_exactly_one_of_id_and_username() {
        assert_eq!(
            Action::parse(BLOCK_USER, &Props::new().integer("user_id", 42).build()).ok(),
            Some(Action::BlockUser { user: User::Id(42) })
        );
        assert!(
            refused(
                BLOCK_USER,
                Props::new().integer("user_id", 42).text("username", "jdoe")
            )
            .contains("not both")
        );
        assert!(refused(BLOCK_USER, Props::new()).contains("user_id or username"));
        assert!(refused(BLOCK_USER, Props::new().integer("user_id", 0)).contains("user_id"));
        assert!(refused(BLOCK_USER, Props::new().text("login", "jdoe")).contains("login"));
    }

    #[test]
    fn a_membership_is_in_a_group_or_a_project() {
        let parsed = Action::parse(
            REMOVE_MEMBER,
            &Props::new()
                .integer("project", 7)
                .text("username", "jdoe")
                .build(),
        );
        assert_eq!(
            parsed.ok(),
            Some(Action::RemoveMember {
                source: Source::Project("7".into()),
                user: User::Username("jdoe".into())
            })
        );
        assert!(
            refused(
                REMOVE_MEMBER,
                Props::new().text("group", "acme/").integer("user_id", 1)
            )
            .contains("parameter group")
        );
        assert!(
            refused(
                REMOVE_MEMBER,
                Props::new()
                    .text("group", "a")
                    .text("project", "a/b")
                    .integer("user_id", 1)
            )
            .contains("not both")
        );
        assert!(
            refused(REMOVE_MEMBER, Props::new().integer("user_id", 1)).contains("group or project")
        );
    }

    #[test]
    fn levels_are_numbers_or_words_gitlab_knows() {
        let parsed = Action::parse(
            PROTECT_BRANCH,
            &Props::new()
                .text("project", "acme/api")
                .text("branch", "main")
                .text("push_access_level", "no_access")
                .integer("merge_access_level", 30)
                .build(),
        );
        assert_eq!(
            parsed.ok(),
            Some(Action::ProtectBranch {
                project: "acme/api".into(),
                branch: "main".into(),
                push: Level::NoOne,
                merge: Level::Developer
            })
        );
        let base = || {
            Props::new()
                .text("project", "acme/api")
                .text("branch", "main")
        };
        assert!(
            refused(PROTECT_BRANCH, base().integer("push_access_level", 35))
                .contains("parameter push_access_level")
        );
        assert!(
            refused(PROTECT_BRANCH, base().boolean("merge_access_level", true))
                .contains("parameter merge_access_level")
        );
        assert!(
            refused(PROTECT_BRANCH, Props::new().text("project", "acme/api"))
                .ends_with("parameter branch")
        );
        assert!(refused("gitlab.delete-project", Props::new()).contains("not one"));
    }
}
