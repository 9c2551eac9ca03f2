use std::collections::BTreeSet;
use std::path::PathBuf;

use org_mesh_plugin::detector::{ChangeKind, EdgeChange, NodeChange};
use org_mesh_plugin::props::{get, get_text};
use org_mesh_plugin::types::Value;

use super::*;

fn scenarios() -> Vec<Scenario> {
    load_dir(corpus_dir().join("scenarios")).unwrap()
}

fn benign() -> Vec<Scenario> {
    load_dir(corpus_dir().join("benign")).unwrap()
}

#[test]
fn every_committed_scenario_loads_and_is_labelled_by_its_folder() {
    let campaigns = scenarios();
    let benign = benign();
    assert!(
        campaigns.len() >= 8,
        "{} campaign scenarios",
        campaigns.len()
    );
    assert!(benign.len() >= 12, "{} benign scenarios", benign.len());
    assert!(
        campaigns
            .iter()
            .all(|s| s.label == Label::Campaign && s.expect.campaign)
    );
    assert!(
        benign
            .iter()
            .all(|s| s.label == Label::Benign && !s.expect.campaign)
    );
    let names: BTreeSet<&str> = campaigns
        .iter()
        .chain(&benign)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        names.len(),
        campaigns.len() + benign.len(),
        "names are unique"
    );
}

#[test]
fn the_committed_campaigns_cover_every_signal_and_vary() {
    let campaigns = scenarios();
    let signals: BTreeSet<Signal> = campaigns
        .iter()
        .flat_map(|s| s.expect.signals.iter().copied())
        .collect();
    assert_eq!(signals.len(), 8, "{signals:?}");
    assert!(
        campaigns.iter().any(|s| s.grants.is_empty()),
        "some without a grant"
    );
    assert!(
        campaigns.iter().any(|s| !s.grants.is_empty()),
        "some with a grant"
    );
    let spans_two = |s: &Scenario| {
        s.messages
            .iter()
            .map(|m| m.repository.as_str())
            .collect::<BTreeSet<_>>()
            .len()
            > 1
    };
    assert!(campaigns.iter().any(spans_two), "some across repositories");
    assert!(
        campaigns
            .iter()
            .flat_map(|s| &s.accounts)
            .any(|a| a.created_at.is_none()),
        "some accounts of unknown age"
    );
}

#[test]
fn benign_scenarios_show_prior_activity_and_a_baseline() {
    for s in benign() {
        let days: BTreeSet<String> = s.messages.iter().map(|m| m.at[..10].to_string()).collect();
        assert!(
            days.len() >= 5,
            "{}: traffic on only {} days",
            s.name,
            days.len()
        );
        assert!(
            benign_has_bot_or_established(&s),
            "{}: no established account with earlier messages",
            s.name
        );
    }
    assert!(
        benign()
            .iter()
            .flat_map(|s| &s.accounts)
            .any(|a| a.kind == AccountKind::Bot),
        "a bot scenario"
    );
}

/// Some account other than a maintainer wrote at least five days before its
/// last message: the event is not the first thing the twin sees of it.
fn benign_has_bot_or_established(s: &Scenario) -> bool {
    s.accounts
        .iter()
        .filter(|a| !s.maintainers.contains(&a.login))
        .any(|a| {
            let times: Vec<_> = s
                .messages
                .iter()
                .filter(|m| m.author == a.login)
                .filter_map(|m| parse_time(&m.at))
                .collect();
            match (times.iter().min(), times.iter().max()) {
                (Some(first), Some(last)) => *last - *first >= time::Duration::days(5),
                _ => false,
            }
        })
}

#[test]
fn the_webhook_examples_load_as_one_benign_scenario() {
    let s = load_webhook_examples(&corpus_dir().join("webhooks-examples/comments.json")).unwrap();
    assert_eq!(s.label, Label::Benign);
    assert!(s.messages.len() >= 5, "{} texts", s.messages.len());
    assert!(s.maintainers.contains(&"Codertocat".to_string()));
    let records = to_records(&s);
    assert!(records.nodes.iter().any(|n| n.node.label == "Message"));
}

#[test]
fn the_generator_is_deterministic_and_gives_the_counts() {
    let a = generate(42, 9, 11);
    let b = generate(42, 9, 11);
    assert_eq!(a, b);
    assert_ne!(a, generate(43, 9, 11));
    assert_eq!(a.iter().filter(|s| s.label == Label::Campaign).count(), 9);
    assert_eq!(a.iter().filter(|s| s.label == Label::Benign).count(), 11);
    assert!(generate(1, 0, 0).is_empty());
}

