//! Latency on loopback at a fixed request rate.
//!
//! SCIM: `org-mesh serve` (the release binary, `ORG_MESH_BENCH_BIN`) and
//! `scim2-server` (`.ci/setup` installs it), each loaded with the same
//! users, then Okta's look-up (`filter=userName eq "..."`) and Okta's
//! (de)activation PATCH on random existing users, at each size in
//! `ORG_MESH_BENCH_LATENCY_SIZES` (default 1,000 and 100,000). org-mesh has
//! no bulk endpoint, so it is loaded by POST, four at a time, within
//! `LOAD_LIMIT`; the peer is then loaded with as many users as org-mesh
//! took, by its bulk endpoint, its fastest way in.
//!
//! Webhooks (org-mesh alone, no peer does this): signed `member_added`
//! deliveries of new accounts, each timed from when it was sent to when
//! `/api/v1/findings` shows the finding it raises.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use org_mesh_bench::latency::{self, Run, Server};
use org_mesh_bench::stats::{Samples, Table, human, times_faster};
use tokio::sync::Mutex;

/// Requests per second of each timed run, and how many.
const RATE: f64 = 100.0;
const REQUESTS: usize = 2_000;
/// A timed run ends here even if requests are still waiting.
const RUN_LIMIT: Duration = Duration::from_secs(60);
/// Loading one server by POST (`ORG_MESH_BENCH_LOAD_LIMIT_SECS` to change
/// it), then waiting for org-mesh's twin to take in what was posted.
const LOAD_LIMIT: Duration = Duration::from_secs(600);
const SETTLE_LIMIT: Duration = Duration::from_secs(300);
const LOADERS: usize = 4;
const BULK_OPERATIONS: usize = 1_000;
const SEED: u64 = 7;

const DELIVERY_RATE: f64 = 10.0;
const DELIVERIES: usize = 300;
const POLL_EVERY: Duration = Duration::from_millis(2);
const FINDING_LIMIT: Duration = Duration::from_secs(30);

pub fn run(table: &mut Table) -> anyhow::Result<()> {
    let Some(bin) = latency::org_mesh_binary() else {
        eprintln!("latency: ORG_MESH_BENCH_BIN unset; nothing is measured");
        return Ok(());
    };
    let sizes: Vec<usize> = std::env::var("ORG_MESH_BENCH_LATENCY_SIZES")
        .unwrap_or_else(|_| "1000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-plugin-cache");
    // One thread for the client, so that it takes as little as it can
    // from the servers on a small machine.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        for size in sizes {
            scim(table, &bin, &cache, size).await?;
        }
        webhooks(table, &bin, &cache).await
    })
}

