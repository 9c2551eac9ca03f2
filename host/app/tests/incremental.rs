//! Incremental detection agrees with a whole-twin scan. A small
//! organisation (people with Okta and GitHub accounts, two organisations,
//! repositories) goes through seeded random changes of every kind the
//! identity-drift rules read: deactivations, IdP accounts vanishing and
//! coming back, memberships and permissions added, re-roled and removed,
//! repositories losing protection, archived, renamed and moved between
//! organisations, two-factor settings, verified e-mails. After each change
//! the findings brought up to date from the changes alone must equal, one
//! by one, those a whole-twin evaluation reaches, and the identity-drift
//! detector must have been given only the changes.
//!
//! Runs the real identity-drift component over an embedded twin; needs
//! `.ci/build-plugins`.

mod common;

use std::collections::BTreeSet;

use org_mesh_app::pipeline::{Evaluation, Twin};
use org_mesh_harness::Dice;
use org_mesh_model::{Batch, Coverage, Edge, Node, NodeRef, Properties, Value};

const PEOPLE: usize = 10;
const REPOS: usize = 6;
const ORGS: [&str; 2] = ["acme", "beta"];

fn props(pairs: &[(&str, Value)]) -> Properties {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect()
}

fn text(s: impl Into<String>) -> Value {
    Value::Text(s.into())
}

fn node_ref(label: &str, key: impl Into<String>) -> NodeRef {
    NodeRef {
        label: label.into(),
        key: key.into(),
    }
}

fn okta(i: usize) -> NodeRef {
    node_ref("Account", format!("okta:u{i}"))
}

fn github(i: usize) -> NodeRef {
    node_ref("Account", format!("github:dev{i}"))
}

fn org(o: usize) -> NodeRef {
    node_ref("Organisation", format!("github:{}", ORGS[o]))
}

fn repo(r: usize) -> NodeRef {
    node_ref("Repository", format!("github:r{r}"))
}

fn node(at: NodeRef, properties: Properties) -> Node {
    Node {
        label: at.label,
        key: at.key,
        properties,
    }
}

fn edge(kind: &str, from: NodeRef, to: NodeRef, properties: Properties) -> Edge {
    Edge {
        kind: kind.into(),
        from,
        to,
        properties,
    }
}

fn okta_account(i: usize, active: bool) -> Node {
    node(
        okta(i),
        props(&[
            ("provider", text("okta")),
            ("email", text(format!("person{i}@example.com"))),
            ("user_name", text(format!("person{i}@example.com"))),
            ("active", Value::Boolean(active)),
        ]),
    )
}

fn github_account(i: usize, email_of: usize, mfa: bool) -> Node {
    node(
        github(i),
        props(&[
            ("provider", text("github")),
            ("login", text(format!("dev{i}"))),
            (
                "verified_emails",
                Value::Texts(vec![format!("person{email_of}@example.com")]),
            ),
            ("mfa_enabled", Value::Boolean(mfa)),
        ]),
    )
}

fn organisation(o: usize, login: &str, two_factor: bool) -> Node {
    node(
        org(o),
        props(&[
            ("provider", text("github")),
            ("login", text(login)),
            ("two_factor_requirement_enabled", Value::Boolean(two_factor)),
        ]),
    )
}

fn repository(r: usize, name: &str, protected: bool, archived: bool) -> Node {
    node(
        repo(r),
        props(&[
            ("provider", text("github")),
            ("full_name", text(name)),
            ("default_branch", text("main")),
            ("default_branch_protected", Value::Boolean(protected)),
            ("archived", Value::Boolean(archived)),
        ]),
    )
}

fn membership(i: usize, o: usize, role: &str, state: &str) -> Edge {
    edge(
        "MEMBER_OF",
        github(i),
        org(o),
        props(&[("role", text(role)), ("state", text(state))]),
    )
}

fn permission(i: usize, r: usize, role: &str) -> Edge {
    edge(
        "HAS_PERMISSION",
        github(i),
        repo(r),
        props(&[("role", text(role))]),
    )
}

fn owns(o: usize, r: usize) -> Edge {
    edge("OWNS", org(o), repo(r), Properties::new())
}

