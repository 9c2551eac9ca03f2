//! Pushed SCIM changes: the host serves SCIM 2.0 for this connector
//! instance, stores each resource the identity provider writes, and hands
//! the connector the stored resource after every write.
//!
//! - `PUT /Users/{id}`: the account, as a sync would give it.
//! - `PUT /Groups/{id}`: the group, an edge from each member, and coverage
//!   of the group's incoming `MEMBER_OF` edges, so that members taken out
//!   are marked as no longer observed.
//! - `DELETE /Users/{id}`: the account is kept with `active: false` and
//!   `deprovisioned: true`. An identity provider deletes a user to offboard
//!   them; the twin keeps the person so that drift rules about access left
//!   behind still fire. Its group memberships are covered as gone.
//! - `DELETE /Groups/{id}`: the group and its memberships are covered as
//!   gone.
//!
//! Every batch is partial, like every push. A pushed resource is whole, so
//! each property the mapping could set but the resource lacks is sent as an
//! explicit null: the merge then removes what the provider dropped, as a
//! sync's replacement would.

use serde_json::Value as Json;

use org_mesh_plugin::connector::IncomingRequest;
use org_mesh_plugin::props::Props;
use org_mesh_plugin::types::{Batch, Coverage, PluginError};

use crate::config::{Config, Provider};
use crate::records;
use crate::scim;

/// The property a pushed deletion sets on the account it keeps.
pub const DEPROVISIONED: &str = "deprovisioned";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resource {
    Users,
    Groups,
}

/// The records for one pushed request. The answer is always 200 `{}`: the
/// host has already answered the identity provider from what it stored.
pub fn handle(req: &IncomingRequest) -> Result<Batch, PluginError> {
    let config = Config::parse(&req.config)?;
    let (resource, id) = route(&req.path).ok_or_else(|| {
        invalid(format!(
            "{} {}: not a SCIM resource path",
            req.method, req.path
        ))
    })?;
    let place = format!("{} {}", req.method, req.path);
    let body = parse_body(&place, &req.body)?;
    let provider = config.provider;
    match (req.method.as_str(), resource) {
        ("PUT", Resource::Users) => put_user(provider, &place, &id, body.as_ref()),
        ("PUT", Resource::Groups) => put_group(provider, &place, &id, body.as_ref()),
        ("DELETE", Resource::Users) => delete_user(provider, &place, &id, body.as_ref()),
        ("DELETE", Resource::Groups) => Ok(delete_group(provider, &id)),
        _ => Err(invalid(format!("{place}: only PUT and DELETE are pushed"))),
    }
}

fn invalid(message: String) -> PluginError {
    PluginError::InvalidInput(message)
}

/// `/Users/{id}` or `/Groups/{id}`, the query left out and the id
/// percent-decoded.
fn route(path: &str) -> Option<(Resource, String)> {
    let path = path.split(['?', '#']).next()?;
    let mut parts = path.trim_matches('/').split('/');
    let resource = match parts.next()? {
        "Users" => Resource::Users,
        "Groups" => Resource::Groups,
        _ => return None,
    };
    let id = percent_decode(parts.next()?)?;
    (parts.next().is_none() && !id.is_empty()).then_some((resource, id))
}

fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The stored resource; none for an empty body, which a deletion may have.
fn parse_body(place: &str, body: &[u8]) -> Result<Option<Json>, PluginError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| invalid(format!("{place}: the body is not JSON: {e}")))
}

fn required<'a>(place: &str, body: Option<&'a Json>) -> Result<&'a Json, PluginError> {
    body.ok_or_else(|| invalid(format!("{place}: the body holds no resource")))
}

/// The resource must be the one the path names: a mismatch means the host
/// forwarded the wrong document, and recording it would key it wrongly.
fn same_id(place: &str, path_id: &str, body_id: &str) -> Result<(), PluginError> {
    if path_id == body_id {
        Ok(())
    } else {
        Err(invalid(format!(
            "{place}: the body's id {body_id:?} is not the path's"
        )))
    }
}

fn partial(nodes: Vec<org_mesh_plugin::types::Node>, complete: Vec<Coverage>) -> Batch {
    Batch {
        nodes,
        edges: Vec::new(),
        complete,
        partial: true,
    }
}

fn put_user(
    provider: Provider,
    place: &str,
    id: &str,
    body: Option<&Json>,
) -> Result<Batch, PluginError> {
    let user = scim::resource_user(place, required(place, body)?)?;
    same_id(place, id, &user.id)?;
    let node = records::clear_missing(
        records::account(provider, &user),
        &records::ACCOUNT_PROPERTIES,
    );
    let node = records::clear_missing(node, &[DEPROVISIONED]);
    Ok(partial(vec![node], Vec::new()))
}

fn put_group(
    provider: Provider,
    place: &str,
    id: &str,
    body: Option<&Json>,
) -> Result<Batch, PluginError> {
    let group = scim::resource_group(place, required(place, body)?)?;
    same_id(place, id, &group.id)?;
    let to = records::group_ref(provider, &group.id);
    let node = records::clear_missing(records::group(provider, &group), &records::GROUP_PROPERTIES);
    let mut edges: Vec<org_mesh_plugin::types::Edge> = Vec::new();
    for member in &group.members {
        let from = records::pushed_member_ref(provider, member);
        if !edges
            .iter()
            .any(|e| e.from.label == from.label && e.from.key == from.key)
        {
            edges.push(records::member_of(from, to.clone()));
        }
    }
    Ok(Batch {
        nodes: vec![node],
        edges,
        complete: vec![Coverage::EdgesTo(("MEMBER_OF".into(), to))],
        partial: true,
    })
}

fn delete_user(
    provider: Provider,
    place: &str,
    id: &str,
    body: Option<&Json>,
) -> Result<Batch, PluginError> {
    let account = records::account_ref(provider, id);
    // The last stored user, when the host still had it, keeps the account's
    // other properties current; without it the flags alone are sent.
    let mut node = match body {
        Some(body) => {
            let user = scim::resource_user(place, body)?;
            same_id(place, id, &user.id)?;
            records::account(provider, &user)
        }
        None => org_mesh_plugin::types::Node {
            label: account.label.clone(),
            key: account.key.clone(),
            properties: Props::new().text("provider", provider.as_str()).build(),
        },
    };
    node.properties.retain(|(k, _)| k != "active");
    node.properties.extend(
        Props::new()
            .boolean("active", false)
            .boolean(DEPROVISIONED, true)
            .build(),
    );
    Ok(partial(
        vec![node],
        vec![Coverage::EdgesFrom(("MEMBER_OF".into(), account))],
    ))
}

fn delete_group(provider: Provider, id: &str) -> Batch {
    let group = records::group_ref(provider, id);
    partial(
        Vec::new(),
        vec![
            Coverage::Node(group.clone()),
            Coverage::EdgesTo(("MEMBER_OF".into(), group.clone())),
            // A nested group's own memberships end with it too.
            Coverage::EdgesFrom(("MEMBER_OF".into(), group)),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_take_the_id_and_drop_the_query() {
        assert_eq!(
            route("/Users/2819c223?attributes=userName"),
            Some((Resource::Users, "2819c223".into()))
        );
        assert_eq!(
            route("Groups/a%2Fb/"),
            Some((Resource::Groups, "a/b".into()))
        );
        assert_eq!(route("/Users"), None);
        assert_eq!(route("/Users/1/extra"), None);
        assert_eq!(route("/Schemas/x"), None);
        assert_eq!(route("/Users/%zz"), None);
    }
}
