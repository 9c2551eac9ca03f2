//! GitLab hook deliveries turned into partial batches.
//!
//! The host has already checked the hook's token. The kind of delivery is
//! in `X-Gitlab-Event`; what happened is in the body's `event_name` (member,
//! subgroup and system hooks) or `object_kind` (notes, merge requests and
//! pushes). System hooks repeat the member events under the same names, so
//! both routes share one mapping. Anything else is acknowledged with 202 and
//! no records; a mapped event whose body lacks a field it needs is refused,
//! naming the event and the field.

use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

use org_mesh_plugin::connector::IncomingRequest;
use org_mesh_plugin::rest::header;
use org_mesh_plugin::types::{Batch, Coverage, Edge, Node, NodeRef, PluginError};

use crate::messages;
use crate::records::{self, account_ref, group_ref, project_ref};

/// The operator's configuration for one GitLab connector instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The GitLab's host name, recorded on every node.
    pub instance: String,
    /// Whether notes, issue and merge request descriptions and commit
    /// messages are recorded as `Message` nodes.
    #[serde(default = "default_messages")]
    pub messages: bool,
}

fn default_messages() -> bool {
    true
}

impl Config {
    pub fn parse(json: &str) -> Result<Self, PluginError> {
        let config: Self = serde_json::from_str(json)
            .map_err(|e| PluginError::InvalidConfig(format!("config: {e}")))?;
        if config.instance.trim().is_empty() {
            return Err(PluginError::InvalidConfig(
                "instance: must not be empty".into(),
            ));
        }
        Ok(config)
    }
}

/// The answer for GitLab, the records, and one debug log line.
#[derive(Debug)]
pub struct Handled {
    pub status: u16,
    pub body: String,
    pub batch: Batch,
    pub log: (String, Vec<(String, String)>),
}

/// The `X-Gitlab-Event` values whose deliveries may be mapped.
pub const HOOKS: [&str; 8] = [
    "Member Hook",
    "Subgroup Hook",
    "System Hook",
    "Note Hook",
    "Issue Hook",
    "Merge Request Hook",
    "Push Hook",
    "Tag Push Hook",
];

/// One delivery's body, read field by field.
pub(crate) struct Hook<'a> {
    what: String,
    body: &'a Map<String, Json>,
    pub(crate) instance: &'a str,
}

impl Hook<'_> {
    pub(crate) fn error(&self, field: &str, problem: &str) -> PluginError {
        PluginError::InvalidInput(format!("{}: {field} {problem}", self.what))
    }

    pub(crate) fn at(&self, path: &str) -> Option<&Json> {
        let mut value = self.body.get(path.split('.').next()?)?;
        for part in path.split('.').skip(1) {
            value = value.get(part)?;
        }
        (!value.is_null()).then_some(value)
    }

    pub(crate) fn opt_text(&self, path: &str) -> Option<&str> {
        self.at(path)
            .and_then(Json::as_str)
            .filter(|s| !s.is_empty())
    }

    pub(crate) fn text(&self, path: &str) -> Result<&str, PluginError> {
        match self.at(path) {
            Some(Json::String(s)) if !s.is_empty() => Ok(s),
            Some(Json::String(_)) => Err(self.error(path, "is empty")),
            Some(_) => Err(self.error(path, "is not a string")),
            None => Err(self.error(path, "is missing")),
        }
    }

    pub(crate) fn opt_id(&self, path: &str) -> Option<i64> {
        self.at(path).and_then(Json::as_i64)
    }
}

/// Where a payload keeps a user's fields: membership and push hooks prefix
/// them with `user_`, user system hooks do not, notes and merge requests
/// nest them in `user`.
struct UserFields {
    username: &'static str,
    id: &'static str,
    name: &'static str,
    email: &'static str,
}

const MEMBER_USER: UserFields = UserFields {
    username: "user_username",
    id: "user_id",
    name: "user_name",
    email: "user_email",
};

const SYSTEM_USER: UserFields = UserFields {
    username: "username",
    id: "user_id",
    name: "name",
    email: "email",
};

const NESTED_USER: UserFields = UserFields {
    username: "user.username",
    id: "user.id",
    name: "user.name",
    email: "user.email",
};

#[derive(Default)]
pub(crate) struct Out {
    pub(crate) nodes: Vec<Node>,
    pub(crate) edges: Vec<Edge>,
    complete: Vec<Coverage>,
}

impl Out {
    pub(crate) fn gone(&mut self, reference: NodeRef) {
        self.complete.push(Coverage::Node(reference));
    }

    fn gone_edge(&mut self, kind: &str, from: NodeRef, to: NodeRef) {
        self.complete
            .push(Coverage::Edge((kind.to_string(), from, to)));
    }
}