/// The organisation to start from: everyone onboarded and a member of
/// one organisation, each repository owned by one of them.
fn initial() -> Vec<(&'static str, Batch)> {
    let okta_batch = Batch {
        nodes: (0..PEOPLE).map(|i| okta_account(i, true)).collect(),
        ..Batch::default()
    };
    let mut gh = Batch::default();
    for (o, name) in ORGS.iter().enumerate() {
        gh.nodes.push(organisation(o, name, true));
    }
    for r in 0..REPOS {
        gh.nodes
            .push(repository(r, &format!("acme/r{r}"), true, false));
        gh.edges.push(owns(r % ORGS.len(), r));
    }
    for i in 0..PEOPLE {
        gh.nodes.push(github_account(i, i, true));
        gh.edges
            .push(membership(i, i % ORGS.len(), "member", "active"));
        gh.edges.push(permission(i, i % REPOS, "write"));
    }
    vec![("okta", okta_batch), ("github", gh)]
}

/// One random change, as the connector that observes it would push it,
/// and what it is, for the failure message.
fn change(dice: &mut Dice) -> (&'static str, Batch, String) {
    let i = dice.below(PEOPLE);
    let o = dice.below(ORGS.len());
    let r = dice.below(REPOS);
    let records = |nodes: Vec<Node>, edges: Vec<Edge>| Batch {
        nodes,
        edges,
        complete: Vec::new(),
        partial: false,
    };
    let removal = |complete: Coverage| Batch {
        complete: vec![complete],
        partial: true,
        ..Batch::default()
    };
    match dice.below(12) {
        0 => {
            let active = dice.coin();
            (
                "okta",
                records(vec![okta_account(i, active)], Vec::new()),
                format!("okta u{i} active={active}"),
            )
        }
        1 => (
            "okta",
            removal(Coverage::Node(okta(i))),
            format!("okta u{i} no longer reported"),
        ),
        2 => {
            let role = ["member", "admin"][dice.below(2)];
            let state = ["active", "pending"][dice.below(2)];
            (
                "github",
                records(Vec::new(), vec![membership(i, o, role, state)]),
                format!("dev{i} {state} {role} of org {o}"),
            )
        }
        3 => (
            "github",
            removal(Coverage::Edge("MEMBER_OF".into(), github(i), org(o))),
            format!("dev{i} removed from org {o}"),
        ),
        4 => {
            let role = ["read", "write", "admin"][dice.below(3)];
            (
                "github",
                records(Vec::new(), vec![permission(i, r, role)]),
                format!("dev{i} {role} on r{r}"),
            )
        }
        5 => (
            "github",
            removal(Coverage::Edge("HAS_PERMISSION".into(), github(i), repo(r))),
            format!("dev{i} loses r{r}"),
        ),
        6 => {
            let (protected, archived) = (dice.coin(), dice.below(4) == 0);
            let name = format!("{}/r{r}-{}", ORGS[o], dice.below(3));
            (
                "github",
                records(vec![repository(r, &name, protected, archived)], Vec::new()),
                format!("r{r} is {name}, protected={protected} archived={archived}"),
            )
        }
        7 => {
            let mut batch = records(Vec::new(), vec![owns(o, r)]);
            batch
                .complete
                .push(Coverage::EdgesTo("OWNS".into(), repo(r)));
            ("github", batch, format!("r{r} moves to org {o}"))
        }
        8 => {
            let (mfa, email_of) = (dice.coin(), dice.below(PEOPLE));
            (
                "github",
                records(vec![github_account(i, email_of, mfa)], Vec::new()),
                format!("dev{i} mfa={mfa}, verified e-mail of person{email_of}"),
            )
        }
        9 => {
            let two_factor = dice.coin();
            let login = format!("{}{}", ORGS[o], dice.below(3));
            (
                "github",
                records(vec![organisation(o, &login, two_factor)], Vec::new()),
                format!("org {o} is {login}, 2fa required={two_factor}"),
            )
        }
        10 => (
            "github",
            removal(Coverage::Node(github(i))),
            format!("dev{i} no longer reported"),
        ),
        _ => (
            "github",
            records(vec![github_account(i, i, true)], Vec::new()),
            format!("dev{i} reported again"),
        ),
    }
}

