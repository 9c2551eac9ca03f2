//! The SCIM operations, independent of HTTP: validation, uniqueness, `meta`,
//! storage and the sink notification.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{ScimError, ScimType};
use crate::filter::{CompareOp, Filter};
use crate::project::Projection;
use crate::repository::{ScimRepository, StoredResource};
use crate::schema::{LIST_SCHEMA, MAX_RESULTS, key_of};
use crate::{ResourceKind, ScimSink, filter, patch, resource};

/// The default largest request body, in bytes.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// One connector's credentials: the bearer token its identity provider
/// presents, already read from wherever it is kept.
#[derive(Clone)]
pub struct Endpoint {
    pub token: String,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("token", &"<redacted>")
            .finish()
    }
}

/// The SCIM service provider: one repository and sink shared by every
/// connector, each connector served under `/scim/v2/{connector}` with its
/// own token.
///
/// After each write the resource is stored first, noted as unsent in the
/// same write, and then handed to the sink, after which the note goes. If
/// the sink fails, or the process dies in between, the note stays and
/// [`ScimService::hand_over_unsent`] hands the change over later: an
/// identity provider's retry alone would not, since a retried PATCH changes
/// nothing and a retried creation finds the user. A sink failure is
/// answered with a 503 SCIM error naming the problem.
///
/// Lists, filters and uniqueness checks read every resource of one kind of
/// one connector from the repository and work in memory: fine for the tens
/// of thousands of accounts an organisation has, but each request costs a
/// full scan, so a repository-side index is the fix if that grows.
#[derive(Debug)]
pub struct ScimService {
    repo: Arc<dyn ScimRepository>,
    sink: Arc<dyn ScimSink>,
    endpoints: BTreeMap<String, Endpoint>,
    base_url: Option<String>,
    body_limit: usize,
    /// Serialises writes so a uniqueness check and the write it guards see
    /// the same state.
    writes: tokio::sync::Mutex<()>,
}

/// The request a service call answers: which connector, and the URL prefix
/// its resources are located under.
#[derive(Debug, Clone)]
pub struct Context {
    pub connector: String,
    pub base: String,
}

/// The paging and projection of a list or search.
#[derive(Debug, Default)]
pub struct ListQuery {
    pub filter: Option<String>,
    pub start_index: Option<i64>,
    pub count: Option<i64>,
    pub projection: Projection,
}

impl ScimService {
    pub fn new(
        repo: Arc<dyn ScimRepository>,
        sink: Arc<dyn ScimSink>,
        endpoints: BTreeMap<String, Endpoint>,
    ) -> Self {
        Self {
            repo,
            sink,
            endpoints,
            base_url: None,
            body_limit: DEFAULT_BODY_LIMIT,
            writes: tokio::sync::Mutex::new(()),
        }
    }