async fn scim(table: &mut Table, bin: &Path, cache: &Path, size: usize) -> anyhow::Result<()> {
    let ours = Arc::new(Server::org_mesh(bin, cache).await?);
    let peer = Arc::new(Server::scim2_server(&latency::scim2_server_binary()).await?);

    let started = Instant::now();
    let ours_ids = load_one_by_one(&ours, size).await?;
    let posted = started.elapsed();
    let loaded = ours_ids.len();
    eprintln!("latency: org-mesh took {loaded} of {size} users by POST in {posted:.1?}");
    let mut backlog = ours.settled(SETTLE_LIMIT).await?;
    let ours_load = started.elapsed();
    if backlog == 0 {
        eprintln!("latency: all in org-mesh's twin after {ours_load:.1?}");
    } else {
        eprintln!(
            "latency: {backlog} changes still on their way to org-mesh's twin after {ours_load:.1?}; timing SCIM while the twin takes them in"
        );
    }
    if loaded == 0 {
        bail!("org-mesh took no user");
    }
    let started = Instant::now();
    let peer_ids = peer.create_bulk(0..loaded, BULK_OPERATIONS).await?;
    let peer_load = started.elapsed();
    eprintln!("latency: scim2-server took {loaded} users by bulk in {peer_load:.1?}");

    for index in [0, loaded / 2, loaded - 1] {
        latency::agree(&ours, &peer, index, (&ours_ids[index], &peer_ids[index])).await?;
    }
    if backlog == 0 {
        backlog = ours.settled(SETTLE_LIMIT).await?;
    }

    let mut rng = fastrand::Rng::with_seed(SEED);
    let picks: Arc<Vec<usize>> = Arc::new((0..REQUESTS).map(|_| rng.usize(..loaded)).collect());
    let ours_ids = Arc::new(ours_ids);
    let peer_ids = Arc::new(peer_ids);

    let find = |server: Arc<Server>| {
        let picks = picks.clone();
        move |i: usize| {
            let (server, index) = (server.clone(), picks[i]);
            async move {
                let list = server.find(&latency::user_name(index)).await?;
                if list["totalResults"] != 1 {
                    bail!("user {index} matched {}", list["totalResults"]);
                }
                Ok(())
            }
        }
    };
    let patch = |server: Arc<Server>, ids: Arc<Vec<String>>| {
        let picks = picks.clone();
        move |i: usize| {
            let (server, id) = (server.clone(), ids[picks[i]].clone());
            // Half deactivations, half reactivations, as Okta sends both.
            async move { server.set_active(&id, i % 2 == 1).await }
        }
    };

    let configuration = |server: Arc<Server>| {
        move |_: usize| {
            let server = server.clone();
            async move { server.service_provider_config().await }
        }
    };
    let ours_floor = at_rate("org-mesh configuration", configuration(ours.clone())).await;
    let peer_floor = at_rate("scim2-server configuration", configuration(peer.clone())).await;
    let ours_find = at_rate("org-mesh filter", find(ours.clone())).await;
    let peer_find = at_rate("scim2-server filter", find(peer.clone())).await;
    let ours_patch = at_rate("org-mesh PATCH", patch(ours.clone(), ours_ids.clone())).await;
    let peer_patch = at_rate("scim2-server PATCH", patch(peer.clone(), peer_ids.clone())).await;

    let mut users = if loaded < size {
        format!("{loaded} users (of {size}: org-mesh's load stopped at the limit)")
    } else {
        format!("{loaded} users")
    };
    let ours_figure = if backlog == 0 {
        format!("{:.1} s", ours_load.as_secs_f64())
    } else {
        users.push_str(&format!(
            " (org-mesh's twin still taking in {backlog} queued changes)"
        ));
        format!(
            "SCIM answers {:.1} s; twin not caught up after {:.1} s",
            posted.as_secs_f64(),
            ours_load.as_secs_f64()
        )
    };
    let load = format!(
        "SCIM load of {users}: org-mesh by POST, {LOADERS} at a time, until all are in the twin; scim2-server by bulk, {BULK_OPERATIONS} per request"
    );
    table.row(
        &load,
        &ours_figure,
        &format!("{:.1} s", peer_load.as_secs_f64()),
        &if backlog == 0 {
            times_faster(peer_load, ours_load)
        } else {
            "-".to_owned()
        },
        "(reported)",
    );
    let rate = format!("{REQUESTS} requests at {RATE:.0}/s");
    rows(
        table,
        &format!("SCIM GET ServiceProviderConfig (token checked, no user read), {users}, {rate}"),
        &ours_floor,
        &peer_floor,
        "(reported)",
    );
    rows(
        table,
        &format!("SCIM filter-GET userName eq, {users}, {rate}"),
        &ours_find,
        &peer_find,
        TARGET,
    );
    rows(
        table,
        &format!("SCIM PATCH replace active, {users}, {rate}"),
        &ours_patch,
        &peer_patch,
        TARGET,
    );
    Ok(())
}

/// POSTs users 0.. to org-mesh, `LOADERS` at a time, until `size` or
/// `LOAD_LIMIT`; the ids of the users taken, without gaps.
async fn load_one_by_one(server: &Arc<Server>, size: usize) -> anyhow::Result<Vec<String>> {
    let next = Arc::new(AtomicUsize::new(0));
    let ids = Arc::new(Mutex::new(vec![None; size]));
    let limit = std::env::var("ORG_MESH_BENCH_LOAD_LIMIT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(LOAD_LIMIT, Duration::from_secs);
    let deadline = Instant::now() + limit;
    let mut loaders = tokio::task::JoinSet::new();
    for _ in 0..LOADERS {
        let (server, next, ids) = (server.clone(), next.clone(), ids.clone());
        loaders.spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= size || Instant::now() > deadline {
                    return anyhow::Ok(());
                }
                let id = server.create(index).await?;
                ids.lock().await[index] = Some(id);
            }
        });
    }
    while let Some(done) = loaders.join_next().await {
        done??;
    }
    let ids = std::mem::take(&mut *ids.lock().await);
    Ok(ids.into_iter().map_while(|id| id).collect())
}

async fn at_rate<F, Fut>(what: &str, call: F) -> Run
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let run = latency::at_rate(RATE, REQUESTS, RUN_LIMIT, call).await;
    eprintln!(
        "latency: {what}: {} answered, {} failed, {} late; p50 {}, p99 {}{}",
        run.samples.len(),
        run.failed,
        run.late,
        human(run.samples.p50()),
        human(run.samples.p99()),
        run.first_failure
            .as_deref()
            .map(|f| format!("; first failure: {f}"))
            .unwrap_or_default()
    );
    run
}

