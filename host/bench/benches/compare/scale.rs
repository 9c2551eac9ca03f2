//! A full scan of a large synthetic organisation: the real `org-mesh scan`
//! binary (`ORG_MESH_BENCH_BIN`, built by `.ci/bench`) over an embedded
//! twin the generator filled, with the shipped plugins and policies. The
//! scan runs under `/usr/bin/time` for its wall-clock time and peak
//! resident memory, and is stopped after `LIMIT_SECS`.
//!
//! `ORG_MESH_BENCH_SCALE_DIVISOR=N` shrinks the organisation N times for a
//! quick run. `ORG_MESH_BENCH_SCALE_KEEP=DIR` keeps a copy of the loaded
//! twin in DIR and, when DIR already holds one, scans a copy of that instead
//! of generating and loading again: for timing one change to the scan
//! after another on the same twin.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, bail};
use org_mesh_bench::stats::Table;
use org_mesh_bench::synth::{self, Shape};
use org_mesh_model::Timestamp;
use org_mesh_store::{EmbeddedStore, GraphStore};

const SEED: u64 = 11;
const LIMIT_SECS: u32 = 600;

pub fn run(table: &mut Table) -> anyhow::Result<()> {
    let Some(bin) = std::env::var_os("ORG_MESH_BENCH_BIN") else {
        eprintln!("scale: ORG_MESH_BENCH_BIN unset; the scan is not measured");
        return Ok(());
    };
    let divisor = std::env::var("ORG_MESH_BENCH_SCALE_DIVISOR")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(1);
    let shape = Shape::LARGE.scaled_down(divisor);
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("state");
    std::fs::create_dir(&state)?;

    let keep = std::env::var_os("ORG_MESH_BENCH_SCALE_KEEP").map(std::path::PathBuf::from);
    let kept = keep
        .as_ref()
        .map(|k| k.join(format!("twin-{divisor}.redb")));
    if let Some(kept) = kept.as_ref().filter(|k| k.exists()) {
        std::fs::copy(kept, state.join("twin.redb"))
            .with_context(|| format!("copying the kept twin {}", kept.display()))?;
        eprintln!("scale: scanning a copy of {}", kept.display());
    } else {
        load(shape, &state)?;
        if let Some(kept) = &kept {
            std::fs::create_dir_all(keep.as_deref().unwrap_or(Path::new(".")))?;
            std::fs::copy(state.join("twin.redb"), kept)
                .with_context(|| format!("keeping the loaded twin in {}", kept.display()))?;
        }
    }
    scan(&bin, shape, dir.path(), &state, table)
}

/// Generates the organisation and loads it into an embedded twin in
/// `state`.
fn load(shape: Shape, state: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let org = synth::generate(shape, SEED)?;
    let generated = started.elapsed();
    let loaded = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(async {
            let store = EmbeddedStore::open(state.join("twin.redb")).await?;
            let at = Timestamp::now_utc();
            let started = Instant::now();
            for batch in org.batches(10_000) {
                store.apply("synth", at, batch).await?;
            }
            anyhow::Ok(started.elapsed())
        })?;
    let records = org.records();
    drop(org);
    eprintln!(
        "scale: generated {records} records in {generated:.1?}, loaded in {loaded:.1?} ({:.0} records/s)",
        records as f64 / loaded.as_secs_f64()
    );
    Ok(())
}

fn scan(
    bin: &std::ffi::OsStr,
    shape: Shape,
    dir: &Path,
    state: &Path,
    table: &mut Table,
) -> anyhow::Result<()> {
    let config = dir.join("org-mesh.yaml");
    std::fs::write(&config, config_text(state)?)?;
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%e %M"])
        .arg("timeout")
        .arg(LIMIT_SECS.to_string())
        .arg(bin)
        .args(["scan", "--json", "--config"])
        .arg(&config)
        .env("ORG_MESH_LOG", "warn")
        .output()
        .context("running org-mesh scan under /usr/bin/time")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let Some((secs, kib)) = stderr
        .lines()
        .last()
        .and_then(|l| l.split_once(' '))
        .and_then(|(s, k)| Some((s.parse::<f64>().ok()?, k.parse::<f64>().ok()?)))
    else {
        bail!("no figures from /usr/bin/time: {stderr}");
    };
    let findings = String::from_utf8_lossy(&out.stdout).lines().count();
    let code = out.status.code().unwrap_or(-1);
    // A scan that left its detector out still exits 0, but it has measured
    // no detection at all.
    let left_out = stderr.contains("Left out of the scan");
    // A scan that failed or ran out of time has no figure worth quoting.
    let outcome = match code {
        0 if left_out => "the detector was left out".to_owned(),
        0 => format!("{findings} findings"),
        124 => format!("stopped at the {LIMIT_SECS} s limit"),
        _ => format!("failed (exit {code})"),
    };
    for line in stderr
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .take(5)
    {
        eprintln!("scale: {line}");
    }
    table.row(
        &format!(
            "full scan: {} people, {} accounts, {} repositories, {} edges; {outcome}",
            shape.people, shape.accounts, shape.repositories, shape.edges
        ),
        &format!("{secs:.1} s, peak {:.0} MiB", kib / 1024.0),
        "-",
        &format!(
            "{:.2}x the time, {:.2}x the memory budget",
            secs / 60.0,
            kib / (1024.0 * 1024.0)
        ),
        "<= 60 s, <= 1 GiB",
    );
    Ok(())
}

fn config_text(state: &Path) -> anyhow::Result<String> {
    let root = org_mesh_harness::root();
    let json = serde_json::json!({
        "state_dir": state,
        "plugins": {"dirs": [root.join("plugins/dist")]},
        "policies": {"dir": root.join("policies")},
        // An instance without `config` is checked as `null` against the
        // plugin's object schema and left out of the scan.
        "detectors": [{
            "name": "identity-drift",
            "plugin": "identity-drift",
            "config": {},
            "grants": {"graph": true},
        }],
    });
    // JSON is YAML; the config loader reads either.
    Ok(serde_json::to_string_pretty(&json)?)
}