pub fn handle(req: &IncomingRequest) -> Result<Handled, PluginError> {
    let config = Config::parse(&req.config)?;
    let event = header(&req.headers, "x-gitlab-event").ok_or_else(|| {
        PluginError::InvalidInput(
            "x-gitlab-event: the header is missing; is this a GitLab hook delivery?".into(),
        )
    })?;
    if !HOOKS.contains(&event) {
        return Ok(ignored(event, "a hook this connector does not map"));
    }
    let json: Json = serde_json::from_slice(&req.body)
        .map_err(|e| PluginError::InvalidInput(format!("{event}: the body is not JSON: {e}")))?;
    let Json::Object(body) = &json else {
        return Err(PluginError::InvalidInput(format!(
            "{event}: the body is not a JSON object"
        )));
    };
    let name = ["event_name", "object_kind"]
        .into_iter()
        .find_map(|field| body.get(field).and_then(Json::as_str))
        .unwrap_or_default();
    let hook = Hook {
        what: format!("{event} {name}").trim_end().to_string(),
        body,
        instance: &config.instance,
    };
    let mut out = Out::default();
    let mapped = map(&hook, name, config.messages, &mut out)?;
    if !mapped {
        return Ok(ignored(&hook.what, "an event this connector does not map"));
    }
    Ok(recorded(&hook.what, out))
}

/// Adds the event's records; false when the event is not one this version
/// maps.
fn map(hook: &Hook, name: &str, record_text: bool, out: &mut Out) -> Result<bool, PluginError> {
    match name {
        "user_add_to_group" | "user_update_for_group" => group_member(hook, out, true)?,
        "user_remove_from_group" => group_member(hook, out, false)?,
        "user_add_to_team" | "user_update_for_team" => project_member(hook, out, true)?,
        "user_remove_from_team" => project_member(hook, out, false)?,
        "subgroup_create" => subgroup(hook, out, true)?,
        "subgroup_destroy" => subgroup(hook, out, false)?,
        "group_create" | "group_rename" => {
            let full_path = group_path(hook)?;
            out.nodes
                .push(group_node(hook, full_path, "group_id", "name"));
            if let Some(old) = hook
                .opt_text("old_full_path")
                .filter(|old| *old != full_path)
            {
                out.gone(group_ref(old));
            }
        }
        "group_destroy" => out.gone(group_ref(group_path(hook)?)),
        "project_create" | "project_update" | "project_rename" | "project_transfer" => {
            let path = hook.text("path_with_namespace")?;
            out.nodes
                .push(project_node(hook, path, "project_id", "name"));
            if let Some(old) = hook
                .opt_text("old_path_with_namespace")
                .filter(|old| *old != path)
            {
                out.gone(project_ref(old));
            }
        }
        "project_destroy" => out.gone(project_ref(hook.text("path_with_namespace")?)),
        "user_create" | "user_rename" => {
            let username = add_account(hook, out, &SYSTEM_USER)?;
            if let Some(old) = hook.opt_text("old_username").filter(|old| *old != username) {
                out.gone(account_ref(old));
            }
        }
        "user_destroy" => out.gone(account_ref(hook.text("username")?)),
        // Keys are not modelled yet; the hook still names a live account.
        "key_create" | "key_destroy" => {
            let username = hook.text("username")?;
            let props = records::base(hook.instance).text("username", username);
            out.nodes
                .push(records::node(account_ref(username), props.build()));
        }
        // Notes, issues, merge requests and pushes: who acted, where, and
        // what they wrote, unless the operator turned text off.
        "note" | "issue" | "merge_request" => {
            let author = add_account(hook, out, &NESTED_USER)?;
            add_event_project(hook, out)?;
            if record_text {
                messages::record(hook, name, author, out)?;
            }
        }
        "push" | "tag_push" => {
            // Older system hooks name the pusher by display name and id
            // only, which cannot key an account; the project is kept.
            let pusher = match hook.at(MEMBER_USER.username) {
                Some(_) => Some(add_account(hook, out, &MEMBER_USER)?),
                None => None,
            };
            add_event_project(hook, out)?;
            if let (true, "push", Some(pusher)) = (record_text, name, pusher) {
                messages::commits(hook, pusher, out)?;
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn recorded(what: &str, out: Out) -> Handled {
    let fields = vec![
        ("event".to_string(), what.to_string()),
        ("nodes".to_string(), out.nodes.len().to_string()),
        ("edges".to_string(), out.edges.len().to_string()),
        ("covered".to_string(), out.complete.len().to_string()),
    ];
    Handled {
        status: 202,
        body: json!({"event": what, "recorded": true}).to_string(),
        batch: Batch {
            nodes: out.nodes,
            edges: out.edges,
            complete: out.complete,
            partial: true,
        },
        log: ("Mapped a GitLab hook delivery".into(), fields),
    }
}

fn ignored(what: &str, reason: &str) -> Handled {
    Handled {
        status: 202,
        body: json!({"event": what, "recorded": false, "reason": reason}).to_string(),
        batch: Batch {
            nodes: Vec::new(),
            edges: Vec::new(),
            complete: Vec::new(),
            partial: true,
        },
        log: (
            "Ignored a GitLab hook delivery".into(),
            vec![
                ("event".to_string(), what.to_string()),
                ("reason".to_string(), reason.to_string()),
            ],
        ),
    }
}

/// Adds the account the fields name and returns its username.
fn add_account<'a>(
    hook: &'a Hook,
    out: &mut Out,
    fields: &UserFields,
) -> Result<&'a str, PluginError> {
    let username = hook.text(fields.username)?;
    let mut props = records::base(hook.instance).text("username", username);
    if let Some(id) = hook.opt_id(fields.id) {
        props = props.integer("id", id);
    }
    let props = props
        .opt_text("name", hook.opt_text(fields.name))
        .opt_text("email", records::usable_email(hook.opt_text(fields.email)));
    out.nodes
        .push(records::node(account_ref(username), props.build()));
    Ok(username)
}

/// A group's full path. Older GitLab versions send only `path`, which is
/// the full path of a top-level group; membership hooks name the group by
/// `group_path` and, where GitLab sends it, `group_full_path`.
fn group_path<'a>(hook: &'a Hook) -> Result<&'a str, PluginError> {
    hook.opt_text("full_path")
        .map_or_else(|| hook.text("path"), Ok)
}

