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
use org_mesh_bench::stats::{Table, human, ratio};

use crate::{mean_per_call, sample};

const CALLS: u32 = 20_000;

pub fn run(table: &mut Table) -> anyhow::Result<()> {
    let fixture = Fixture::new()?;
    let opa = Opa::new(&fixture)?;
    let compiled = Compiled::new(&fixture)?;
    let mut rule_by_rule = RuleByRule::new(&fixture)?;
    #[cfg(feature = "rvm")]
    let program = policy::Program::new(&fixture)?;
    #[cfg(feature = "rvm")]
    let mut vm = program.vm()?;

    #[cfg_attr(
        not(feature = "rvm"),
        expect(unused_mut, reason = "only the RVM counts disagreements")
    )]
    let mut rvm_disagrees = 0usize;
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
        // The bytecode compiler is younger than regorus's interpreter; a
        // finding it decides differently is reported rather than fatal, so
        // that its speed is still known alongside how far to trust it.
        #[cfg(feature = "rvm")]
        {
            let by_vm = policy::collect(policy::Program::eval(&mut vm, input)?)?;
            if by_vm != ours {
                eprintln!("policy: finding {i}: RVM decides {by_vm}, the interpreter {ours}");
                rvm_disagrees += 1;
            }
        }
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
    ];
    if cfg!(feature = "rvm") {
        means.push(("bytecode program (RVM)", Vec::new()));
    }
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
        #[cfg(feature = "rvm")]
        means[3].1.push(mean_per_call(CALLS, || {
            policy::Program::eval(&mut vm, input)
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
        let caveat = if engine.contains("RVM") && rvm_disagrees > 0 {
            format!(" (decides {rvm_disagrees} differently)")
        } else {
            String::new()
        };
        table.row(
            &format!(
                "policy decision, {engine}, mean of {} findings{caveat}",
                per_finding.len()
            ),
            &human(ours),
            &format!("OPA `opa bench` {}", human(opa_mean)),
            &format!("{:.1}x faster", ratio(opa_mean, ours)),
            ">= 10x",
        );
    }
    means.first().context("no engine measured").map(|_| ())
}
