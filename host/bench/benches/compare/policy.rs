//! The drift decision through regorus and through `opa bench`.
//!
//! Every finding of the fixture is decided by every engine; the figure of
//! each engine is its mean time per decision averaged over the findings,
//! and the ratio is OPA's over it. OPA is timed by its own `opa bench`
//! (prepared query, input parsed once, metrics off); regorus converts the
//! input on every call, as the host does.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use org_mesh_bench::opa::Opa;
use org_mesh_bench::policy::{self, Compiled, Fixture, RuleByRule};
use org_mesh_bench::stats::{Table, human, times_faster};

use crate::{mean_per_call, sample};

const CALLS: u32 = 20_000;

pub fn run(table: &mut Table) -> anyhow::Result<()> {
    let fixture = Fixture::new()?;
    let opa = Opa::new(&fixture)?;
    let compiled = Compiled::new(&fixture)?;
    let mut rule_by_rule = RuleByRule::new(&fixture)?;

    // The same answers first: a faster engine that decides differently
    // would be no comparison at all.
    for (i, input) in fixture.inputs.iter().enumerate() {
        let ours = fixture.decide(input)?;
        let peer = opa.decide(i)?;
        ensure!(ours == peer, "finding {i}: org-mesh {ours} but opa {peer}");
        let by_rule = policy::collect(compiled.eval(input)?)?;
        ensure!(
            by_rule == ours,
            "finding {i}: compiled {by_rule}, prepared {ours}"
        );
        let one_by_one = policy::collect(rule_by_rule.eval(input)?)?;
        ensure!(
            one_by_one == ours,
            "finding {i}: rule by rule {one_by_one}, gathered {ours}"
        );
        let by_vm = fixture.decide_bytecode(input)?;
        ensure!(
            by_vm == ours,
            "finding {i}: bytecode engine {by_vm}, interpreter {ours}"
        );
    }
    eprintln!(
        "policy: {} findings decide alike in org-mesh and opa",
        fixture.inputs.len()
    );

    let mut means: Vec<(&str, Vec<Duration>)> = vec![
        (
            "prepared engine, rules gathered into one evaluation (shipped)",
            Vec::new(),
        ),
        ("prepared engine, one evaluation per rule", Vec::new()),
        ("compiled policy per rule", Vec::new()),
        (
            "bytecode engine (`policies.evaluator: bytecode`), rules gathered",
            Vec::new(),
        ),
    ];
    let mut peer = Vec::new();
    let mut p50 = Vec::new();
    for (i, input) in fixture.inputs.iter().enumerate() {
        // Interleaved per finding, so a burst of load from other work on
        // the machine falls on both sides alike.
        peer.push(opa.bench(i)?);
        let samples = sample(CALLS as usize, || Ok(fixture.set.decide(input)?))?;
        p50.push(samples.p50());
        means[0].1.push(samples.mean());
        means[1]
            .1
            .push(mean_per_call(CALLS, || rule_by_rule.eval(input))?);
        means[2]
            .1
            .push(mean_per_call(CALLS, || compiled.eval(input))?);
        means[3].1.push(mean_per_call(CALLS, || {
            Ok(fixture.bytecode.decide(input)?)
        })?);
    }

    let average = |v: &[Duration]| v.iter().sum::<Duration>() / u32::try_from(v.len()).unwrap_or(1);
    let opa_mean = average(&peer);
    eprintln!(
        "policy: shipped decide p50 per finding {}",
        p50.iter().map(|d| human(*d)).collect::<Vec<_>>().join(", ")
    );
    for (engine, per_finding) in &means {
        let ours = average(per_finding);
        table.row(
            &format!(
                "policy decision, {engine}, mean of {} findings",
                per_finding.len()
            ),
            &human(ours),
            &format!("OPA `opa bench` {}", human(opa_mean)),
            &times_faster(opa_mean, ours),
            ">= 10x",
        );
    }
    // A bytecode decision that would let a fix run unattended is decided
    // again by the interpreter; the others are the VM's alone.
    let mut alone = (Vec::new(), Vec::new());
    for (i, input) in fixture.inputs.iter().enumerate() {
        if fixture.bytecode.decide(input)?.auto_fix != Some(true) {
            alone.0.push(means[3].1[i]);
            alone.1.push(peer[i]);
        }
    }
    let (ours, theirs) = (average(&alone.0), average(&alone.1));
    table.row(
        &format!(
            "policy decision, bytecode engine, the {} of {} findings it decides without the interpreter confirming",
            alone.0.len(),
            fixture.inputs.len()
        ),
        &human(ours),
        &format!("OPA `opa bench` {}", human(theirs)),
        &times_faster(theirs, ours),
        ">= 10x",
    );
    ensure!(
        fixture.bytecode.evaluator() == org_mesh_policy::Evaluator::Bytecode,
        "the bytecode engine was ruled out during the run"
    );
    means.first().context("no engine measured").map(|_| ())
}