fn group_node(hook: &Hook, full_path: &str, id: &str, name: &str) -> Node {
    let mut props = records::base(hook.instance).text("full_path", full_path);
    if let Some(id) = hook.opt_id(id) {
        props = props.integer("id", id);
    }
    let props = props.opt_text("name", hook.opt_text(name));
    records::node(group_ref(full_path), props.build())
}

fn project_node(hook: &Hook, path: &str, id: &str, name: &str) -> Node {
    let mut props = records::base(hook.instance)
        .text("full_name", path)
        .opt_text("name", hook.opt_text(name));
    if let Some(id) = hook.opt_id(id) {
        props = props.integer("id", id);
    }
    // System hooks write the visibility as `private` or, for some events,
    // `visibilitylevel|private`.
    let visibility = hook
        .opt_text("project_visibility")
        .map(|v| v.rsplit('|').next().unwrap_or(v).to_string());
    records::node(
        project_ref(path),
        props.opt_text("visibility", visibility).build(),
    )
}

fn group_member(hook: &Hook, out: &mut Out, present: bool) -> Result<(), PluginError> {
    let username = add_account(hook, out, &MEMBER_USER)?;
    let full_path = match hook.opt_text("group_full_path") {
        Some(path) => path,
        None => hook.text("group_path")?,
    };
    out.nodes
        .push(group_node(hook, full_path, "group_id", "group_name"));
    let (from, to) = (account_ref(username), group_ref(full_path));
    if present {
        let role = hook.at("group_access").and_then(records::access_role);
        out.edges.push(records::edge("MEMBER_OF", from, to, role));
    } else {
        out.gone_edge("MEMBER_OF", from, to);
    }
    Ok(())
}

fn project_member(hook: &Hook, out: &mut Out, present: bool) -> Result<(), PluginError> {
    let username = add_account(hook, out, &MEMBER_USER)?;
    let path = hook.text("project_path_with_namespace")?;
    out.nodes
        .push(project_node(hook, path, "project_id", "project_name"));
    let (from, to) = (account_ref(username), project_ref(path));
    if present {
        // `access_level` in system hooks, `project_access` in older ones.
        let role = hook
            .at("access_level")
            .or_else(|| hook.at("project_access"))
            .and_then(records::access_role);
        out.edges
            .push(records::edge("HAS_PERMISSION", from, to, role));
    } else {
        out.gone_edge("HAS_PERMISSION", from, to);
    }
    Ok(())
}

/// A subgroup and its place in its parent, as a `MEMBER_OF` edge from the
/// subgroup, the way nested groups are recorded from SCIM too.
fn subgroup(hook: &Hook, out: &mut Out, present: bool) -> Result<(), PluginError> {
    let full_path = hook.text("full_path")?;
    let parent = hook.opt_text("parent_full_path");
    if present {
        out.nodes
            .push(group_node(hook, full_path, "group_id", "name"));
        if let Some(parent) = parent {
            let to = group_ref(parent);
            out.nodes
                .push(group_node(hook, parent, "parent_group_id", "parent_name"));
            out.edges
                .push(records::edge("MEMBER_OF", group_ref(full_path), to, None));
        }
    } else {
        out.gone(group_ref(full_path));
        if let Some(parent) = parent {
            out.gone_edge("MEMBER_OF", group_ref(full_path), group_ref(parent));
        }
    }
    Ok(())
}

/// The project a note, merge request or push happened in.
fn add_event_project(hook: &Hook, out: &mut Out) -> Result<(), PluginError> {
    let path = hook.text("project.path_with_namespace")?;
    let mut props = records::base(hook.instance)
        .text("full_name", path)
        .opt_text("name", hook.opt_text("project.name"))
        .opt_text("default_branch", hook.opt_text("project.default_branch"));
    if let Some(id) = hook.opt_id("project.id") {
        props = props.integer("id", id);
    }
    let visibility = match hook.opt_id("project.visibility_level") {
        Some(0) => Some("private"),
        Some(10) => Some("internal"),
        Some(20) => Some("public"),
        _ => None,
    };
    let props = props.opt_text("visibility", visibility);
    out.nodes
        .push(records::node(project_ref(path), props.build()));
    Ok(())
}
