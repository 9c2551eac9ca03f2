//! A sustained, bounded load on two replicas sharing Neo4j and Redis: SCIM
//! as Okta and Entra ID send it, all to one replica (each replica keeps its
//! own SCIM store, so an identity provider needs affinity), and signed
//! GitHub deliveries spread over both, started at a fixed rate for a fixed
//! time. While it runs, the policy folder and a plugin both replicas watch
//! change, and the SCIM replica is killed outright and started again on its
//! state while the other keeps serving.
//!
//! The senders behave as identity providers and GitHub do: a request that
//! got no answer (refused or cut connection) is sent again, deliveries to
//! the surviving replica; an HTTP 5xx is a failure, counted and never sent
//! again. In the end every change answered 2xx is in the shared twin once,
//! every SCIM user as last sent, and no delivery was accepted twice.
//!
//! The run's figures are printed (see them with `--nocapture`); nothing
//! about time is asserted, since the machine may be busy with other work.
//!
//! Needs `.ci/setup`, `.ci/build-plugins`, and Neo4j and Redis as
//! `common::backends` says.

#![expect(clippy::panic, reason = "helpers of a test fail it by panicking")]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use common::backends::*;
use common::*;
use org_mesh_model::{EntityId, NodeRef, StoredNode};
use org_mesh_store::GraphStore;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Work is started at this rate, for this many ticks: bounded in count and
/// in time whatever the service does.
const TICKS_PER_SEC: u64 = 50;
const TICKS: usize = 1200;
/// One tick in this many starts a change: two in three a new member's
/// delivery, the third a SCIM user's life (two or three writes over three
/// seconds). Changes are the scarce part: each one applied re-evaluates the
/// whole twin, which takes a replica of a debug build on a busy machine
/// about a second, so more would leave a backlog the run cannot wait for.
/// The other ticks read, as identity providers and GitHub also do: lookups,
/// import pages, single users, group lists, and redeliveries.
const CHANGE_EVERY: usize = 20;
/// Moments of the run, from the first tick.
const POLICY_CHANGE_AT: Duration = Duration::from_secs(4);
const KILL_AT: Duration = Duration::from_secs(8);
/// Senders give up on a request no replica answers for this long. A
/// delivery cut off while being accepted stays claimed for a minute before
/// another attempt is taken, so this is longer.
const GIVE_UP_AFTER: Duration = Duration::from_secs(90);
const RESEND_PAUSE: Duration = Duration::from_millis(500);

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Delivery,
    Redelivery,
    ScimLookup,
    ScimList,
    ScimGet,
    ScimCreate,
    ScimPatch,
    ScimDeactivate,
}

/// What happened to the requests of one kind.
#[derive(Debug, Default)]
struct Tally {
    /// Requests, each counted once however often it was sent.
    requests: usize,
    /// Attempts, resends included.
    sent: usize,
    success: usize,
    /// Attempts made again after no answer came: refused connections, and
    /// connections cut while the request was out.
    refused: usize,
    cut: usize,
    /// Deliveries sent again because another attempt of theirs was still
    /// being accepted when its replica died.
    in_progress: usize,
    server_errors: Vec<String>,
    unexpected: Vec<String>,
    abandoned: usize,
    latencies: Vec<Duration>,
}

