//! The SCIM operations, independent of HTTP: validation, uniqueness, `meta`,
//! storage and handing changes to the sink.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{ScimError, ScimType};
use crate::filter::{CompareOp, Filter};
use crate::project::Projection;
use crate::repository::{Key, ScimRepository, StoredResource, Unsent, key};
use crate::schema::{LIST_SCHEMA, MAX_RESULTS, key_of};
use crate::{Offered, ResourceKind, ScimSink, SinkError, filter, patch, resource};

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
/// Each write stores the resource and notes the change as unsent in one
/// durable commit, and is answered once that commit is done. The sink is
/// not on the request's path: [`ScimService::hand_over_new`], woken by
/// every write, hands the noted changes to it (users before groups, each
/// in the order they were written, many at once when many are waiting)
/// and drops each note once the sink took it. A change the sink
/// did not take keeps its note and is offered again by
/// [`ScimService::hand_over_unsent`], which the host runs now and then, so
/// that neither a sink that is down nor a crash between the commit and the
/// hand-over loses it. The identity provider is not asked to retry for a
/// problem of the sink's: its retry would not help, since a retried PATCH
/// changes nothing and a retried creation finds the user.
///
/// The look-up identity providers make before every assignment (a filter
/// `userName eq` or `displayName eq`) and the uniqueness check of every
/// write read one resource through the repository's name index. Any other
/// filter, and a list without one, reads every resource of one kind of one
/// connector and works in memory: fine for the tens of thousands of
/// accounts an organisation has, but a full scan each time.
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
    /// Woken by every stored change.
    stored: Arc<tokio::sync::Notify>,
    /// Serialises hand-overs, and remembers the changes the sink refused,
    /// each by its resource and [`Unsent::written`], so that a hand-over
    /// of new changes does not offer them again.
    handing: tokio::sync::Mutex<BTreeMap<Key, u64>>,
}

/// The most stored changes offered to the sink at once. An identity
/// provider's import leaves hundreds waiting, and the twin takes a batch
/// of them for little more than the cost of one; past a few hundred, the
/// batch only grows the unit of work that a failure has to repeat.
const HAND_OVER_AT_ONCE: usize = 256;

/// Logs a change the sink refused: at warn the first time in this state,
/// at debug when it is offered again.
fn refused_change(first: bool, change: &Unsent, problem: &str) {
    if first {
        tracing::warn!(
            connector = %change.connector,
            kind = change.kind.name(),
            id = %change.resource.id,
            %problem,
            "SCIM change stored but refused by org-mesh; it stays stored and is offered again later"
        );
    } else {
        tracing::debug!(
            connector = %change.connector,
            kind = change.kind.name(),
            id = %change.resource.id,
            %problem,
            "SCIM change refused again"
        );
    }
}

/// A hand-over's key for a change: its resource.
fn note_key(change: &Unsent) -> Key {
    key(&change.connector, change.kind, &change.resource.id)
}