#[test]
fn generated_scenarios_validate_and_vary() {
    for seed in [0, 1, 7, 12345, u64::MAX] {
        let all = generate(seed, 10, 14);
        for s in &all {
            validate(s).unwrap_or_else(|e| panic!("{}: {e}", s.name));
            // Serialising and reading back gives the same scenario, so a
            // generated corpus can be written out and loaded like the
            // committed one.
            let text = serde_json::to_string(s).unwrap();
            assert_eq!(&serde_json::from_str::<Scenario>(&text).unwrap(), s);
        }
        for s in all.iter().filter(|s| s.label == Label::Campaign) {
            let n = s.expect.participants.len();
            assert!((2..=8).contains(&n), "{}: {n} personas", s.name);
        }
        let grants = all
            .iter()
            .filter(|s| s.label == Label::Campaign && !s.grants.is_empty())
            .count();
        assert!(
            grants > 0 && grants < 10,
            "seed {seed}: {grants} campaigns with a grant"
        );
    }
}

#[test]
fn generated_campaign_messages_are_near_not_exact_duplicates() {
    let all = generate(99, 15, 0);
    let mut near = 0;
    for s in &all {
        let bodies: Vec<&str> = s
            .messages
            .iter()
            .filter(|m| s.expect.participants.contains(&m.author))
            .map(|m| m.body.as_str())
            .collect();
        let distinct: BTreeSet<&str> = bodies.iter().copied().collect();
        if bodies.len() >= 3 && distinct.len() * 2 >= bodies.len() {
            near += 1;
        }
    }
    assert!(near >= 10, "only {near} campaigns vary their wording");
}

#[test]
fn generated_benign_scenarios_have_background_traffic_before_the_event() {
    for s in generate(5, 0, 7) {
        let days: BTreeSet<&str> = s.messages.iter().map(|m| &m.at[..10]).collect();
        assert!(days.len() >= 10, "{}: {} days", s.name, days.len());
    }
}

fn find_node<'a>(nodes: &'a [NodeChange], label: &str, key: &str) -> &'a NodeChange {
    nodes
        .iter()
        .find(|n| n.node.label == label && n.node.key == key)
        .unwrap_or_else(|| panic!("no {label} {key}"))
}

fn edges<'a>(edges: &'a [EdgeChange], kind: &str, from: &str, to: &str) -> Vec<&'a EdgeChange> {
    edges
        .iter()
        .filter(|e| e.edge.kind == kind && e.edge.from.key == from && e.edge.to.key == to)
        .collect()
}

fn small() -> Scenario {
    serde_json::from_str(
        r#"{
  "name": "small", "label": "campaign", "modelled_on": "a test",
  "accounts": [
    {"login": "keeper", "created_at": "2012-03-04T05:06:07Z", "type": "User"},
    {"login": "puppet1", "created_at": "2024-05-01T10:00:00+02:00", "type": "User"},
    {"login": "helper", "type": "User"}
  ],
  "maintainers": ["keeper"],
  "messages": [
    {"id": "a1", "repository": "acme/zip", "kind": "issue", "thread": 7, "author": "puppet1",
     "author_association": "NONE", "at": "2024-05-10T09:00:00+02:00", "body": "Is this dead?",
     "mentions": ["keeper", "keeper"]},
    {"id": "a2", "repository": "acme/zip", "kind": "pull-request", "thread": 8, "author": "helper",
     "author_association": "CONTRIBUTOR", "at": "2024-05-11T09:00:00Z", "body": "Speeds up decoding."},
    {"id": "a3", "repository": "acme/zip", "kind": "issue-comment", "thread": 8, "author": "puppet1",
     "author_association": "NONE", "at": "2024-05-12T09:00:00Z", "body": "Merge it."},
    {"id": "a4", "repository": "acme/zip", "kind": "commit", "thread": "main", "author": "helper",
     "author_association": "CONTRIBUTOR", "at": "2024-06-01T12:00:00Z", "body": "Tidy tests"}
  ],
  "grants": [{"account": "helper", "repository": "acme/zip", "role": "write", "at": "2024-06-20T00:00:00Z"}],
  "expect": {"campaign": true, "participants": ["puppet1"], "signals": ["pressure", "privilege-grant"],
             "beneficiaries": ["helper"]}
}"#,
    )
    .unwrap()
}