/// The senders' shared state.
#[derive(Debug)]
struct Load {
    http: reqwest::Client,
    /// Where the SCIM replica is reached; it moves when it starts again.
    scim_replica: RwLock<String>,
    other_replica: String,
    tallies: Mutex<BTreeMap<Kind, Tally>>,
    /// Deliveries answered 2xx, for GitHub to redeliver.
    delivered: Mutex<Vec<Delivery>>,
    /// The `userName` and `id` of SCIM users created so far.
    provisioned: Mutex<Vec<(String, String)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Load {
    fn scim_base(&self) -> String {
        self.scim_replica
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn tally<T>(&self, kind: Kind, record: impl FnOnce(&mut Tally) -> T) -> T {
        record(lock(&self.tallies).entry(kind).or_default())
    }

    /// One attempt: the status and body of the answer, or `None` when no
    /// answer came.
    async fn attempt(
        &self,
        kind: Kind,
        base: &str,
        request: &(dyn Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder + Sync),
    ) -> Option<(u16, Value)> {
        let started = Instant::now();
        let answer = async {
            let resp = request(&self.http, base).send().await?;
            let status = resp.status().as_u16();
            let body = resp.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        }
        .await;
        let took = started.elapsed();
        self.tally(kind, |t| {
            t.sent += 1;
            match answer {
                Err(e) => {
                    if e.is_connect() {
                        t.refused += 1;
                    } else {
                        t.cut += 1;
                    }
                    None
                }
                Ok((status, body)) => {
                    t.latencies.push(took);
                    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    if (200..300).contains(&status) {
                        t.success += 1;
                    } else if status >= 500 {
                        t.server_errors
                            .push(format!("{status} from {base}: {body}"));
                    }
                    Some((status, body))
                }
            }
        })
    }

    /// Sends a request until it is answered, to the address `to` gives for
    /// each attempt; `None` when nothing answered within `GIVE_UP_AFTER`.
    async fn answered(
        &self,
        kind: Kind,
        to: impl Fn(usize) -> String,
        request: &(dyn Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder + Sync),
    ) -> Option<(u16, Value)> {
        self.tally(kind, |t| t.requests += 1);
        let started = Instant::now();
        for attempt in 0.. {
            if let Some(answer) = self.attempt(kind, &to(attempt), request).await {
                return Some(answer);
            }
            if started.elapsed() > GIVE_UP_AFTER {
                break;
            }
            tokio::time::sleep(RESEND_PAUSE).await;
        }
        self.tally(kind, |t| t.abandoned += 1);
        None
    }

    /// Notes an answer a sender does not expect, which fails the test.
    fn unexpected(&self, kind: Kind, what: String) {
        self.tally(kind, |t| t.unexpected.push(what));
    }
}

/// How a delivery was answered, each time it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Accepted,
    Duplicate,
    Other(u16),
}

/// Sends one delivery, first to the replica `first` names (0 the SCIM
/// replica, 1 the other) and after a lost answer to the other one; a
/// delivery another attempt of which is still being accepted is sent again
/// after a pause, as its answer asks.
async fn deliver(load: &Load, kind: Kind, d: &Delivery, first: usize) -> Option<Answer> {
    let url = |attempt: usize| {
        let base = if (first + attempt).is_multiple_of(2) {
            load.scim_base()
        } else {
            load.other_replica.clone()
        };
        format!("{base}/webhooks/github/github")
    };
    let request = |http: &reqwest::Client, url: &str| {
        http.post(url)
            .header("x-github-event", "organization")
            .header("x-github-delivery", &d.id)
            .header("x-hub-signature-256", sign(d.body.as_bytes()))
            .header("content-type", "application/json")
            .body(d.body.clone())
    };
    let started = Instant::now();
    let mut sent = 0;
    loop {
        let (status, body) = load.answered(kind, |a| url(sent + a), &request).await?;
        sent += 1;
        match status {
            202 => return Some(Answer::Accepted),
            200 if body["duplicate"] == true => return Some(Answer::Duplicate),
            409 if body["error"]["code"] == "in_progress" && started.elapsed() < GIVE_UP_AFTER => {
                load.tally(kind, |t| t.in_progress += 1);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            other => {
                if other < 500 {
                    load.unexpected(kind, format!("{}: {other} {body}", d.id));
                }
                return Some(Answer::Other(other));
            }
        }
    }
}

/// One SCIM user as the identity provider last sent it.
#[derive(Debug, Clone)]
struct User {
    user_name: String,
    id: Option<String>,
    active: bool,
    family_name: String,
    email: String,
    /// Writes answered 2xx: creation, update, deactivation.
    writes: usize,
}

fn user_name(j: usize) -> String {
    format!("load-user-{j}@example.com")
}

/// Okta's assignment: a lookup by `userName`, then a creation if nothing
/// matched. When a creation got no answer, Okta starts again from the
/// lookup, which finds the user if the creation took.
async fn create(load: &Load, user: &mut User, j: usize) {
    let scim = |base: &str| format!("{base}/scim/v2/okta/Users");
    let name = user.user_name.clone();
    let lookup = move |http: &reqwest::Client, base: &str| {
        // The name has nothing a query needs escaped but the filter's
        // spaces and quotes.
        http.get(format!(
            "{}?filter=userName%20eq%20%22{name}%22&startIndex=1&count=100",
            scim(base)
        ))
        .bearer_auth(SCIM_TOKEN)
    };
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user.user_name,
        "externalId": format!("00uload{j}"),
        "name": {"givenName": "Load", "familyName": user.family_name},
        "emails": [{"value": user.email, "type": "work", "primary": true}],
        "displayName": format!("Load User {j}"),
        "locale": "en-US",
        "active": true,
        "groups": [],
        "password": "not-kept",
    })
    .to_string();
    let post = |http: &reqwest::Client, base: &str| {
        http.post(scim(base))
            .bearer_auth(SCIM_TOKEN)
            .header("content-type", "application/scim+json")
            .body(body.clone())
    };
    load.tally(Kind::ScimCreate, |t| t.requests += 1);
    let started = Instant::now();
    while started.elapsed() < GIVE_UP_AFTER {
        let Some((status, found)) = load
            .answered(Kind::ScimLookup, |_| load.scim_base(), &lookup)
            .await
        else {
            return;
        };
        if status != 200 {
            load.unexpected(
                Kind::ScimLookup,
                format!("{name}: {status} {found}", name = user.user_name),
            );
            return;
        }
        if found["totalResults"].as_u64().unwrap_or(0) > 0 {
            user.id = found["Resources"][0]["id"].as_str().map(str::to_string);
            user.writes += 1;
            break;
        }
        match load
            .attempt(Kind::ScimCreate, &load.scim_base(), &post)
            .await
        {
            None => tokio::time::sleep(RESEND_PAUSE).await,
            Some((201, created)) => {
                user.id = created["id"].as_str().map(str::to_string);
                user.writes += 1;
                break;
            }
            Some((status, answer)) => {
                if status < 500 {
                    load.unexpected(
                        Kind::ScimCreate,
                        format!("{}: {status} {answer}", user.user_name),
                    );
                }
                return;
            }
        }
    }
    match &user.id {
        Some(id) => lock(&load.provisioned).push((user.user_name.clone(), id.clone())),
        None => load.tally(Kind::ScimCreate, |t| t.abandoned += 1),
    }
}

