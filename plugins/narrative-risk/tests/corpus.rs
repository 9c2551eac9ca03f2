//! The detector against the labelled corpus: every committed campaign
//! scenario is reported, and benign text almost never is.

#![expect(clippy::panic, reason = "helpers of a test fail it by panicking")]

mod evaluation;

use evaluation::{Outcome, Summary, evaluate};
use org_mesh_narrative_corpus::{Label, corpus_dir, generate, load_dir, load_webhook_examples};

fn committed() -> Vec<org_mesh_narrative_corpus::Scenario> {
    let mut all = load_dir(corpus_dir().join("scenarios")).unwrap_or_else(|e| panic!("{e}"));
    all.extend(load_dir(corpus_dir().join("benign")).unwrap_or_else(|e| panic!("{e}")));
    all
}

fn report(outcomes: &[Outcome]) -> String {
    outcomes
        .iter()
        .map(|o| {
            format!(
                "{:?} {}: detected={} reported={} best_risk={:.3} fired={:?} expected={:?}",
                o.label, o.name, o.detected, o.reported, o.best_risk, o.fired, o.expected
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_committed_campaign_is_reported() {
    let outcomes: Vec<Outcome> = committed()
        .iter()
        .filter(|s| s.label == Label::Campaign)
        .map(|s| evaluate(s, "{}"))
        .collect();
    assert!(outcomes.len() >= 8, "{}", report(&outcomes));
    let missed: Vec<&Outcome> = outcomes.iter().filter(|o| !o.detected).collect();
    assert!(missed.is_empty(), "missed:\n{}", report(&outcomes));
}

#[test]
fn committed_benign_text_raises_no_campaign() {
    let outcomes: Vec<Outcome> = committed()
        .iter()
        .filter(|s| s.label == Label::Benign)
        .map(|s| evaluate(s, "{}"))
        .collect();
    assert!(outcomes.len() >= 12, "{}", report(&outcomes));
    let raised: Vec<&Outcome> = outcomes.iter().filter(|o| o.reported > 0).collect();
    assert!(raised.is_empty(), "raised:\n{}", report(&outcomes));
}

#[test]
fn real_public_comments_raise_no_campaign() {
    let examples = load_webhook_examples(&corpus_dir().join("webhooks-examples/comments.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    let outcome = evaluate(&examples, "{}");
    assert!(outcome.messages >= 5, "{outcome:?}");
    assert_eq!(outcome.reported, 0, "{outcome:?}");
}

#[test]
fn seeded_corpus_meets_the_targets() {
    let outcomes: Vec<Outcome> = generate(7, 60, 200)
        .iter()
        .map(|s| evaluate(s, "{}"))
        .collect();
    let summary = Summary::of(&outcomes);
    let missed: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.label == Label::Campaign && !o.detected)
        .collect();
    assert!(
        summary.recall() >= 0.95,
        "{}\nmissed:\n{}",
        summary.table(),
        report(&missed.into_iter().cloned().collect::<Vec<_>>())
    );
    assert!(
        summary.false_positive_rate() <= 0.01,
        "{}\n{}",
        summary.table(),
        report(
            &outcomes
                .iter()
                .filter(|o| o.flagged > 0)
                .cloned()
                .collect::<Vec<_>>()
        )
    );
}