#[test]
fn records_follow_the_record_model() {
    let s = small();
    validate(&s).unwrap();
    let r = to_records(&s);

    let puppet = find_node(&r.nodes, "Account", "github:puppet1");
    let p = &puppet.node.properties;
    assert_eq!(get_text(p, "provider"), Some("github"));
    assert_eq!(get_text(p, "login"), Some("puppet1"));
    assert_eq!(get_text(p, "type"), Some("User"));
    assert!(
        matches!(get(p, "created_at"), Some(Value::Timestamp(t)) if t == "2024-05-01T10:00:00+02:00")
    );
    assert_eq!(puppet.provenance.first_seen, "2024-05-01T10:00:00+02:00");
    assert_eq!(puppet.kind, ChangeKind::Added);
    assert_eq!(puppet.provenance.source, "github");
    assert_eq!(puppet.provenance.not_observed_since, None);

    // An account of unknown age has no created_at and is first seen with
    // its first message.
    let helper = find_node(&r.nodes, "Account", "github:helper");
    assert!(
        helper
            .node
            .properties
            .iter()
            .all(|(k, _)| k != "created_at")
    );
    assert_eq!(helper.provenance.first_seen, "2024-05-11T09:00:00Z");

    let repo = find_node(&r.nodes, "Repository", "github:acme/zip");
    assert_eq!(
        get_text(&repo.node.properties, "full_name"),
        Some("acme/zip")
    );

    let issue = find_node(&r.nodes, "Message", "github:acme/zip/issue/a1");
    let p = &issue.node.properties;
    assert_eq!(get_text(p, "kind"), Some("issue"));
    assert_eq!(get_text(p, "body"), Some("Is this dead?"));
    assert_eq!(get_text(p, "thread"), Some("github:acme/zip#7"));
    assert_eq!(get_text(p, "author_association"), Some("NONE"));
    assert_eq!(
        get_text(p, "url"),
        Some("https://github.com/acme/zip/issues/7")
    );
    assert!(
        matches!(get(p, "created_at"), Some(Value::Timestamp(t)) if t == "2024-05-10T09:00:00+02:00")
    );
    assert_eq!(issue.provenance.first_seen, "2024-05-10T09:00:00+02:00");
    assert_eq!(issue.provenance.last_seen, "2024-05-10T09:00:00+02:00");

    // A comment on a pull request links to the pull request.
    let comment = find_node(&r.nodes, "Message", "github:acme/zip/issue-comment/a3");
    let url = get_text(&comment.node.properties, "url").unwrap();
    assert!(
        url.starts_with("https://github.com/acme/zip/pull/8#issuecomment-"),
        "{url}"
    );
    let commit = find_node(&r.nodes, "Message", "github:acme/zip/commit/a4");
    assert_eq!(
        get_text(&commit.node.properties, "thread"),
        Some("github:acme/zip@main")
    );
    let url = get_text(&commit.node.properties, "url").unwrap();
    assert_eq!(
        url.len(),
        "https://github.com/acme/zip/commit/".len() + 40,
        "{url}"
    );

    assert_eq!(
        r.nodes.len(),
        3 + 1 + 4,
        "three accounts, one repository, four messages"
    );

    let authored = edges(
        &r.edges,
        "AUTHORED",
        "github:puppet1",
        "github:acme/zip/issue/a1",
    );
    assert_eq!(authored.len(), 1);
    assert!(authored[0].edge.properties.is_empty());
    assert_eq!(authored[0].edge.from.label, "Account");
    assert_eq!(authored[0].edge.to.label, "Message");
    let posted = edges(
        &r.edges,
        "POSTED_IN",
        "github:acme/zip/issue/a1",
        "github:acme/zip",
    );
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].edge.to.label, "Repository");
    // Mentioned twice, one edge.
    assert_eq!(
        edges(
            &r.edges,
            "MENTIONS",
            "github:acme/zip/issue/a1",
            "github:keeper"
        )
        .len(),
        1
    );

    let granted = edges(
        &r.edges,
        "HAS_PERMISSION",
        "github:helper",
        "github:acme/zip",
    );
    assert_eq!(granted.len(), 1);
    assert_eq!(get_text(&granted[0].edge.properties, "role"), Some("write"));
    assert_eq!(granted[0].provenance.first_seen, "2024-06-20T00:00:00Z");

    let kept = edges(
        &r.edges,
        "HAS_PERMISSION",
        "github:keeper",
        "github:acme/zip",
    );
    assert_eq!(kept.len(), 1);
    assert_eq!(get_text(&kept[0].edge.properties, "role"), Some("admin"));
    let since = parse_time(&kept[0].provenance.first_seen).unwrap();
    assert!(
        since < parse_time("2023-06-01T00:00:00Z").unwrap(),
        "{since}"
    );

    // 4 AUTHORED + 4 POSTED_IN + 1 MENTIONS + 2 HAS_PERMISSION.
    assert_eq!(r.edges.len(), 11);
    assert!(r.edges.iter().all(|e| e.kind == ChangeKind::Added));
}