    /// Sets the public URL org-mesh is reached at (such as
    /// `https://org-mesh.example.com`), used in `meta.location`. Without
    /// it, locations are built from the request's `Host` header.
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = Some(base_url.into().trim_end_matches('/').to_owned());
        self
    }

    /// Sets the largest request body accepted, in bytes.
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    pub fn body_limit(&self) -> usize {
        self.body_limit
    }

    /// Checks that `connector` exists and that `authorization` carries its
    /// token; returns the context the other calls take.
    pub fn authorize(
        &self,
        connector: &str,
        authorization: Option<&str>,
        host: Option<&str>,
    ) -> Result<Context, ScimError> {
        let endpoint = self
            .endpoints
            .get(connector)
            .ok_or_else(|| ScimError::NotFound(format!("no SCIM connector named {connector:?}")))?;
        let presented = authorization
            .and_then(|h| h.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        let Some(presented) = presented else {
            return Err(ScimError::Unauthorized(
                "a bearer token is required".to_owned(),
            ));
        };
        if !tokens_match(&endpoint.token, presented) {
            tracing::warn!(connector, "SCIM request with a wrong bearer token");
            return Err(ScimError::Unauthorized(
                "the bearer token is not valid".to_owned(),
            ));
        }
        let origin = match (&self.base_url, host) {
            (Some(base), _) => base.clone(),
            (None, Some(host)) => format!("http://{host}"),
            (None, None) => String::new(),
        };
        Ok(Context {
            connector: connector.to_owned(),
            base: format!("{origin}/scim/v2/{connector}"),
        })
    }

    #[tracing::instrument(name = "org_mesh.scim.create", skip_all, fields(connector = %ctx.connector, kind = kind.name()))]
    pub async fn create(
        &self,
        ctx: &Context,
        kind: ResourceKind,
        body: Value,
    ) -> Result<Value, ScimError> {
        let mut attrs = resource::incoming(kind, body)?;
        require(kind, &attrs)?;
        let _write = self.writes.lock().await;
        self.check_unique(ctx, kind, &attrs, None).await?;
        let seq = self.repo.next_seq().await?;
        let id = uuid::Uuid::new_v4().to_string();
        let now = now();
        attrs.insert("id".into(), Value::String(id.clone()));
        let stored = seal(kind, id, seq, attrs, &now, &now);
        self.repo.put(&ctx.connector, kind, &stored).await?;
        tracing::info!(id = %stored.id, "SCIM resource created");
        self.notify_upsert(ctx, kind, &stored).await
    }

    #[tracing::instrument(name = "org_mesh.scim.get", skip_all, fields(connector = %ctx.connector, kind = kind.name()))]
    pub async fn get(
        &self,
        ctx: &Context,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Value, ScimError> {
        let stored = self.find(ctx, kind, id).await?;
        Ok(served(ctx, kind, &stored))
    }

    #[tracing::instrument(name = "org_mesh.scim.replace", skip_all, fields(connector = %ctx.connector, kind = kind.name()))]
    pub async fn replace(
        &self,
        ctx: &Context,
        kind: ResourceKind,
        id: &str,
        body: Value,
    ) -> Result<Value, ScimError> {
        let mut attrs = resource::incoming(kind, body)?;
        require(kind, &attrs)?;
        let _write = self.writes.lock().await;
        let old = self.find(ctx, kind, id).await?;
        self.check_unique(ctx, kind, &attrs, Some(id)).await?;
        attrs.insert("id".into(), Value::String(id.to_owned()));
        let created = created_of(&old);
        let stored = seal(kind, id.to_owned(), old.seq, attrs, &created, &now());
        self.repo.put(&ctx.connector, kind, &stored).await?;
        tracing::info!(id, "SCIM resource replaced");
        self.notify_upsert(ctx, kind, &stored).await
    }

    #[tracing::instrument(name = "org_mesh.scim.patch", skip_all, fields(connector = %ctx.connector, kind = kind.name()))]
    pub async fn patch(
        &self,
        ctx: &Context,
        kind: ResourceKind,
        id: &str,
        body: &Value,
    ) -> Result<Value, ScimError> {
        let _write = self.writes.lock().await;
        let old = self.find(ctx, kind, id).await?;
        let mut attrs = match &old.resource {
            Value::Object(map) => map.clone(),
            _ => Map::new(),
        };
        attrs.remove("meta");
        patch::apply(kind, &mut attrs, body)?;
        resource::forget_write_only(kind, &mut attrs);
        resource::prune(&mut attrs);
        resource::rebuild_schemas(kind, &mut attrs);
        require(kind, &attrs)?;
        self.check_unique(ctx, kind, &attrs, Some(id)).await?;
        let mut before = old.resource.clone();
        if let Value::Object(map) = &mut before {
            map.remove("meta");
        }
        if Value::Object(attrs.clone()) == before {
            tracing::debug!(id, "SCIM PATCH changed nothing");
            return Ok(served(ctx, kind, &old));
        }
        let created = created_of(&old);
        let stored = seal(kind, id.to_owned(), old.seq, attrs, &created, &now());
        self.repo.put(&ctx.connector, kind, &stored).await?;
        tracing::info!(id, "SCIM resource patched");
        self.notify_upsert(ctx, kind, &stored).await
    }

    #[tracing::instrument(name = "org_mesh.scim.delete", skip_all, fields(connector = %ctx.connector, kind = kind.name()))]
    pub async fn delete(
        &self,
        ctx: &Context,
        kind: ResourceKind,
        id: &str,
    ) -> Result<(), ScimError> {
        let _write = self.writes.lock().await;
        let removed = self
            .repo
            .delete(&ctx.connector, kind, id)
            .await?
            .ok_or_else(|| not_found(kind, id))?;
        tracing::info!(id, "SCIM resource deleted");
        let last = served(ctx, kind, &removed);
        self.sink
            .deleted(&ctx.connector, kind, &last)
            .await
            .map_err(|e| sink_failed(&e))?;
        self.mark_sent(&ctx.connector, kind, id).await;
        Ok(())
    }

    /// Hands every stored change the sink has not taken to it, oldest
    /// resource first, and returns how many it handed. Stops at the first
    /// sink failure, which it returns, so that a sink that is down is not
    /// asked once per change.
    pub async fn hand_over_unsent(&self) -> Result<usize, ScimError> {
        let _write = self.writes.lock().await;
        let mut unsent = self.repo.unsent().await?;
        unsent.sort_by_key(|u| u.resource.seq);
        let origin = self.base_url.as_deref().unwrap_or_default();
        for (handed, change) in unsent.iter().enumerate() {
            let ctx = Context {
                connector: change.connector.clone(),
                base: format!("{origin}/scim/v2/{}", change.connector),
            };
            let out = served(&ctx, change.kind, &change.resource);
            let result = if change.deleted {
                self.sink.deleted(&ctx.connector, change.kind, &out).await
            } else {
                self.sink.upserted(&ctx.connector, change.kind, &out).await
            };
            if let Err(e) = result {
                tracing::warn!(handed, left = unsent.len() - handed, problem = %e, "Unsent SCIM changes still not taken in");
                return Err(ScimError::Unavailable(e));
            }
            self.mark_sent(&ctx.connector, change.kind, &change.resource.id)
                .await;
        }
        if !unsent.is_empty() {
            tracing::info!(
                handed = unsent.len(),
                "Handed over SCIM changes stored earlier"
            );
        }
        Ok(unsent.len())
    }

    /// Drops the unsent note of a change the sink took. Failing to drop it
    /// only means the change is handed over once more, which the sink takes
    /// as the same state again.
    async fn mark_sent(&self, connector: &str, kind: ResourceKind, id: &str) {
        if let Err(e) = self.repo.sent(connector, kind, id).await {
            tracing::warn!(id, error = %e, "Cannot note a SCIM change as handed over; it will be handed over again");
        }
    }

    /// Lists resources of the given kinds (both for a root search), filtered,
    /// in creation order, one page of them.
    #[tracing::instrument(name = "org_mesh.scim.list", skip_all, fields(connector = %ctx.connector))]
    pub async fn list(
        &self,
        ctx: &Context,
        kinds: &[ResourceKind],
        query: &ListQuery,
    ) -> Result<Value, ScimError> {
        let filter = match query.filter.as_deref().map(str::trim) {
            Some(text) if !text.is_empty() => Some(
                filter::parse(text)
                    .map_err(|e| ScimError::bad(ScimType::InvalidFilter, format!("filter: {e}")))?,
            ),
            _ => None,
        };
        let mut matched = Vec::new();
        for kind in kinds {
            let candidates = match filter.as_ref().and_then(|f| name_wanted(f, *kind)) {
                Some(name) => self
                    .repo
                    .find_by_name(&ctx.connector, *kind, name)
                    .await?
                    .into_iter()
                    .collect(),
                None => self.repo.list(&ctx.connector, *kind).await?,
            };
            for stored in candidates {
                if filter
                    .as_ref()
                    .is_none_or(|f| filter::matches(f, *kind, &stored.resource))
                {
                    matched.push((*kind, stored));
                }
            }
        }
        let total = matched.len();
        let start = query.start_index.unwrap_or(1).max(1);
        let count = query
            .count
            .unwrap_or(MAX_RESULTS as i64)
            .clamp(0, MAX_RESULTS as i64);
        let skip = usize::try_from(start - 1).unwrap_or(usize::MAX);
        let take = usize::try_from(count).unwrap_or(0);
        let page: Vec<Value> = matched
            .iter()
            .skip(skip)
            .take(take)
            .map(|(kind, stored)| {
                let mut out = served(ctx, *kind, stored);
                query.projection.apply(*kind, &mut out);
                out
            })
            .collect();
        Ok(json!({
            "schemas": [LIST_SCHEMA],
            "totalResults": total,
            "startIndex": start,
            "itemsPerPage": page.len(),
            "Resources": page,
        }))
    }

    async fn find(
        &self,
        ctx: &Context,
        kind: ResourceKind,
        id: &str,
    ) -> Result<StoredResource, ScimError> {
        self.repo
            .get(&ctx.connector, kind, id)
            .await?
            .ok_or_else(|| not_found(kind, id))
    }

    /// Refuses a second user with the same `userName` or a second group
    /// with the same `displayName`, compared case-insensitively.
    async fn check_unique(
        &self,
        ctx: &Context,
        kind: ResourceKind,
        attrs: &Map<String, Value>,
        own_id: Option<&str>,
    ) -> Result<(), ScimError> {
        let field = kind.unique_attribute();
        let Some(wanted) = attrs.get(field).and_then(Value::as_str) else {
            return Ok(());
        };
        let taken = self
            .repo
            .find_by_name(&ctx.connector, kind, wanted)
            .await?
            .is_some_and(|r| Some(r.id.as_str()) != own_id);
        if taken {
            return Err(ScimError::Conflict(format!(
                "a {} with this {field} already exists",
                kind.name()
            )));
        }
        Ok(())
    }

    async fn notify_upsert(
        &self,
        ctx: &Context,
        kind: ResourceKind,
        stored: &StoredResource,
    ) -> Result<Value, ScimError> {
        let out = served(ctx, kind, stored);
        self.sink
            .upserted(&ctx.connector, kind, &out)
            .await
            .map_err(|e| sink_failed(&e))?;
        self.mark_sent(&ctx.connector, kind, &stored.id).await;
        Ok(out)
    }
}

fn sink_failed(problem: &str) -> ScimError {
    tracing::warn!(%problem, "SCIM change stored but not taken in by org-mesh");
    ScimError::Unavailable(format!(
        "the change was stored, but org-mesh could not take it in ({problem}); retry later"
    ))
}

/// Compares tokens through their digests, so the time taken reveals neither
/// where they differ nor how long the expected one is.
fn tokens_match(expected: &str, presented: &str) -> bool {
    use subtle::ConstantTimeEq;
    if expected.is_empty() {
        return false;
    }
    let a = Sha256::digest(expected.as_bytes());
    let b = Sha256::digest(presented.as_bytes());
    a.ct_eq(&b).into()
}

/// The name a filter asks for when it is `<unique attribute> eq "<name>"`,
/// the look-up identity providers make before every assignment, which the
/// repository answers from its name index. The one resource found is still
/// matched against the filter, so the answer is the full scan's.
fn name_wanted(filter: &Filter, kind: ResourceKind) -> Option<&str> {
    let Filter::Compare(path, CompareOp::Eq, Value::String(name)) = filter else {
        return None;
    };
    let schema_fits = path
        .schema
        .as_deref()
        .is_none_or(|s| s.eq_ignore_ascii_case(kind.schema()));
    (schema_fits && path.sub.is_none() && path.name.eq_ignore_ascii_case(kind.unique_attribute()))
        .then_some(name.as_str())
}

fn require(kind: ResourceKind, attrs: &Map<String, Value>) -> Result<(), ScimError> {
    let field = kind.unique_attribute();
    match attrs.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(()),
        _ => Err(ScimError::invalid_value(format!(
            "{field:?} is required and must be a non-empty string"
        ))),
    }
}