/// Sends a PATCH of the user until it is answered; whether it was taken.
async fn patch(load: &Load, kind: Kind, id: &str, operations: Value) -> bool {
    let body = json!({"schemas": [PATCH_OP], "Operations": operations}).to_string();
    let request = |http: &reqwest::Client, base: &str| {
        http.patch(format!("{base}/scim/v2/okta/Users/{id}"))
            .bearer_auth(SCIM_TOKEN)
            .header("content-type", "application/scim+json")
            .body(body.clone())
    };
    match load.answered(kind, |_| load.scim_base(), &request).await {
        Some((200 | 204, _)) => true,
        Some((status, answer)) => {
            if status < 500 {
                load.unexpected(kind, format!("{id}: {status} {answer}"));
            }
            false
        }
        None => false,
    }
}

/// One user's life: created as Okta does, then renamed as Entra does, then
/// deactivated, alternately as Okta (a path-less replace) and as Entra (a
/// string boolean) do; each user gets one or both of the later steps.
async fn provision(load: &Load, j: usize) -> User {
    let mut user = User {
        user_name: user_name(j),
        id: None,
        active: true,
        family_name: format!("User{j}"),
        email: user_name(j),
        writes: 0,
    };
    create(load, &mut user, j).await;
    let Some(id) = user.id.clone() else {
        return user;
    };
    if j % 3 != 1 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let family_name = format!("Renamed{j}");
        let email = format!("load-user-{j}@corp.example.com");
        let operations = json!([
            {"op": "Replace", "path": "name.familyName", "value": family_name},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": email},
        ]);
        if patch(load, Kind::ScimPatch, &id, operations).await {
            user.family_name = family_name;
            user.email = email;
            user.writes += 1;
        }
    }
    if !j.is_multiple_of(3) {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let operations = if j.is_multiple_of(2) {
            json!([{"op": "replace", "value": {"active": false}}])
        } else {
            json!([{"op": "Replace", "path": "active", "value": "False"}])
        };
        if patch(load, Kind::ScimDeactivate, &id, operations).await {
            user.active = false;
            user.writes += 1;
        }
    }
    user
}