/// What one hand-over did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HandedOver {
    /// Changes the sink took.
    pub handed: usize,
    /// Changes the sink refused, which stay unsent.
    pub refused: usize,
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
            stored: Arc::default(),
            handing: tokio::sync::Mutex::default(),
        }
    }

    /// Notified after every stored change: wait on it, then call
    /// [`ScimService::hand_over_new`]. A change stored while nobody waits
    /// leaves a permit, so the next wait returns at once.
    pub fn stored_changes(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.stored)
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
        self.stored.notify_one();
        tracing::info!(id = %stored.id, "SCIM resource created");
        Ok(served(ctx, kind, &stored))
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
        self.stored.notify_one();
        tracing::info!(id, "SCIM resource replaced");
        Ok(served(ctx, kind, &stored))
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
        self.stored.notify_one();
        tracing::info!(id, "SCIM resource patched");
        Ok(served(ctx, kind, &stored))
    }

    #[tracing::instrument(name = "org_mesh.scim.delete", skip_all, fields(connector = %ctx.connector, kind = kind.name()))]
    pub async fn delete(
        &self,
        ctx: &Context,
        kind: ResourceKind,
        id: &str,
    ) -> Result<(), ScimError> {
        let _write = self.writes.lock().await;
        self.repo
            .delete(&ctx.connector, kind, id)
            .await?
            .ok_or_else(|| not_found(kind, id))?;
        self.stored.notify_one();
        tracing::info!(id, "SCIM resource deleted");
        Ok(())
    }

    /// Hands every stored change the sink has not taken to it, in the
    /// order they were written, including those it refused before. Stops
    /// at the first [`SinkError::Unavailable`], which it returns, so that a
    /// sink that is down is not asked once per change.
    pub async fn hand_over_unsent(&self) -> Result<HandedOver, ScimError> {
        self.hand_over(true).await
    }

    /// As [`ScimService::hand_over_unsent`], but leaves out the changes the
    /// sink refused before: run after every write, it would otherwise offer
    /// a change the sink cannot take once per write.
    pub async fn hand_over_new(&self) -> Result<HandedOver, ScimError> {
        self.hand_over(false).await
    }

    /// Hands changes over as they are stored, and every `every` all of
    /// them, those refused before included, until the service is dropped.
    /// After the sink said it is unavailable, waits `every` before trying
    /// again, rather than trying once per write.
    ///
    /// Woken by a write, it waits `gather` before it starts, so that the
    /// writes right behind it go over with it: during an identity
    /// provider's import, changes then reach the sink in batches rather
    /// than one or two at a time, and each change reaches it that much
    /// later.
    pub async fn hand_over_as_stored(service: Weak<Self>, every: Duration, gather: Duration) {
        let Some(stored) = service.upgrade().map(|s| s.stored_changes()) else {
            return;
        };
        let mut last_full: Option<Instant> = None;
        loop {
            let Some(scim) = service.upgrade() else {
                return;
            };
            let full = last_full.is_none_or(|at| at.elapsed() >= every);
            let result = if full {
                last_full = Some(Instant::now());
                scim.hand_over_unsent().await
            } else {
                scim.hand_over_new().await
            };
            drop(scim);
            // Both kinds of failure are logged where they happen.
            if result.is_err() {
                tokio::time::sleep(every).await;
                last_full = None;
                continue;
            }
            if tokio::time::timeout(every, stored.notified()).await.is_ok() {
                tokio::time::sleep(gather).await;
            }
        }
    }

    /// How many stored changes the sink has not taken yet.
    pub async fn unsent(&self) -> Result<usize, ScimError> {
        Ok(self.repo.unsent().await?.len())
    }

    // Writes go on while a hand-over runs: a change written meanwhile
    // keeps its note, since `sent` drops a note only if it is still the
    // one handed over, and wakes the next hand-over.
    async fn hand_over(&self, again: bool) -> Result<HandedOver, ScimError> {
        let mut refused = self.handing.lock().await;
        let mut unsent = self.repo.unsent().await?;
        let mut done = HandedOver::default();
        if !again {
            let all = unsent.len();
            unsent.retain(|change| refused.get(&note_key(change)) != Some(&change.written));
            done.refused = all - unsent.len();
        }
        // Only the latest change of each resource is kept, so a group's
        // may now list a user written after it. Users go first, since a
        // group's members are users and never the other way round, so the
        // sink never meets a member it has not been given.
        unsent.sort_by(|a, b| {
            (&a.connector, a.kind, a.written).cmp(&(&b.connector, b.kind, b.written))
        });
        let origin = self.base_url.as_deref().unwrap_or_default();
        let mut left = unsent.len();
        for part in unsent
            .chunk_by(|a, b| a.connector == b.connector)
            .flat_map(|of_one| of_one.chunks(HAND_OVER_AT_ONCE))
        {
            let ctx = Context {
                connector: part[0].connector.clone(),
                base: format!("{origin}/scim/v2/{}", part[0].connector),
            };
            let offered: Vec<Offered> = part
                .iter()
                .map(|change| Offered {
                    kind: change.kind,
                    deleted: change.deleted,
                    resource: served(&ctx, change.kind, &change.resource),
                })
                .collect();
            // A refusal of the whole part (the connector is not loaded) is
            // logged once for the part rather than once per change.
            let mut whole = None;
            let outcomes = match self.sink.take(&ctx.connector, &offered).await {
                Ok(outcomes) => outcomes,
                Err(SinkError::Refused(problem)) => {
                    whole = Some(problem.clone());
                    vec![Err(problem); part.len()]
                }
                Err(SinkError::Unavailable(problem)) => {
                    tracing::warn!(
                        handed = done.handed,
                        left,
                        %problem,
                        "Stored SCIM changes not taken in yet; they are offered again later"
                    );
                    return Err(ScimError::Unavailable(problem));
                }
            };
            let unanswered = || Err("the sink gave no answer for this change".to_owned());
            let outcomes = outcomes
                .into_iter()
                .chain(std::iter::repeat_with(unanswered));
            let mut taken = Vec::with_capacity(part.len());
            // Changes refused for the first time in this state: the
            // warning is for them, and the retries every round are
            // logged at debug, so that an import held back by a missing
            // connector does not write a line per user every 10 s.
            let mut first_refusals = 0;
            for (change, outcome) in part.iter().zip(outcomes) {
                match outcome {
                    Ok(()) => {
                        refused.remove(&note_key(change));
                        taken.push(change.clone());
                    }
                    Err(problem) => {
                        let first = refused.insert(note_key(change), change.written)
                            != Some(change.written);
                        first_refusals += usize::from(first);
                        if whole.is_none() {
                            refused_change(first, change, &problem);
                        }
                        done.refused += 1;
                    }
                }
            }
            if let Some(problem) = whole {
                if first_refusals > 0 {
                    tracing::warn!(
                        connector = %ctx.connector,
                        count = part.len(),
                        new = first_refusals,
                        %problem,
                        "SCIM changes stored but refused by org-mesh; they stay stored and are offered again later"
                    );
                } else {
                    tracing::debug!(connector = %ctx.connector, count = part.len(), %problem, "SCIM changes refused again");
                }
            }
            done.handed += taken.len();
            left -= part.len();
            self.mark_sent(&taken).await;
        }
        if done.handed > 0 {
            tracing::debug!(
                handed = done.handed,
                refused = done.refused,
                "Handed over stored SCIM changes"
            );
        }
        Ok(done)
    }

    /// Drops the unsent notes of changes the sink took. Failing to drop
    /// them only means they are handed over once more, which the sink
    /// takes as the same state again.
    async fn mark_sent(&self, taken: &[Unsent]) {
        if taken.is_empty() {
            return;
        }
        if let Err(e) = self.repo.sent(taken).await {
            tracing::warn!(count = taken.len(), error = %e, "Cannot note SCIM changes as handed over; they will be handed over again");
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
