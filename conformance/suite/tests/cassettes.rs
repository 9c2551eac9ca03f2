//! The cassettes the conformance cases replay, and how they are made: the
//! built connector syncs through a recording server on 127.0.0.1 that
//! forwards to the GitHub replay (`conformance/replay`). The committed
//! cassette must be what a recording gives today, so a change to the
//! connector's requests or to the recorded fixtures shows up here, with
//! the command that records it anew. The connector's key-value calls and
//! clock readings are recorded in the host alongside; readings are compared
//! by clock and order, since their values are the time of recording. Needs `.ci/setup` and
//! `.ci/build-plugins`.
//!
//! Record anew with
//! `cargo test -p org-mesh-conformance --test cassettes -- --ignored`.

#![expect(clippy::panic, reason = "helpers of a test fail it by panicking")]

use std::collections::BTreeMap;
use std::path::PathBuf;

use org_mesh_conformance::Subject;
use org_mesh_conformance::case::{LimitsChange, ManifestChange};
use org_mesh_conformance::tape::Tape;
use org_mesh_harness::{GITHUB_TOKEN, replay, root};
use org_mesh_plugin_testkit::cassette::{Cassette, ClockReading, Recorder};
use org_mesh_runtime::{Grants, SecretSource};
use serde_json::json;

fn github_sync_cassette() -> PathBuf {
    root().join("conformance/cases/github-sync-replay/cassette.json")
}

/// One full sync of the recorded organisation by the built GitHub
/// connector, through a recorder.
async fn record_github_sync() -> Cassette {
    let scenario = replay().scenario("org-scan");
    let recorder = Recorder::start(&scenario.api_url).unwrap_or_else(|e| panic!("{e}"));
    let subject = Subject::open(&root().join("plugins/dist/github-connector"))
        .unwrap_or_else(|e| panic!("{e}: run .ci/build-plugins"));
    let tape = Tape::recording();
    let runtime = subject
        .runtime_on(LimitsChange::default(), Some(&tape))
        .unwrap_or_else(|e| panic!("{e}"));
    let plugin = subject
        .load(&runtime, &ManifestChange::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let token = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(token.path(), GITHUB_TOKEN).unwrap_or_else(|e| panic!("{e}"));
    let base = recorder.base_url();
    tape.set_base(&base);
    let grants = Grants {
        http_hosts: vec![base.trim_start_matches("http://").to_string()],
        secrets: BTreeMap::from([("token".into(), SecretSource::File(token.path().into()))]),
        kv: true,
        ..Grants::default()
    };
    // Conditional requests put the key-value store on the tape as well.
    let config = json!({
        "api_url": base,
        "org": "octokit-fixture-org",
        "per_page": 100,
        "conditional_requests": true,
    });
    let bound = plugin
        .bind("github", &config, grants)
        .unwrap_or_else(|e| panic!("{e:?}"));
    let out = bound
        .sync(None, &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.more, "one call syncs the recorded organisation");
    assert!(
        replay().pending(&scenario).is_empty(),
        "the sync left recorded requests unmade: {:?}",
        replay().pending(&scenario)
    );
    let mut cassette = recorder.finish().unwrap_or_else(|e| panic!("{e}"));
    (cassette.kv, cassette.clock) = tape.recorded();
    cassette
}

/// Which clock each reading was of, in order.
fn clocks(cassette: &Cassette) -> Vec<&'static str> {
    cassette.clock.iter().map(ClockReading::kind).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_committed_github_sync_cassette_is_what_a_recording_gives_today() {
    let committed = Cassette::load(&github_sync_cassette()).unwrap_or_else(|e| panic!("{e}"));
    let fresh = record_github_sync().await;
    assert!(
        fresh.exchanges.len() > 3,
        "a sync reads more than a few pages"
    );
    let differs = committed
        .exchanges
        .iter()
        .zip(&fresh.exchanges)
        .find(|(a, b)| a != b)
        .map(|(a, _)| format!("{} {}", a.method, a.target));
    assert!(
        !fresh.clock.is_empty(),
        "the SDK's client reads the wall clock after every answer"
    );
    assert_eq!(
        clocks(&committed),
        clocks(&fresh),
        "the clock readings differ from a recording made now; record anew: cargo test -p org-mesh-conformance --test cassettes -- --ignored"
    );
    assert_eq!(
        committed.kv, fresh.kv,
        "the key-value calls differ from a recording made now; record anew: cargo test -p org-mesh-conformance --test cassettes -- --ignored"
    );
    assert!(
        committed.exchanges == fresh.exchanges,
        "{} differs from a recording made now (first difference at {differs:?}, {} exchanges committed, {} recorded); record it anew: cargo test -p org-mesh-conformance --test cassettes -- --ignored",
        github_sync_cassette().display(),
        committed.exchanges.len(),
        fresh.exchanges.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes the cassette anew; run by hand after the connector's requests change"]
async fn record_the_github_sync_cassette() {
    let cassette = record_github_sync().await;
    cassette
        .save(&github_sync_cassette())
        .unwrap_or_else(|e| panic!("{e}"));
}
