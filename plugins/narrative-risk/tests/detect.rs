//! The detector's findings on committed scenarios: what a campaign finding
//! carries and proposes, what it must never carry, and how configuration
//! changes what is reported.

#![expect(clippy::panic, reason = "helpers of a test fail it by panicking")]

use narrative_risk::{CAMPAIGN_RULE, RESPONSE_ACTION, STORM_RULE, detect};
use org_mesh_narrative_corpus::{Scenario, corpus_dir, load_file, to_records};
use org_mesh_plugin::detector::{DetectRequest, Finding};
use org_mesh_plugin::types::{PluginError, Value};

fn scenario(name: &str) -> Scenario {
    load_file(&corpus_dir().join(format!("scenarios/{name}.json")))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn request(scenarios: &[&Scenario], config: &str) -> DetectRequest {
    let mut req = DetectRequest {
        config: config.into(),
        full: true,
        nodes: Vec::new(),
        edges: Vec::new(),
    };
    for s in scenarios {
        let records = to_records(s);
        req.nodes.extend(records.nodes);
        req.edges.extend(records.edges);
    }
    req
}

fn findings(req: &DetectRequest) -> Vec<Finding> {
    detect(req).unwrap_or_else(|e| panic!("{e:?}"))
}

fn texts(f: &Finding, name: &str) -> Vec<String> {
    match f.attributes.iter().find(|(k, _)| k == name) {
        Some((_, Value::Texts(t))) => t.clone(),
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn a_campaign_finding_names_who_and_what_but_repeats_no_text() {
    let xz = scenario("xz-style-maintainer-handover");
    let found = findings(&request(&[&xz], "{}"));
    let [f] = found.as_slice() else {
        panic!("one campaign: {found:#?}");
    };
    assert_eq!(f.rule, CAMPAIGN_RULE);
    assert_eq!(f.subject.label, "Repository");
    let mut participants = texts(f, "participants");
    participants.sort();
    assert_eq!(
        participants,
        vec!["dmitri-alcott", "quentin-farro", "rendal-voss"]
    );
    assert_eq!(texts(f, "beneficiaries"), vec!["tavi-marsh"]);
    assert!(texts(f, "signals").contains(&"privilege-grant".to_string()));
    let remedy = f.remedy.as_ref().unwrap_or_else(|| panic!("no remedy"));
    assert_eq!(remedy.action, RESPONSE_ACTION);
    // Neither the finding nor the proposed issue repeats what was written.
    let everything = format!("{f:?}");
    for m in xz.messages.iter().filter(|m| m.body.len() > 40) {
        assert!(
            !everything.contains(&m.body[..40]),
            "message {} is quoted",
            m.id
        );
    }
}

#[test]
fn the_threshold_and_ignored_accounts_change_what_is_reported() {
    let xz = scenario("xz-style-maintainer-handover");
    assert!(findings(&request(&[&xz], r#"{"riskScore": 0.99}"#)).is_empty());
    let ignored = r#"{"ignore_accounts": ["rendal-voss", "dmitri-alcott", "quentin-farro"]}"#;
    assert!(findings(&request(&[&xz], ignored)).is_empty());
}

#[test]
fn campaigns_beyond_the_limit_are_summed_up_in_one_storm_finding() {
    let (a, b, c) = (
        scenario("xz-style-maintainer-handover"),
        scenario("release-now-cohort-burst"),
        scenario("security-team-deploy-key-ask"),
    );
    let all = findings(&request(&[&a, &b, &c], "{}"));
    assert_eq!(
        all.iter().filter(|f| f.rule == CAMPAIGN_RULE).count(),
        3,
        "{all:#?}"
    );
    let capped = findings(&request(&[&a, &b, &c], r#"{"max_campaigns": 1}"#));
    let rules: Vec<&str> = capped.iter().map(|f| f.rule.as_str()).collect();
    assert_eq!(rules, vec![CAMPAIGN_RULE, STORM_RULE]);
    let storm = &capped[1];
    assert!(
        storm
            .attributes
            .iter()
            .any(|(k, v)| k == "campaigns" && matches!(v, Value::Integer(2))),
        "{storm:?}"
    );
    // The one reported is the strongest.
    let strongest = all.iter().map(|f| f.score).fold(0.0_f64, f64::max);
    assert_eq!(capped[0].score, strongest);
}

#[test]
fn access_first_seen_with_its_repository_is_not_a_grant_after_the_campaign() {
    let xz = scenario("xz-style-maintainer-handover");
    let mut req = request(&[&xz], "{}");
    // The twin started watching when the grant already existed: the
    // repository and the permission arrive in the same first sync.
    let grant_seen = req
        .edges
        .iter()
        .find(|e| e.edge.kind == "HAS_PERMISSION" && e.edge.from.key == "github:tavi-marsh")
        .map(|e| e.provenance.first_seen.clone())
        .unwrap_or_else(|| panic!("no grant"));
    for n in &mut req.nodes {
        if n.node.label == "Repository" {
            n.provenance.first_seen = grant_seen.clone();
        }
    }
    for f in findings(&req) {
        assert!(texts(&f, "beneficiaries").is_empty(), "{f:?}");
    }
}

#[test]
fn bad_configuration_is_refused_by_name() {
    let xz = scenario("xz-style-maintainer-handover");
    let result = detect(&request(&[&xz], r#"{"weights": {"vibes": 1}}"#));
    assert!(
        matches!(&result, Err(PluginError::InvalidConfig(m)) if m.starts_with("weights.vibes")),
        "{result:?}"
    );
}
