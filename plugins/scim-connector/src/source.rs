//! Where the SCIM listings come from: a SCIM 2.0 service provider paged by
//! `startIndex` and `count`, or ListResponse files exported from the
//! identity provider and attached to the connector instance.
//!
//! Either way a listing is returned only when it is complete, since the
//! records built from it claim coverage.

use serde_json::Value as Json;

use org_mesh_plugin::connector::Attachment;
use org_mesh_plugin::rest::{Client, RestError, Transport};
use org_mesh_plugin::types::PluginError;

use crate::scim::list_page;

/// The raw resources of each listing; `groups` is `None` when the source
/// offers no groups.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub users: Vec<Json>,
    pub groups: Option<Vec<Json>>,
    pub notes: Vec<String>,
}

/// Enough for a million users at 100 a page; a server that never reaches
/// its own total is refused rather than paged forever.
const MAX_PAGES: usize = 10_000;

pub fn from_attachments(attachments: &[Attachment]) -> Result<Listing, PluginError> {
    let find = |name: &str| attachments.iter().find(|a| a.name == name);
    let Some(users) = find("users") else {
        let names: Vec<&str> = attachments.iter().map(|a| a.name.as_str()).collect();
        return Err(PluginError::InvalidConfig(format!(
            "url: not set, and no attachment is named \"users\" (attachments: {names:?})"
        )));
    };
    let users = whole_export("users", &users.content)?;
    let groups = match find("groups") {
        Some(groups) => Some(whole_export("groups", &groups.content)?),
        None => None,
    };
    Ok(Listing {
        users,
        groups,
        notes: Vec::new(),
    })
}

fn whole_export(name: &str, content: &[u8]) -> Result<Vec<Json>, PluginError> {
    let page = list_page(name, content)?;
    let held = page.resources.len();
    match page.total_results {
        Some(total) if total > held as u64 => Err(PluginError::InvalidInput(format!(
            "{name}: holds {held} of {total} resources; export every page into one file"
        ))),
        _ => Ok(page.resources),
    }
}

pub fn from_server<T: Transport>(api: &Client<T>, page_size: u32) -> Result<Listing, PluginError> {
    let users = read_all(api, "Users", page_size)?;
    let mut notes = Vec::new();
    let groups = match read_all(api, "Groups", page_size) {
        Ok(groups) => Some(groups),
        // A service provider without groups answers 404 or 501 there.
        Err(Unread::Rest(e)) if matches!(e.status(), Some(404 | 501)) => {
            notes.push(format!("The server offers no groups: {e}"));
            None
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Listing {
        users,
        groups,
        notes,
    })
}

/// Why a listing could not be read from the server: the server refused
/// (the caller may tolerate some statuses), or what it sent is unusable.
#[derive(Debug)]
enum Unread {
    Rest(RestError),
    Invalid(PluginError),
}

impl From<Unread> for PluginError {
    fn from(e: Unread) -> Self {
        match e {
            Unread::Rest(e) => e.into(),
            Unread::Invalid(e) => e,
        }
    }
}

fn read_all<T: Transport>(
    api: &Client<T>,
    resource: &str,
    page_size: u32,
) -> Result<Vec<Json>, Unread> {
    let mut items: Vec<Json> = Vec::new();
    let mut start: u64 = 1;
    for _ in 0..MAX_PAGES {
        let path = format!("/{resource}?startIndex={start}&count={page_size}");
        let reply = api.send("GET", &path, None).map_err(Unread::Rest)?;
        let page = list_page(&format!("{resource} from startIndex {start}"), &reply.body)
            .map_err(Unread::Invalid)?;
        let received = page.resources.len();
        items.extend(page.resources);
        let done = match page.total_results {
            Some(total) => items.len() as u64 >= total,
            // Without a total, a short page is the last one.
            None => received < page_size as usize,
        };
        if done {
            return Ok(items);
        }
        if received == 0 {
            return Err(Unread::Invalid(PluginError::Upstream(format!(
                "{resource}: the server stopped returning resources after {} of {}",
                items.len(),
                page.total_results.unwrap_or_default()
            ))));
        }
        start += received as u64;
    }
    Err(Unread::Invalid(PluginError::Upstream(format!(
        "{resource}: more than {MAX_PAGES} pages"
    ))))
}
