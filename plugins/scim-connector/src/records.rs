//! Turns SCIM users and groups into Account and Group nodes and their
//! `MEMBER_OF` edges, keyed `<provider>:<SCIM id>`.

use std::collections::BTreeSet;

use org_mesh_plugin::props::Props;
use org_mesh_plugin::types::{Batch, Coverage, Edge, Node, NodeRef, PluginError};

use crate::config::Provider;
use crate::scim::{self, Group, User};
use crate::source::Listing;

fn key(provider: Provider, id: &str) -> String {
    format!("{}:{id}", provider.as_str())
}

fn node_ref(label: &str, provider: Provider, id: &str) -> NodeRef {
    NodeRef {
        label: label.to_string(),
        key: key(provider, id),
    }
}

pub fn account_ref(provider: Provider, id: &str) -> NodeRef {
    node_ref("Account", provider, id)
}

pub fn group_ref(provider: Provider, id: &str) -> NodeRef {
    node_ref("Group", provider, id)
}

/// Every property [`account`] may set, so that a pushed user can clear the
/// ones its provider no longer sends; `deprovisioned` is set only by a push
/// of a deletion and cleared by any later push of the user.
pub const ACCOUNT_PROPERTIES: [&str; 12] = [
    "provider",
    "user_name",
    "email",
    "emails",
    "external_id",
    "active",
    "display_name",
    "given_name",
    "family_name",
    "employee_number",
    "department",
    "manager_id",
];

/// Every property [`group`] may set.
pub const GROUP_PROPERTIES: [&str; 3] = ["provider", "display_name", "external_id"];

/// Adds an explicit null for each listed property the node lacks, so that
/// a partial batch, which merges, still removes what the resource dropped.
pub fn clear_missing(mut node: Node, names: &[&str]) -> Node {
    for name in names {
        if !node.properties.iter().any(|(k, _)| k == name) {
            node.properties
                .push(((*name).to_string(), org_mesh_plugin::types::Value::Null));
        }
    }
    node
}

pub fn member_of(from: NodeRef, to: NodeRef) -> Edge {
    Edge {
        kind: "MEMBER_OF".into(),
        from,
        to,
        properties: Vec::new(),
    }
}

pub fn account(provider: Provider, user: &User) -> Node {
    let mut props = Props::new()
        .text("provider", provider.as_str())
        .text("user_name", &user.user_name)
        .opt_text("email", scim::preferred_email(&user.emails));
    if !user.emails.is_empty() {
        // Lower-cased like `email`, so that matching people by address does
        // not depend on how each provider capitalises it.
        let all = user
            .emails
            .iter()
            .map(|e| e.value.trim().to_lowercase())
            .collect();
        props = props.texts("emails", all);
    }
    props = props.opt_text("external_id", user.external_id.as_deref());
    if let Some(active) = user.active {
        props = props.boolean("active", active);
    }
    let props = props
        .opt_text("display_name", user.display_name.as_deref())
        .opt_text("given_name", user.given_name.as_deref())
        .opt_text("family_name", user.family_name.as_deref())
        .opt_text("employee_number", user.employee_number.as_deref())
        .opt_text("department", user.department.as_deref())
        .opt_text("manager_id", user.manager_id.as_deref());
    Node {
        label: "Account".into(),
        key: key(provider, &user.id),
        properties: props.build(),
    }
}

pub fn group(provider: Provider, group: &Group) -> Node {
    let props = Props::new()
        .text("provider", provider.as_str())
        .opt_text("display_name", group.display_name.as_deref())
        .opt_text("external_id", group.external_id.as_deref());
    Node {
        label: "Group".into(),
        key: key(provider, &group.id),
        properties: props.build(),
    }
}

/// The batch for a complete listing, and log lines about what was left out.
pub fn batch(provider: Provider, listing: &Listing) -> Result<(Batch, Vec<String>), PluginError> {
    let mut notes = listing.notes.clone();
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    let mut complete = vec![Coverage::Nodes("Account".into())];

    let mut user_ids = BTreeSet::new();
    for (index, resource) in listing.users.iter().enumerate() {
        let user = scim::user("users", index, resource)?;
        if !user_ids.insert(user.id.clone()) {
            return Err(PluginError::InvalidInput(format!(
                "users: Resources[{index}]: id {:?} appears twice",
                user.id
            )));
        }
        nodes.push(account(provider, &user));
    }

    let Some(resources) = &listing.groups else {
        return Ok((
            Batch {
                nodes,
                edges,
                complete,
                partial: false,
            },
            notes,
        ));
    };
    let mut groups = Vec::with_capacity(resources.len());
    let mut group_ids = BTreeSet::new();
    for (index, resource) in resources.iter().enumerate() {
        let group = scim::group("groups", index, resource)?;
        if !group_ids.insert(group.id.clone()) {
            return Err(PluginError::InvalidInput(format!(
                "groups: Resources[{index}]: id {:?} appears twice",
                group.id
            )));
        }
        groups.push(group);
    }
    complete.push(Coverage::Nodes("Group".into()));
    let mut unknown_members = 0;
    for group in &groups {
        nodes.push(self::group(provider, group));
        let to = node_ref("Group", provider, &group.id);
        let mut seen = BTreeSet::new();
        for member in &group.members {
            let Some(from) = member_ref(provider, member, &user_ids, &group_ids) else {
                unknown_members += 1;
                continue;
            };
            if seen.insert(from.key.clone()) {
                edges.push(member_of(from, to.clone()));
            }
        }
        complete.push(Coverage::EdgesTo(("MEMBER_OF".into(), to)));
    }
    if unknown_members > 0 {
        notes.push(format!(
            "Skipped {unknown_members} group memberships naming a user or group the listings do not hold"
        ));
    }
    Ok((
        Batch {
            nodes,
            edges,
            complete,
            partial: false,
        },
        notes,
    ))
}

/// A member of a pushed group, where no listing tells users from groups:
/// a group when the provider says so, else an account, since providers
/// that leave `type` out (Entra ID) push users only.
pub fn pushed_member_ref(provider: Provider, member: &scim::Member) -> NodeRef {
    match member.kind.as_deref() {
        Some(kind) if kind.eq_ignore_ascii_case("group") => {
            node_ref("Group", provider, &member.value)
        }
        _ => node_ref("Account", provider, &member.value),
    }
}

/// The member's own node: a nested group when the provider says so (or the
/// id is only a group's), an account when it is a listed user. A member in
/// neither listing is left out: an edge to a node the twin never saw would
/// dangle.
fn member_ref(
    provider: Provider,
    member: &scim::Member,
    users: &BTreeSet<String>,
    groups: &BTreeSet<String>,
) -> Option<NodeRef> {
    let said = member.kind.as_deref().map(str::to_ascii_lowercase);
    let is_group = match said.as_deref() {
        Some("group") => true,
        Some("user") => false,
        _ => !users.contains(&member.value) && groups.contains(&member.value),
    };
    if is_group && groups.contains(&member.value) {
        Some(node_ref("Group", provider, &member.value))
    } else if !is_group && users.contains(&member.value) {
        Some(node_ref("Account", provider, &member.value))
    } else {
        None
    }
}