fn not_found(kind: ResourceKind, id: &str) -> ScimError {
    ScimError::NotFound(format!("{} {id:?} not found", kind.name()))
}

fn now() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

fn created_of(old: &StoredResource) -> String {
    old.resource
        .pointer("/meta/created")
        .and_then(Value::as_str)
        .map_or_else(now, str::to_owned)
}

/// Adds `meta` (and a version that changes with the content) to stored
/// attributes.
fn seal(
    kind: ResourceKind,
    id: String,
    seq: u64,
    mut attrs: Map<String, Value>,
    created: &str,
    modified: &str,
) -> StoredResource {
    attrs.remove("meta");
    let digest = Sha256::digest(Value::Object(attrs.clone()).to_string().as_bytes());
    let version = format!("W/\"{}\"", hex::encode(digest.get(..8).unwrap_or_default()));
    attrs.insert(
        "meta".into(),
        json!({
            "resourceType": kind.name(),
            "created": created,
            "lastModified": modified,
            "version": version,
        }),
    );
    StoredResource {
        id,
        seq,
        resource: Value::Object(attrs),
    }
}

/// The resource as served: the stored one plus its location.
pub(crate) fn served(ctx: &Context, kind: ResourceKind, stored: &StoredResource) -> Value {
    let mut out = stored.resource.clone();
    if let Some(Value::Object(meta)) = out.get_mut("meta") {
        meta.insert(
            "location".into(),
            Value::String(format!("{}/{}/{}", ctx.base, kind.endpoint(), stored.id)),
        );
    }
    out
}

/// The value of `name` in a JSON object, matched case-insensitively.
pub(crate) fn member<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    map.get(key_of(map, name)?)
}