/// One read as identity providers and GitHub make them between changes,
/// chosen by `n`: a redelivery of an accepted delivery to either replica,
/// Okta's import page, Entra's read of one user, Okta's lookup by
/// `userName`, and the group list of a connection test.
async fn read(load: &Load, n: usize) -> Option<(String, Answer)> {
    let redeliver = n
        .is_multiple_of(5)
        .then(|| {
            let delivered = lock(&load.delivered);
            delivered.get(n / 5 % delivered.len().max(1)).cloned()
        })
        .flatten();
    if let Some(d) = redeliver {
        let answer = deliver(load, Kind::Redelivery, &d, n / 5 % 2).await?;
        return Some((d.id, answer));
    }
    let known = {
        let provisioned = lock(&load.provisioned);
        provisioned.get(n % provisioned.len().max(1)).cloned()
    };
    let (kind, path) = match (n % 5, known) {
        (2, Some((_, id))) => (Kind::ScimGet, format!("Users/{id}")),
        (3, Some((name, _))) => (
            Kind::ScimLookup,
            format!("Users?filter=userName%20eq%20%22{name}%22"),
        ),
        (4, _) => (Kind::ScimList, "Groups?startIndex=1&count=100".to_string()),
        _ => (Kind::ScimList, "Users?startIndex=1&count=100".to_string()),
    };
    let request = |http: &reqwest::Client, base: &str| {
        http.get(format!("{base}/scim/v2/okta/{path}"))
            .bearer_auth(SCIM_TOKEN)
    };
    let (status, body) = load.answered(kind, |_| load.scim_base(), &request).await?;
    let expected = match kind {
        Kind::ScimLookup => status == 200 && body["totalResults"] == 1,
        _ => status == 200,
    };
    if !expected && status < 500 {
        load.unexpected(kind, format!("{path}: {status} {body}"));
    }
    None
}

/// What the driver started, and how it ended.
#[derive(Debug, Default)]
struct Outcome {
    deliveries: Vec<(Delivery, Option<Answer>)>,
    redeliveries: Vec<(String, Answer)>,
    users: Vec<User>,
}

/// Starts one piece of work per tick, at a fixed rate, then waits for all
/// of them to end.
async fn drive(load: Arc<Load>, deliveries: Vec<Delivery>) -> Outcome {
    let mut ticker = tokio::time::interval(Duration::from_millis(1000 / TICKS_PER_SEC));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut deliveries = deliveries.into_iter().enumerate();
    let mut sent = tokio::task::JoinSet::new();
    let mut provisioned = tokio::task::JoinSet::new();
    let mut reads = tokio::task::JoinSet::new();
    for tick in 0..TICKS {
        ticker.tick().await;
        let load = load.clone();
        let change = (tick % CHANGE_EVERY == 0).then_some(tick / CHANGE_EVERY);
        match change {
            Some(c) if c % 3 == 2 => {
                provisioned.spawn(async move { provision(&load, c / 3).await });
            }
            Some(_) => {
                if let Some((i, d)) = deliveries.next() {
                    sent.spawn(async move {
                        let answer = deliver(&load, Kind::Delivery, &d, i % 2).await;
                        if answer.is_some() {
                            lock(&load.delivered).push(d.clone());
                        }
                        (d, answer)
                    });
                }
            }
            None => {
                reads.spawn(async move { read(&load, tick).await });
            }
        }
    }
    let mut outcome = Outcome::default();
    while let Some(done) = sent.join_next().await {
        outcome
            .deliveries
            .push(done.unwrap_or_else(|e| panic!("a sender failed: {e}")));
    }
    while let Some(done) = provisioned.join_next().await {
        outcome
            .users
            .push(done.unwrap_or_else(|e| panic!("a provisioner failed: {e}")));
    }
    while let Some(done) = reads.join_next().await {
        if let Some(redelivered) = done.unwrap_or_else(|e| panic!("a reader failed: {e}")) {
            outcome.redeliveries.push(redelivered);
        }
    }
    outcome
}