/// The target of the look-up and the write, at p99.
const TARGET: &str = "<= 1 ms at 100k users, >= 10x faster";

/// A p50 row, always only reported, and a p99 row against `p99_target`.
fn rows(table: &mut Table, what: &str, ours: &Run, peer: &Run, p99_target: &str) {
    for (label, pick, target) in [
        (
            "p50",
            Samples::p50 as fn(&Samples) -> Duration,
            "(reported)",
        ),
        ("p99", Samples::p99, p99_target),
    ] {
        table.row(
            &format!("{what}, {label}"),
            &figure(ours, pick, REQUESTS),
            &figure(peer, pick, REQUESTS),
            &times_faster(pick(&peer.samples), pick(&ours.samples)),
            target,
        );
    }
}

/// A percentile, flagged when some requests failed or were not answered in
/// time: their latency is then not in it.
fn figure(run: &Run, pick: fn(&Samples) -> Duration, sent: usize) -> String {
    let value = human(pick(&run.samples));
    let missing = run.failed + run.late;
    if missing == 0 {
        value
    } else {
        format!("{value} ({missing} of {sent} failed or unanswered)")
    }
}

async fn webhooks(table: &mut Table, bin: &Path, cache: &Path) -> anyhow::Result<()> {
    let server = Arc::new(Server::org_mesh(bin, cache).await?);
    // The first delivery checks the chain end to end before any timing,
    // and leaves the detector and policy warm.
    let warm = latency::member_added("bench-warm", 9_000_000)?;
    let first = finding_after_delivery(server.clone(), "bench-warm".into(), warm).await?;
    if first["rule"] != "account-unlinked" {
        bail!("a new member raised {first}, not account-unlinked");
    }
    let backlog = server.settled(SETTLE_LIMIT).await?;
    if backlog != 0 {
        bail!("{backlog} changes still queued after one delivery");
    }

    // Bodies are made beforehand: the published example is a large file
    // to read and parse.
    let bodies: Arc<Vec<(String, String)>> = Arc::new(
        (0..DELIVERIES)
            .map(|i| {
                let login = format!("bench-member-{i}");
                let body = latency::member_added(&login, 9_000_001 + i as u64)?;
                anyhow::Ok((login, body))
            })
            .collect::<anyhow::Result<_>>()?,
    );
    let run = latency::at_rate(
        DELIVERY_RATE,
        DELIVERIES,
        Duration::from_secs_f64(DELIVERIES as f64 / DELIVERY_RATE) + FINDING_LIMIT,
        |i| {
            let server = server.clone();
            let (login, body) = bodies[i].clone();
            async move { finding_after_delivery(server, login, body).await.map(drop) }
        },
    )
    .await;
    eprintln!(
        "latency: webhook to finding: {} found, {} failed, {} late{}",
        run.samples.len(),
        run.failed,
        run.late,
        run.first_failure
            .as_deref()
            .map(|f| format!("; first failure: {f}"))
            .unwrap_or_default()
    );
    table.row(
        &format!("webhook delivery to finding: signed member_added of a new account to its account-unlinked finding in /api/v1/findings (polled every {} ms), {DELIVERIES} deliveries at {DELIVERY_RATE:.0}/s, p50 / p99", POLL_EVERY.as_millis()),
        &format!(
            "{} / {}",
            figure(&run, Samples::p50, DELIVERIES),
            figure(&run, Samples::p99, DELIVERIES)
        ),
        "-",
        "-",
        "(reported)",
    );
    Ok(())
}

/// Delivers a new member `login` and waits for its finding; the finding.
async fn finding_after_delivery(
    server: Arc<Server>,
    login: String,
    body: String,
) -> anyhow::Result<serde_json::Value> {
    let status = server
        .deliver(&format!("{login}-delivery"), "organization", &body)
        .await?;
    if !(200..300).contains(&status) {
        bail!("the delivery for {login} was answered {status}");
    }
    let subject = latency::account_subject(&login);
    let started = Instant::now();
    loop {
        if let Some(found) = server.findings_about(&subject).await?.into_iter().next() {
            return Ok(found);
        }
        if started.elapsed() > FINDING_LIMIT {
            return None
                .with_context(|| format!("no finding about {subject} after {FINDING_LIMIT:?}"));
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}