#[test]
fn records_of_committed_scenarios_reference_existing_nodes() {
    for s in scenarios().into_iter().chain(benign()) {
        let r = to_records(&s);
        let keys: BTreeSet<(&str, &str)> = r
            .nodes
            .iter()
            .map(|n| (n.node.label.as_str(), n.node.key.as_str()))
            .collect();
        assert_eq!(keys.len(), r.nodes.len(), "{}: duplicate node", s.name);
        let mut seen = BTreeSet::new();
        for e in &r.edges {
            for end in [&e.edge.from, &e.edge.to] {
                assert!(
                    keys.contains(&(end.label.as_str(), end.key.as_str())),
                    "{}: {} to a missing {} {}",
                    s.name,
                    e.edge.kind,
                    end.label,
                    end.key
                );
            }
            assert!(
                seen.insert((&e.edge.kind, &e.edge.from.key, &e.edge.to.key)),
                "{}: two {} edges between the same nodes",
                s.name,
                e.edge.kind
            );
            assert!(parse_time(&e.provenance.first_seen).is_some());
        }
        assert!(
            r.nodes
                .iter()
                .all(|n| parse_time(&n.provenance.first_seen).is_some())
        );
    }
}

fn write_temp(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("narrative-corpus-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn small_json() -> serde_json::Value {
    serde_json::to_value(small()).unwrap()
}

#[test]
fn a_malformed_file_names_the_file_and_field() {
    // A wrong type deep inside.
    let mut v = small_json();
    v["messages"][2]["author_association"] = "STRANGER".into();
    let path = write_temp("small.json", &v.to_string());
    let err = load_file(&path).unwrap_err();
    assert_eq!(err.path(), path);
    assert_eq!(err.field(), Some("messages[2].author_association"));
    let text = err.to_string();
    assert!(
        text.contains("small.json") && text.contains("messages[2].author_association"),
        "{text}"
    );

    // An author who is not an account.
    let mut v = small_json();
    v["messages"][1]["author"] = "ghost".into();
    let path = write_temp("small.json", &v.to_string());
    let err = load_file(&path).unwrap_err();
    assert_eq!(err.field(), Some("messages[1].author"));
    assert!(err.to_string().contains("ghost"), "{err}");

    // A time without an offset.
    let mut v = small_json();
    v["grants"][0]["at"] = "2024-06-20T00:00:00".into();
    let path = write_temp("small.json", &v.to_string());
    assert_eq!(load_file(&path).unwrap_err().field(), Some("grants[0].at"));

    // A repeated id.
    let mut v = small_json();
    v["messages"][3]["id"] = "a1".into();
    let path = write_temp("small.json", &v.to_string());
    assert_eq!(
        load_file(&path).unwrap_err().field(),
        Some("messages[3].id")
    );

    // A grant or an expectation naming an unknown account.
    let mut v = small_json();
    v["grants"][0]["account"] = "nobody".into();
    let path = write_temp("small.json", &v.to_string());
    assert_eq!(
        load_file(&path).unwrap_err().field(),
        Some("grants[0].account")
    );
    let mut v = small_json();
    v["expect"]["participants"][0] = "nobody".into();
    let path = write_temp("small.json", &v.to_string());
    assert_eq!(
        load_file(&path).unwrap_err().field(),
        Some("expect.participants[0]")
    );

    // An unknown field and a missing one.
    let mut v = small_json();
    v["accounts"][0]["age"] = 3.into();
    let path = write_temp("small.json", &v.to_string());
    let err = load_file(&path).unwrap_err();
    assert_eq!(err.field(), Some("accounts[0].age"), "{err}");
    assert!(err.to_string().contains("age"), "{err}");
    let mut v = small_json();
    v.as_object_mut().unwrap().remove("expect");
    let path = write_temp("small.json", &v.to_string());
    let err = load_file(&path).unwrap_err();
    assert!(err.to_string().contains("expect"), "{err}");

    // A commit needs a branch, not a number.
    let mut v = small_json();
    v["messages"][3]["thread"] = 3.into();
    let path = write_temp("small.json", &v.to_string());
    assert_eq!(
        load_file(&path).unwrap_err().field(),
        Some("messages[3].thread")
    );

    // The file must carry the scenario's name.
    let path = write_temp("other.json", &small_json().to_string());
    assert_eq!(load_file(&path).unwrap_err().field(), Some("name"));

    // load_dir reports the bad file among good ones.
    let dir = path.parent().unwrap().join("dir");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("small.json"), small_json().to_string()).unwrap();
    std::fs::write(dir.join("zz-broken.json"), "{\"name\": \"zz-broken\", ").unwrap();
    let err = load_dir(&dir).unwrap_err();
    assert_eq!(err.path(), dir.join("zz-broken.json"));
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}
