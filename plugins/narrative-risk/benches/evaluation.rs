//! Precision and recall of the narrative detector on the labelled corpus:
//! the committed scenarios, the real public comments, and a seeded
//! generated corpus. Prints one table per corpus; run with
//! `cargo bench -p narrative-risk --bench evaluation [-- SEED CAMPAIGNS BENIGN]`.

#![expect(
    clippy::panic,
    reason = "a report that cannot read its corpus has nothing to say"
)]

#[path = "../tests/evaluation/mod.rs"]
mod evaluation;

use std::time::Instant;

use evaluation::{Outcome, Summary, evaluate};
use org_mesh_narrative_corpus::{corpus_dir, generate, load_dir, load_webhook_examples};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let seed = args.first().map_or(7, |s| *s as u64);
    let campaigns = args.get(1).copied().unwrap_or(200);
    let benign = args.get(2).copied().unwrap_or(1000);

    let mut committed = load_dir(corpus_dir().join("scenarios")).unwrap_or_else(|e| panic!("{e}"));
    committed.extend(load_dir(corpus_dir().join("benign")).unwrap_or_else(|e| panic!("{e}")));
    committed.push(
        load_webhook_examples(&corpus_dir().join("webhooks-examples/comments.json"))
            .unwrap_or_else(|e| panic!("{e}")),
    );
    report("committed scenarios and real public comments", &committed);

    let generated = generate(seed, campaigns, benign);
    report(
        &format!("generated, seed {seed}: {campaigns} campaigns, {benign} benign"),
        &generated,
    );
}

fn report(title: &str, scenarios: &[org_mesh_narrative_corpus::Scenario]) {
    let started = Instant::now();
    let outcomes: Vec<Outcome> = scenarios.iter().map(|s| evaluate(s, "{}")).collect();
    let elapsed = started.elapsed();
    let messages: usize = outcomes.iter().map(|o| o.messages).sum();
    println!("## {title}\n");
    println!("{}", Summary::of(&outcomes).table());
    println!(
        "{} scenarios, {messages} messages, detected in {:.2?} ({:.1} µs per message)\n",
        outcomes.len(),
        elapsed,
        elapsed.as_secs_f64() * 1e6 / messages.max(1) as f64
    );
}
