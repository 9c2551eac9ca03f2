//! Runs the detector over the labelled corpus and scores it: whether each
//! campaign is reported, which signals fire where, and how much benign text
//! ends up in a reported campaign. Shared by the corpus test, which checks
//! the targets, and the evaluation bench, which prints the table.

#![allow(dead_code, reason = "the test and the bench each use part of this")]

use std::collections::{BTreeMap, BTreeSet};

use narrative_risk::{Named, Settings, campaigns};
use org_mesh_narrative_corpus::{Label, Scenario, to_records};
use org_mesh_plugin::detector::DetectRequest;

/// What the detector made of one scenario.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: String,
    pub label: Label,
    /// A reported campaign holds at least half the expected participants.
    pub detected: bool,
    /// Campaigns at or above the threshold.
    pub reported: usize,
    /// The highest risk of any campaign found, reported or not.
    pub best_risk: f64,
    /// Signals of the campaigns that concern this scenario: for a campaign,
    /// those holding an expected participant; for benign text, all.
    pub fired: BTreeSet<String>,
    pub expected: BTreeSet<String>,
    pub messages: usize,
    /// Messages of a benign scenario inside a reported campaign.
    pub flagged: usize,
}

pub fn evaluate(scenario: &Scenario, config: &str) -> Outcome {
    let records = to_records(scenario);
    let req = DetectRequest {
        config: config.to_string(),
        full: true,
        nodes: records.nodes,
        edges: records.edges,
    };
    let threshold = Settings::parse(config)
        .map(|s| s.config.risk_score)
        .unwrap_or_else(|e| panic!("{e:?}"));
    let (twin, found) = campaigns(&req).unwrap_or_else(|e| panic!("{}: {e:?}", scenario.name));
    let expected_participants: BTreeSet<String> = scenario
        .expect
        .participants
        .iter()
        .map(|l| format!("github:{l}"))
        .collect();
    let concerns = |c: &narrative_risk::Campaign| {
        scenario.label == Label::Benign
            || c.participants
                .iter()
                .any(|p| expected_participants.contains(p))
    };
    let reported: Vec<_> = found.iter().filter(|c| c.risk >= threshold).collect();
    let detected = reported.iter().any(|c| {
        let held = c
            .participants
            .iter()
            .filter(|p| expected_participants.contains(*p))
            .count();
        held * 2 >= expected_participants.len().max(1)
    });
    let fired = found
        .iter()
        .filter(|c| concerns(c))
        .flat_map(|c| c.signals().map(|s| s.as_str().to_string()))
        .collect();
    let flagged = if scenario.label == Label::Benign {
        reported
            .iter()
            .flat_map(|c| c.messages.iter().copied())
            .collect::<BTreeSet<usize>>()
            .len()
    } else {
        0
    };
    Outcome {
        name: scenario.name.clone(),
        label: scenario.label,
        detected,
        reported: reported.len(),
        best_risk: found.first().map_or(0.0, |c| c.risk),
        fired,
        expected: scenario
            .expect
            .signals
            .iter()
            .filter_map(|s| serde_json::to_value(s).ok()?.as_str().map(str::to_string))
            .collect(),
        messages: twin.messages.len(),
        flagged,
    }
}

/// Counts over a set of outcomes.
#[derive(Debug, Default)]
pub struct Summary {
    pub campaigns: usize,
    pub detected: usize,
    pub benign: usize,
    /// Benign scenarios with a reported campaign.
    pub benign_reported: usize,
    pub benign_messages: usize,
    pub benign_flagged: usize,
    /// Per signal: true positives, false positives, false negatives.
    pub signals: BTreeMap<String, (usize, usize, usize)>,
}

impl Summary {
    pub fn of(outcomes: &[Outcome]) -> Self {
        let mut s = Summary::default();
        for o in outcomes {
            match o.label {
                Label::Campaign => {
                    s.campaigns += 1;
                    s.detected += usize::from(o.detected);
                }
                Label::Benign => {
                    s.benign += 1;
                    s.benign_reported += usize::from(o.reported > 0);
                    s.benign_messages += o.messages;
                    s.benign_flagged += o.flagged;
                }
            }
            for kind in narrative_risk::Signal::ALL
                .iter()
                .map(|k| k.as_str().to_string())
            {
                let entry = s.signals.entry(kind.clone()).or_default();
                let (fired, expected) = (o.fired.contains(&kind), o.expected.contains(&kind));
                match (fired, expected, o.label) {
                    (true, true, Label::Campaign) => entry.0 += 1,
                    // A signal legitimately present in benign text (a bot's
                    // copies, an outage burst) is expected, but firing there
                    // still counts against its precision: alone it must not
                    // make a campaign, which the scenario-level counts check.
                    (true, _, Label::Benign) | (true, false, Label::Campaign) => entry.1 += 1,
                    (false, true, Label::Campaign) => entry.2 += 1,
                    _ => {}
                }
            }
        }
        s
    }

    pub fn recall(&self) -> f64 {
        ratio(self.detected, self.campaigns)
    }

    /// The share of benign messages that ended up in a reported campaign.
    pub fn false_positive_rate(&self) -> f64 {
        ratio(self.benign_flagged, self.benign_messages)
    }

    pub fn precision(&self) -> f64 {
        ratio(self.detected, self.detected + self.benign_reported)
    }

    pub fn table(&self) -> String {
        let mut out = String::from(
            "| signal | precision | recall | tp | fp | fn |\n|---|---|---|---|---|---|\n",
        );
        for (kind, (tp, fp, fn_)) in &self.signals {
            out.push_str(&format!(
                "| {kind} | {:.2} | {:.2} | {tp} | {fp} | {fn_} |\n",
                ratio(*tp, tp + fp),
                ratio(*tp, tp + fn_)
            ));
        }
        out.push_str(&format!(
            "\ncampaigns detected: {}/{} (recall {:.3}); benign scenarios with a reported campaign: {}/{} (scenario precision {:.3}); benign messages in a reported campaign: {}/{} ({:.2}%)\n",
            self.detected,
            self.campaigns,
            self.recall(),
            self.benign_reported,
            self.benign,
            self.precision(),
            self.benign_flagged,
            self.benign_messages,
            100.0 * self.false_positive_rate(),
        ));
        out
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}