/// Waits until `read` finds `wanted` in what `path` of the replica at
/// `base` answers; the time that took.
async fn serving(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    read: impl Fn(&Value) -> Option<String>,
    wanted: &str,
) -> Duration {
    let started = Instant::now();
    let mut last = Value::Null;
    for _ in 0..1200 {
        let (status, body) = get_json(http, &format!("{base}{path}"), Some(VIEWER)).await;
        if status == 200 && read(&body).as_deref() == Some(wanted) {
            return started.elapsed();
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{base}{path} did not serve {wanted} within two minutes: {last}");
}

fn policy_version(policies: &Value) -> Option<String> {
    policies["version"].as_str().map(str::to_string)
}

fn drift_digest(plugins: &Value) -> Option<String> {
    plugins["plugins"]
        .as_array()?
        .iter()
        .find(|p| p["instance"] == "identity-drift")?["digest"]
        .as_str()
        .map(str::to_string)
}

/// Waits until the SCIM replica has handed over every SCIM change it
/// stored and no accepted change is left in the shared queue, for longer
/// than `settled` does: the load leaves a backlog.
async fn drained(http: &reqwest::Client, scim_base: &str) -> Duration {
    let started = Instant::now();
    let mut last = Value::Null;
    for _ in 0..2400 {
        let (status, body) =
            get_json(http, &format!("{scim_base}/api/v1/status"), Some(VIEWER)).await;
        if status == 200 && body["scim"]["unsent"] == 0 && body["queue"]["depth"] == 0 {
            return started.elapsed();
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("accepted changes were still queued four minutes after the load: {last}");
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn print_figures(tallies: &BTreeMap<Kind, Tally>) {
    println!(
        "{:<16} {:>8} {:>6} {:>6} {:>8} {:>5} {:>11} {:>4} {:>9} {:>9}",
        "kind",
        "requests",
        "sent",
        "2xx",
        "refused",
        "cut",
        "in-progress",
        "5xx",
        "p50 ms",
        "p99 ms"
    );
    for (kind, t) in tallies {
        let mut sorted = t.latencies.clone();
        sorted.sort();
        println!(
            "{:<16} {:>8} {:>6} {:>6} {:>8} {:>5} {:>11} {:>4} {:>9.1} {:>9.1}",
            format!("{kind:?}"),
            t.requests,
            t.sent,
            t.success,
            t.refused,
            t.cut,
            t.in_progress,
            t.server_errors.len(),
            percentile(&sorted, 50).as_secs_f64() * 1000.0,
            percentile(&sorted, 99).as_secs_f64() * 1000.0,
        );
    }
}

fn text(node: &StoredNode, name: &str) -> Option<String> {
    node.node
        .properties
        .get(name)
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_scim_and_webhook_load_survives_reloads_and_a_killed_replica_exactly_once() {
    let _turn = NEO4J.lock().await;
    empty_neo4j().await;
    let mut settings = replica(&neo4j_url(), &redis_url(), &fresh_prefix("load"));
    // The example configuration's identity mapping warns on every
    // evaluation, which would bury the figures.
    settings.push(("ORG_MESH_LOG".into(), "error".into()));
    let (mut scim_replica, copies) = start_on_copies(&pairs(&settings)).await;
    settings.push((
        "ORG_MESH_PLUGINS__DIRS".into(),
        copies.plugins.display().to_string(),
    ));
    settings.push((
        "ORG_MESH_POLICIES__DIR".into(),
        copies.policies.display().to_string(),
    ));
    let other = start_replica(&settings).await;
    let http = client();

    let changes = TICKS.div_ceil(CHANGE_EVERY);
    let deliveries = member_burst(
        "load-delivery",
        "load-member",
        9_000_000,
        changes - changes / 3,
    );
    let load = Arc::new(Load {
        http: client(),
        scim_replica: RwLock::new(scim_replica.base.clone()),
        other_replica: other.base.clone(),
        tallies: Mutex::new(BTreeMap::new()),
        delivered: Mutex::new(Vec::new()),
        provisioned: Mutex::new(Vec::new()),
    });
    let began = Instant::now();
    let driver = tokio::spawn(drive(load.clone(), deliveries));

    // A reviewed policy change that decides the same: both replicas serve
    // it while the load runs.
    tokio::time::sleep(POLICY_CHANGE_AT.saturating_sub(began.elapsed())).await;
    let rego = copies.policies.join("drift.rego");
    let mut policy = std::fs::read(&rego).unwrap_or_else(|e| panic!("{e}"));
    policy.extend_from_slice(b"\n# reviewed under load: no change in decisions\n");
    save(&rego, &policy);
    let version = folder_version(&copies.policies);
    let policy_took = serving(
        &http,
        &other.base,
        "/api/v1/policies",
        policy_version,
        &version,
    )
    .await;

    // The SCIM replica dies outright, and comes back on its state folder
    // (its SCIM store) and the same settings.
    tokio::time::sleep(KILL_AT.saturating_sub(began.elapsed())).await;
    let killed_at = began.elapsed();
    scim_replica.kill();
    let away_from = Instant::now();
    let scim_replica = start_again(&mut scim_replica, &pairs(&settings)).await;
    let away = away_from.elapsed();
    *load
        .scim_replica
        .write()
        .unwrap_or_else(PoisonError::into_inner) = scim_replica.base.clone();
    serving(
        &http,
        &scim_replica.base,
        "/api/v1/policies",
        policy_version,
        &version,
    )
    .await;

    // A new build of a detector that behaves as the old one.
    let wasm = copies.plugins.join("identity-drift/identity_drift.wasm");
    let build = rebuilt(
        &std::fs::read(&wasm).unwrap_or_else(|e| panic!("{e}")),
        "load",
    );
    save(&wasm, &build);
    let digest = hex::encode(Sha256::digest(&build));
    let mut plugin_took = Duration::ZERO;
    for base in [&scim_replica.base, &other.base] {
        plugin_took =
            plugin_took.max(serving(&http, base, "/api/v1/plugins", drift_digest, &digest).await);
    }

    let outcome = driver
        .await
        .unwrap_or_else(|e| panic!("the driver failed: {e}"));
    let load_took = began.elapsed();
    let tallies = std::mem::take(&mut *lock(&load.tallies));
    println!(
        "load: {TICKS} ticks at {TICKS_PER_SEC}/s, over in {:.1} s: {} new members' deliveries, {} redeliveries, {} SCIM users",
        load_took.as_secs_f64(),
        outcome.deliveries.len(),
        outcome.redeliveries.len(),
        outcome.users.len()
    );
    print_figures(&tallies);
    println!(
        "SCIM replica killed at {:.1} s and away {:.1} s; new policy served in {:.1} s, new plugin build in {:.1} s",
        killed_at.as_secs_f64(),
        away.as_secs_f64(),
        policy_took.as_secs_f64(),
        plugin_took.as_secs_f64(),
    );
    let drain_took = drained(&http, &scim_replica.base).await;
    println!(
        "queue drained {:.1} s after the load",
        drain_took.as_secs_f64()
    );

    for (kind, t) in &tallies {
        assert!(
            t.server_errors.is_empty(),
            "{kind:?} answered 5xx: {:?}",
            t.server_errors
        );
        assert!(
            t.unexpected.is_empty(),
            "{kind:?} answered unexpectedly: {:?}",
            t.unexpected
        );
        assert_eq!(t.abandoned, 0, "{kind:?}: requests no replica answered");
    }
    assert!(
        tallies.values().map(|t| t.refused + t.cut).sum::<usize>() > 0,
        "no request met the killed replica, so the restart proves nothing"
    );
    // A new delivery is accepted, or recognised when an attempt whose
    // answer was lost got through; a redelivery of an accepted one is only
    // ever recognised.
    for (d, answer) in &outcome.deliveries {
        assert!(
            matches!(answer, Some(Answer::Accepted | Answer::Duplicate)),
            "{}: {answer:?}",
            d.id
        );
    }
    for (id, answer) in &outcome.redeliveries {
        assert_eq!(*answer, Answer::Duplicate, "{id} redelivered");
    }

    // The shared twin, read from Neo4j.
    let store = neo4j().await;
    let accounts: Vec<StoredNode> = store
        .nodes("Account")
        .await
        .unwrap_or_else(|e| panic!("reading accounts: {e}"));
    let memberships = store
        .edges("MEMBER_OF")
        .await
        .unwrap_or_else(|e| panic!("reading memberships: {e}"));
    let by_key: BTreeMap<&str, &StoredNode> =
        accounts.iter().map(|a| (a.node.key.as_str(), a)).collect();
    let mut not_observed = 0;
    for (d, _) in &outcome.deliveries {
        let key = format!("github:{}", d.login);
        let account = by_key
            .get(key.as_str())
            .unwrap_or_else(|| panic!("{} was accepted but {key} is not in the twin", d.id));
        not_observed += usize::from(!account.provenance.observed());
        let theirs = memberships
            .iter()
            .filter(|m| m.edge.from.key == key)
            .count();
        assert_eq!(theirs, 1, "{key} is a member once");
        let history = store
            .history(&EntityId::Node(NodeRef::new("Account", key.clone())))
            .await
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(history.len(), 1, "{key} was added once: {history:?}");
    }

    // Each SCIM user is one resource and one account, as last sent.
    for user in &outcome.users {
        let id = user
            .id
            .as_deref()
            .unwrap_or_else(|| panic!("{} was never created", user.user_name));
        let key = format!("okta:{id}");
        let account = by_key
            .get(key.as_str())
            .unwrap_or_else(|| panic!("{} ({key}) is not in the twin", user.user_name));
        let same_name = accounts
            .iter()
            .filter(|a| text(a, "user_name").as_deref() == Some(user.user_name.as_str()))
            .count();
        assert_eq!(same_name, 1, "{} is one account", user.user_name);
        let active = account
            .node
            .properties
            .get("active")
            .and_then(|v| v.as_bool());
        assert_eq!(active, Some(user.active), "{key}: {account:?}");
        assert_eq!(
            text(account, "family_name").as_deref(),
            Some(user.family_name.as_str()),
            "{key}: {account:?}"
        );
        assert_eq!(
            text(account, "email").as_deref(),
            Some(user.email.as_str()),
            "{key}: {account:?}"
        );
        let history = store
            .history(&EntityId::Node(NodeRef::new("Account", key.clone())))
            .await
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        assert!(
            !history.is_empty() && history.len() <= user.writes,
            "{key}: {} changes sent, {history:?}",
            user.writes
        );
        let (status, found) = get_json(
            &http,
            &format!(
                "{}/scim/v2/okta/Users?filter=userName%20eq%20%22{}%22",
                scim_replica.base, user.user_name
            ),
            Some(SCIM_TOKEN),
        )
        .await;
        assert_eq!(status, 200, "{found}");
        assert_eq!(found["totalResults"], 1, "{}: {found}", user.user_name);
        assert_eq!(found["Resources"][0]["id"], id, "{found}");
    }
    println!(
        "twin: {} accounts; {} delivered members marked not observed by the restarted replica's sync",
        accounts.len(),
        not_observed
    );

    // Both replicas answer from the same twin.
    for base in [&scim_replica.base, &other.base] {
        let (status, listed) = get_json(
            &http,
            &format!("{base}/api/v1/entities?label=Account"),
            Some(VIEWER),
        )
        .await;
        assert_eq!(status, 200, "{listed}");
        assert_eq!(
            listed["entities"].as_array().map_or(0, Vec::len),
            accounts.len(),
            "{base} lists the shared twin's accounts"
        );
    }
}
