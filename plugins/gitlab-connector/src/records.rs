//! GitLab's users, groups and projects as the twin's nodes and edges.
//!
//! Keys carry the provider: `gitlab:<username>` for accounts,
//! `gitlab:<full path>` for groups and `gitlab:<path with namespace>` for
//! projects, which are labelled `Repository` like GitHub's. Memberships are
//! `MEMBER_OF` (account to group, and subgroup to parent group) and
//! project access `HAS_PERMISSION` (account to project), each with a
//! `role` in GitLab's own words.

use org_mesh_plugin::props::Props;
use org_mesh_plugin::types::{Edge, Node, NodeRef, Properties};

pub const PROVIDER: &str = "gitlab";

/// The address GitLab writes in place of an email a user keeps private.
pub const REDACTED: &str = "[REDACTED]";

fn node_ref(label: &str, path: &str) -> NodeRef {
    NodeRef {
        label: label.to_string(),
        key: format!("{PROVIDER}:{path}"),
    }
}

pub fn account_ref(username: &str) -> NodeRef {
    node_ref("Account", username)
}

pub fn group_ref(full_path: &str) -> NodeRef {
    node_ref("Group", full_path)
}

pub fn project_ref(path_with_namespace: &str) -> NodeRef {
    node_ref("Repository", path_with_namespace)
}

pub fn node(reference: NodeRef, properties: Properties) -> Node {
    Node {
        label: reference.label,
        key: reference.key,
        properties,
    }
}

/// The properties every node starts with: the provider, and the GitLab
/// it came from, since keys do not carry the instance.
pub fn base(instance: &str) -> Props {
    Props::new()
        .text("provider", PROVIDER)
        .text("instance", instance)
}

/// An email worth matching people by: not GitLab's `[REDACTED]` stand-in,
/// and shaped like an address. Lower-cased as the other connectors do.
pub fn usable_email(email: Option<&str>) -> Option<String> {
    let email = email?.trim();
    (email != REDACTED && email.contains('@')).then(|| email.to_lowercase())
}

/// GitLab's access levels, by number or by name, in the role words GitLab's
/// own interface uses.
pub fn access_role(level: &serde_json::Value) -> Option<String> {
    if let Some(number) = level.as_i64() {
        let name = match number {
            0 => "no_access",
            5 => "minimal_access",
            10 => "guest",
            15 => "planner",
            20 => "reporter",
            30 => "developer",
            40 => "maintainer",
            50 => "owner",
            _ => return Some(number.to_string()),
        };
        return Some(name.to_string());
    }
    let name = level.as_str()?.trim();
    (!name.is_empty()).then(|| name.to_lowercase().replace(' ', "_"))
}

pub fn edge(kind: &str, from: NodeRef, to: NodeRef, role: Option<String>) -> Edge {
    Edge {
        kind: kind.to_string(),
        from,
        to,
        properties: Props::new().opt_text("role", role).build(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn access_levels_by_number_and_name() {
        assert_eq!(access_role(&json!(10)).as_deref(), Some("guest"));
        assert_eq!(access_role(&json!(50)).as_deref(), Some("owner"));
        assert_eq!(
            access_role(&json!("Maintainer")).as_deref(),
            Some("maintainer")
        );
        assert_eq!(
            access_role(&json!("Minimal Access")).as_deref(),
            Some("minimal_access")
        );
        assert_eq!(access_role(&json!(null)), None);
    }

    #[test]
    fn redacted_and_malformed_emails_are_not_kept() {
        assert_eq!(usable_email(Some(REDACTED)), None);
        assert_eq!(usable_email(Some("")), None);
        assert_eq!(usable_email(None), None);
        assert_eq!(usable_email(Some("A@B.test")).as_deref(), Some("a@b.test"));
    }
}