/// What a user sees of a finding, without the observation times its
/// evidence carries (a kept finding keeps the times it was raised with).
fn seen(evaluation: &Evaluation) -> Vec<String> {
    let mut out: Vec<String> = evaluation
        .findings
        .iter()
        .map(|r| {
            let f = &r.finding;
            let evidence: Vec<String> = f
                .evidence
                .iter()
                .map(|e| format!("{} [{}:{}]", e.statement, e.subject.label, e.subject.key))
                .collect();
            format!(
                "{} {} {}:{} {:?} | {} | {:.3} | {:?} | {:?} | {:?} | {}",
                r.severity,
                f.rule,
                f.subject.label,
                f.subject.key,
                f.key,
                f.title,
                f.score,
                f.attributes,
                f.remedy,
                evidence,
                r.decision.as_ref().map(|d| d.may_act).unwrap_or(false)
            )
        })
        .collect();
    out.sort();
    out
}

async fn open_twin(state: &std::path::Path) -> Result<Twin, String> {
    common::copy_plugin(state, "plugins/dist/identity-drift")?;
    common::open_twin(
        state,
        "detectors:\n  - name: identity-drift\n    plugin: identity-drift\n    config: {}\n    grants: {graph: true}\n",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findings_from_changes_alone_equal_a_whole_twin_scan() {
    // Seeds that between them broke every rule that needed a widening
    // while the detector and the host learnt them; each runs on a fresh
    // twin.
    let mut reached = BTreeSet::new();
    for seed in [0x5eed_1dd1_f7a0_0001, 11, 222] {
        match run_sequence(seed, 120).await {
            Ok(rules) => reached.extend(rules),
            Err(e) => panic!("{e}"),
        }
    }
    // Every rule this organisation can break was broken at some step, so
    // that the agreement covers each of them.
    for rule in [
        "idp-offboarded-has-access",
        "idp-offboarded-has-admin",
        "account-unlinked",
        "account-without-mfa",
        "outside-collaborator-admin",
        "default-branch-unprotected",
        "org-2fa-not-required",
    ] {
        assert!(reached.contains(rule), "{rule} never raised: {reached:?}");
    }
}

/// Applies `steps` random changes from `seed`, checking after each that
/// the findings from the changes alone equal a whole-twin scan; returns
/// the rules that were raised on the way, or where they first differed.
async fn run_sequence(seed: u64, steps: usize) -> Result<BTreeSet<String>, String> {
    let state = tempfile::tempdir().map_err(|e| e.to_string())?;
    let twin = open_twin(state.path()).await?;
    let mut at = time::OffsetDateTime::now_utc();
    for (source, batch) in initial() {
        twin.ingest(source, at, batch)
            .await
            .map_err(|e| format!("{e:#}"))?;
    }
    let mut current = twin.evaluate().await.map_err(|e| format!("{e:#}"))?;

    let mut dice = Dice(seed);
    let mut history = Vec::new();
    let mut kept_any = false;
    let mut reached = BTreeSet::new();
    for step in 0..steps {
        at += time::Duration::seconds(1);
        let (source, batch, what) = change(&mut dice);
        history.push(what);
        let applied = twin
            .ingest(source, at, batch)
            .await
            .map_err(|e| format!("seed {seed} step {step} ({history:?}): {e:#}"))?;
        let next = twin
            .evaluate_changes(&current, &applied.changes)
            .await
            .map_err(|e| format!("{e:#}"))?;
        if next.incremental != ["identity-drift"] {
            return Err(format!(
                "seed {seed} step {step}: identity-drift was not given the changes alone: {:?}",
                next.skipped
            ));
        }
        let whole = twin.evaluate().await.map_err(|e| format!("{e:#}"))?;
        let (got, want) = (seen(&next), seen(&whole));
        if got != want {
            let missing: Vec<&String> = want.iter().filter(|f| !got.contains(f)).collect();
            let stale: Vec<&String> = got.iter().filter(|f| !want.contains(f)).collect();
            return Err(format!(
                "seed {seed} step {step}: the findings from the changes alone differ from a \
                 whole-twin scan\nchanges so far: {history:#?}\nmissing: {missing:#?}\n\
                 stale or extra: {stale:#?}"
            ));
        }
        kept_any |= next.findings.len() > 1;
        reached.extend(whole.findings.iter().map(|r| r.finding.rule.clone()));
        current = next;
    }
    if !kept_any {
        return Err(format!(
            "seed {seed}: the sequence never held more than one finding"
        ));
    }
    Ok(reached)
}
