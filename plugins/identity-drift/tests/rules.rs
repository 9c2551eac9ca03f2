//! The rules over an in-memory twin: for each rule, the situation that must
//! raise it, the nearby situations that must not, and what the finding
//! carries (subject, key, score, attributes, evidence, remedy).

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};

use identity_drift::{Graph, RULES, description, detect};
use org_mesh_plugin::detector::{ChangeKind, DetectRequest, EdgeChange, Finding, NodeChange};
use org_mesh_plugin::graph::{Direction, Neighbour};
use org_mesh_plugin::types::{
    Edge, Node, NodeRef, PluginError, Properties, Provenance, StoredEdge, StoredNode, Value,
};

const OBSERVED: Option<&str> = None;
const GONE: Option<&str> = Some("2026-11-20T08:00:00+00:00");

fn provenance(source: &str, not_observed_since: Option<&str>) -> Provenance {
    Provenance {
        source: source.to_string(),
        first_seen: "2026-01-05T09:00:00+00:00".to_string(),
        last_seen: "2026-11-30T09:00:00+00:00".to_string(),
        not_observed_since: not_observed_since.map(str::to_string),
    }
}

fn properties(json: Json) -> Properties {
    let Json::Object(map) = json else {
        return Vec::new();
    };
    map.into_iter()
        .map(|(k, v)| {
            let value = match v {
                Json::Bool(b) => Value::Boolean(b),
                Json::Number(n) if n.is_i64() => Value::Integer(n.as_i64().unwrap_or_default()),
                Json::Number(n) => Value::Float(n.as_f64().unwrap_or_default()),
                Json::String(s) => Value::Text(s),
                Json::Array(items) => Value::Texts(
                    items
                        .into_iter()
                        .filter_map(|i| i.as_str().map(str::to_string))
                        .collect(),
                ),
                Json::Null | Json::Object(_) => Value::Null,
            };
            (k, value)
        })
        .collect()
}

fn to_json(props: &Properties) -> Json {
    Json::Object(
        props
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    Value::Null => Json::Null,
                    Value::Boolean(b) => json!(b),
                    Value::Integer(i) => json!(i),
                    Value::Float(f) => json!(f),
                    Value::Text(s) | Value::Timestamp(s) => json!(s),
                    Value::Texts(list) => json!(list),
                };
                (k.clone(), value)
            })
            .collect(),
    )
}

fn node_ref(label: &str, key: &str) -> NodeRef {
    NodeRef {
        label: label.to_string(),
        key: key.to_string(),
    }
}

/// The twin as a map, answering the two graph queries the way the host
/// does, not-observed edges included.
#[derive(Default)]
struct Twin {
    nodes: BTreeMap<(String, String), StoredNode>,
    edges: Vec<StoredEdge>,
}

impl Twin {
    fn put_node(&mut self, label: &str, key: &str, props: Json, gone: Option<&str>) -> &mut Self {
        let source = key.split(':').next().unwrap_or("twin");
        self.nodes.insert(
            (label.to_string(), key.to_string()),
            StoredNode {
                node: Node {
                    label: label.to_string(),
                    key: key.to_string(),
                    properties: properties(props),
                },
                provenance: provenance(source, gone),
            },
        );
        self
    }

    fn put_edge(
        &mut self,
        kind: &str,
        from: (&str, &str),
        to: (&str, &str),
        props: Json,
        gone: Option<&str>,
    ) -> &mut Self {
        let source = if kind == "IDENTITY_OF" {
            "identity-resolution"
        } else {
            from.1.split(':').next().unwrap_or("twin")
        };
        self.edges.push(StoredEdge {
            edge: Edge {
                kind: kind.to_string(),
                from: node_ref(from.0, from.1),
                to: node_ref(to.0, to.1),
                properties: properties(props),
            },
            provenance: provenance(source, gone),
        });
        self
    }

    /// A full scan of everything the twin holds.
    fn full_scan(&self, config: &Json) -> DetectRequest {
        DetectRequest {
            config: config.to_string(),
            full: true,
            nodes: self
                .nodes
                .values()
                .map(|n| NodeChange {
                    node: n.node.clone(),
                    kind: ChangeKind::Unchanged,
                    provenance: n.provenance.clone(),
                })
                .collect(),
            edges: Vec::new(),
        }
    }

    /// An incremental request in which only the named node changed.
    fn changed(&self, label: &str, key: &str, kind: ChangeKind) -> DetectRequest {
        let nodes = self
            .nodes
            .values()
            .filter(|n| n.node.label == label && n.node.key == key)
            .map(|n| NodeChange {
                node: n.node.clone(),
                kind,
                provenance: n.provenance.clone(),
            })
            .collect();
        DetectRequest {
            config: String::new(),
            full: false,
            nodes,
            edges: Vec::new(),
        }
    }
}

impl Graph for Twin {
    fn node(&self, node: &NodeRef) -> Result<Option<StoredNode>, PluginError> {
        Ok(self
            .nodes
            .get(&(node.label.clone(), node.key.clone()))
            .cloned())
    }

    fn neighbours(
        &self,
        node: &NodeRef,
        kind: &str,
        dir: Direction,
    ) -> Result<Vec<Neighbour>, PluginError> {
        let mut out = Vec::new();
        for edge in self.edges.iter().filter(|e| e.edge.kind == kind) {
            let (here, there) = match dir {
                Direction::Outgoing => (&edge.edge.from, &edge.edge.to),
                Direction::Incoming => (&edge.edge.to, &edge.edge.from),
            };
            if here.label != node.label || here.key != node.key {
                continue;
            }
            if let Some(other) = self.nodes.get(&(there.label.clone(), there.key.clone())) {
                out.push(Neighbour {
                    edge: edge.clone(),
                    node: other.clone(),
                });
            }
        }
        Ok(out)
    }
}

const JORDAN: (&str, &str) = ("Person", "jordan.okafor@example.com");
const OKTA_JORDAN: (&str, &str) = ("Account", "okta:c41d7b90");
const OCTOCAT: (&str, &str) = ("Account", "github:octocat");
const ACME: (&str, &str) = ("Organisation", "github:acme");
const API: (&str, &str) = ("Repository", "github:acme/api");

/// Jordan left: Okta deactivated their account, but their GitHub account
/// octocat is still an admin of acme and of acme/api.
fn offboarded_admin() -> Twin {
    let mut twin = Twin::default();
    twin.put_node(
        JORDAN.0,
        JORDAN.1,
        json!({"email": "jordan.okafor@example.com", "display_name": "Jordan Okafor"}),
        OBSERVED,
    )
    .put_node(
        OKTA_JORDAN.0,
        OKTA_JORDAN.1,
        json!({"provider": "okta", "user_name": "jordan.okafor@example.com", "active": false}),
        OBSERVED,
    )
    .put_node(
        OCTOCAT.0,
        OCTOCAT.1,
        json!({"provider": "github", "login": "octocat", "id": 1, "mfa_enabled": true}),
        OBSERVED,
    )
    .put_node(
        ACME.0,
        ACME.1,
        json!({"provider": "github", "login": "acme", "two_factor_requirement_enabled": true}),
        OBSERVED,
    )
    .put_node(
        API.0,
        API.1,
        json!({"provider": "github", "full_name": "acme/api", "default_branch": "main", "archived": false}),
        OBSERVED,
    )
    .put_edge(
        "IDENTITY_OF",
        OKTA_JORDAN,
        JORDAN,
        json!({"evidence": "idp-account", "confidence": 1.0}),
        OBSERVED,
    )
    .put_edge(
        "IDENTITY_OF",
        OCTOCAT,
        JORDAN,
        json!({"evidence": "explicit-mapping", "confidence": 1.0}),
        OBSERVED,
    )
    .put_edge("MEMBER_OF", OCTOCAT, ACME, json!({"role": "admin", "state": "active"}), OBSERVED)
    .put_edge("OWNS", ACME, API, json!({}), OBSERVED)
    .put_edge("HAS_PERMISSION", OCTOCAT, API, json!({"role": "admin"}), OBSERVED);
    twin
}

fn run(twin: &Twin, req: &DetectRequest) -> Result<Vec<Finding>, String> {
    detect(twin, req).map_err(|e| format!("{e:?}"))
}

fn of_rule<'a>(findings: &'a [Finding], rule: &str) -> Vec<&'a Finding> {
    findings.iter().filter(|f| f.rule == rule).collect()
}

fn only<'a>(findings: &'a [Finding], rule: &str) -> Result<&'a Finding, String> {
    match of_rule(findings, rule).as_slice() {
        [one] => Ok(one),
        other => Err(format!("{} findings of {rule}: {findings:?}", other.len())),
    }
}

fn remedy_json(finding: &Finding) -> Json {
    match &finding.remedy {
        Some(r) => json!({
            "action": r.action,
            "target": r.target.key,
            "parameters": to_json(&r.parameters),
        }),
        None => Json::Null,
    }
}

type TestResult = Result<(), String>;

#[test]
fn offboarded_org_admin_is_the_critical_variant_only() -> TestResult {
    let twin = offboarded_admin();
    let findings = run(&twin, &twin.full_scan(&json!({})))?;
    let admin = only(&findings, "idp-offboarded-has-admin")?;
    assert!(of_rule(&findings, "idp-offboarded-has-access").is_empty());
    assert_eq!(admin.subject.key, "github:octocat");
    assert_eq!(admin.key, "github:acme");
    assert_eq!(admin.score, 1.0);
    assert_eq!(
        admin.title,
        "octocat still has admin rights in acme after Jordan Okafor was offboarded"
    );
    let attributes = to_json(&admin.attributes);
    assert_eq!(attributes["role"], "admin");
    assert_eq!(attributes["person"], "jordan.okafor@example.com");
    assert_eq!(attributes["idp_account"], "okta:c41d7b90");
    assert_eq!(attributes["admin_repositories"], json!(["acme/api"]));
    assert_eq!(
        remedy_json(admin),
        json!({
            "action": "github.remove-org-member",
            "target": "github:octocat",
            "parameters": {"org": "acme", "login": "octocat"},
        })
    );
    let statements: Vec<(&str, &str)> = admin
        .evidence
        .iter()
        .map(|e| (e.statement.as_str(), e.provenance.source.as_str()))
        .collect();
    assert_eq!(
        statements,
        vec![
            ("jordan.okafor@example.com is deactivated in okta", "okta"),
            (
                "jordan.okafor@example.com is Jordan Okafor's okta account",
                "identity-resolution"
            ),
            (
                "octocat belongs to Jordan Okafor by explicit-mapping (confidence 1.00)",
                "identity-resolution"
            ),
            (
                "octocat is an active member of acme with role admin",
                "github"
            ),
            ("octocat has admin permission on acme/api", "github"),
            ("acme owns acme/api", "github"),
        ]
    );
    Ok(())
}

#[test]
fn offboarded_plain_member_is_the_access_variant() -> TestResult {
    let mut twin = offboarded_admin();
    twin.edges
        .retain(|e| e.edge.kind != "MEMBER_OF" && e.edge.kind != "HAS_PERMISSION");
    twin.put_edge(
        "MEMBER_OF",
        OCTOCAT,
        ACME,
        json!({"role": "member", "state": "active"}),
        OBSERVED,
    )
    .put_edge(
        "HAS_PERMISSION",
        OCTOCAT,
        API,
        json!({"role": "write"}),
        OBSERVED,
    );
    let findings = run(&twin, &twin.full_scan(&json!({})))?;
    assert!(of_rule(&findings, "idp-offboarded-has-admin").is_empty());
    let access = only(&findings, "idp-offboarded-has-access")?;
    assert_eq!(
        access.key, "github:acme",
        "repository access inside the org is not repeated"
    );
    assert_eq!(to_json(&access.attributes)["role"], "member");
    Ok(())
}

#[test]
fn active_or_silent_idp_account_is_not_offboarding() -> TestResult {
    for active in [json!(true), Json::Null] {
        let mut twin = offboarded_admin();
        let props =
            json!({"provider": "okta", "user_name": "jordan.okafor@example.com", "active": active});
        twin.put_node(OKTA_JORDAN.0, OKTA_JORDAN.1, props, OBSERVED);
        let findings = run(&twin, &twin.full_scan(&json!({})))?;
        assert!(
            !findings
                .iter()
                .any(|f| f.rule.starts_with("idp-offboarded")),
            "{active}: {findings:?}"
        );
    }
    Ok(())
}

#[test]
fn one_active_idp_account_of_two_keeps_the_person_onboarded() -> TestResult {
    let mut twin = offboarded_admin();
    twin.put_node(
        "Account",
        "azure-ad:77",
        json!({"provider": "azure-ad", "active": true}),
        OBSERVED,
    )
    .put_edge(
        "IDENTITY_OF",
        ("Account", "azure-ad:77"),
        JORDAN,
        json!({"confidence": 1.0}),
        OBSERVED,
    );
    let findings = run(&twin, &twin.full_scan(&json!({})))?;
    assert!(
        !findings
            .iter()
            .any(|f| f.rule.starts_with("idp-offboarded"))
    );
    Ok(())
}

#[test]
fn idp_account_that_vanished_counts_even_after_its_links_lapsed() -> TestResult {
    // Identity resolution no longer links a vanished IdP account, so both
    // identity edges and the person are marked not observed.
    let mut twin = offboarded_admin();
    twin.put_node(
        OKTA_JORDAN.0,
        OKTA_JORDAN.1,
        json!({"provider": "okta", "user_name": "jordan.okafor@example.com", "active": true}),
        GONE,
    );
    for edge in twin
        .edges
        .iter_mut()
        .filter(|e| e.edge.kind == "IDENTITY_OF")
    {
        edge.provenance.not_observed_since = GONE.map(str::to_string);
    }
    let findings = run(&twin, &twin.full_scan(&json!({})))?;
    let admin = only(&findings, "idp-offboarded-has-admin")?;
    assert_eq!(
        admin.evidence[0].statement,
        "jordan.okafor@example.com is no longer reported by okta"
    );
    assert_eq!(
        admin.evidence[0].provenance.not_observed_since.as_deref(),
        GONE
    );
    Ok(())
}

#[test]
fn lapsed_link_to_an_account_now_owned_by_someone_else_is_ignored() -> TestResult {
    let mut twin = offboarded_admin();
    for edge in twin
        .edges
        .iter_mut()
        .filter(|e| e.edge.kind == "IDENTITY_OF" && e.edge.from.key == OCTOCAT.1)
    {
        edge.provenance.not_observed_since = GONE.map(str::to_string);
    }
    twin.put_node("Person", "sam@example.com", json!({}), OBSERVED)
        .put_edge(
            "IDENTITY_OF",
            OCTOCAT,
            ("Person", "sam@example.com"),
            json!({"confidence": 1.0}),
            OBSERVED,
        );
    let findings = run(&twin, &twin.full_scan(&json!({})))?;
    assert!(
        !findings
            .iter()
            .any(|f| f.rule.starts_with("idp-offboarded"))
    );
    Ok(())
}

#[test]
fn weaker_identity_link_lowers_the_score() -> TestResult {
    let mut twin = offboarded_admin();
    twin.edges
        .retain(|e| !(e.edge.kind == "IDENTITY_OF" && e.edge.from.key == OCTOCAT.1));
    twin.put_edge(
        "IDENTITY_OF",
        OCTOCAT,
        JORDAN,
        json!({"evidence": "verified-email", "confidence": 0.8}),
        OBSERVED,
    );
    let findings = run(&twin, &twin.full_scan(&json!({})))?;
    let admin = only(&findings, "idp-offboarded-has-admin")?;
    assert!((admin.score - 0.8).abs() < 1e-9, "{}", admin.score);
    Ok(())
}

#[test]
fn pending_invitation_of_an_offboarded_person_is_reported() -> TestResult {
    let mut twin = offboarded_admin();
    twin.edges
        .retain(|e| e.edge.kind != "MEMBER_OF" && e.edge.kind != "HAS_PERMISSION");
    twin.put_edge(
        "MEMBER_OF",
        OCTOCAT,
        ACME,
        json!({"role": "member", "state": "pending"}),
        OBSERVED,
    );
    let findings = run(&twin, &twin.full_scan(&json!({})))?;
    let access = only(&findings, "idp-offboarded-has-access")?;
    assert_eq!(
        access.title,
        "octocat has a pending invitation to acme after Jordan Okafor was offboarded"
    );
    assert_eq!(to_json(&access.attributes)["state"], "pending");
    Ok(())
}

#[test]
fn access_from_outside_the_org_is_keyed_by_repository_without_remedy() -> TestResult {
    let mut twin = offboarded_admin();
    twin.edges.retain(|e| e.edge.kind != "MEMBER_OF");
    let findings = run(&twin, &twin.full_scan(&json!({})))?;
    let admin = only(&findings, "idp-offboarded-has-admin")?;
    assert_eq!(admin.key, "github:acme/api");
    assert!(admin.remedy.is_none());
    Ok(())
}

#[test]
fn not_observed_membership_is_no_access() -> TestResult {
    let mut twin = offboarded_admin();
    for edge in twin
        .edges
        .iter_mut()
        .filter(|e| e.edge.kind != "IDENTITY_OF")
    {
        edge.provenance.not_observed_since = GONE.map(str::to_string);
    }
    let findings = run(&twin, &twin.full_scan(&json!({})))?;
    assert!(findings.is_empty(), "{findings:?}");
    Ok(())
}

#[test]
fn a_change_to_the_idp_account_alone_re_evaluates_the_person() -> TestResult {
    let twin = offboarded_admin();
    let req = twin.changed(OKTA_JORDAN.0, OKTA_JORDAN.1, ChangeKind::Updated);
    let findings = run(&twin, &req)?;
    assert_eq!(
        only(&findings, "idp-offboarded-has-admin")?.key,
        "github:acme"
    );
    let unchanged = twin.changed(OKTA_JORDAN.0, OKTA_JORDAN.1, ChangeKind::Unchanged);
    assert!(run(&twin, &unchanged)?.is_empty());
    Ok(())
}

#[test]
fn a_changed_edge_brings_in_both_ends() -> TestResult {
    let twin = offboarded_admin();
    let membership = twin
        .edges
        .iter()
        .find(|e| e.edge.kind == "MEMBER_OF")
        .cloned()
        .ok_or("no membership")?;
    let req = DetectRequest {
        config: "{}".into(),
        full: false,
        nodes: Vec::new(),
        edges: vec![EdgeChange {
            edge: membership.edge,
            kind: ChangeKind::Added,
            provenance: membership.provenance,
        }],
    };
    let findings = run(&twin, &req)?;
    assert_eq!(of_rule(&findings, "idp-offboarded-has-admin").len(), 1);
    Ok(())
}

/// ghost is an active acme member nobody could link to a person.
fn with_ghost(link: Option<Option<&str>>, state: &str) -> Twin {
    let mut twin = offboarded_admin();
    let ghost = ("Account", "github:ghost");
    twin.put_node(
        ghost.0,
        ghost.1,
        json!({"provider": "github", "login": "ghost"}),
        OBSERVED,
    )
    .put_edge(
        "MEMBER_OF",
        ghost,
        ACME,
        json!({"role": "member", "state": state}),
        OBSERVED,
    );
    if let Some(gone) = link {
        twin.put_edge(
            "IDENTITY_OF",
            ghost,
            JORDAN,
            json!({"confidence": 0.8}),
            gone,
        );
    }
    twin
}

#[test]
fn unlinked_member_is_reported_once() -> TestResult {
    let twin = with_ghost(None, "active");
    let findings = run(&twin, &twin.full_scan(&json!({})))?;
    let unlinked = only(&findings, "account-unlinked")?;
    assert_eq!(unlinked.subject.key, "github:ghost");
    assert_eq!(
        unlinked.title,
        "ghost is a member of acme but is linked to no person"
    );
    assert_eq!(
        to_json(&unlinked.attributes)["organisations"],
        json!(["acme"])
    );
    Ok(())
}

#[test]
fn linked_or_only_invited_accounts_are_not_unlinked() -> TestResult {
    for twin in [
        with_ghost(Some(OBSERVED), "active"),
        with_ghost(None, "pending"),
    ] {
        let findings = run(&twin, &twin.full_scan(&json!({})))?;
        assert!(
            of_rule(&findings, "account-unlinked").is_empty(),
            "{findings:?}"
        );
    }
    // A link that lapsed leaves the account unlinked again.
    let twin = with_ghost(Some(GONE), "active");
    let findings = run(&twin, &twin.full_scan(&json!({})))?;
    assert_eq!(of_rule(&findings, "account-unlinked").len(), 1);
    Ok(())
}

#[test]
fn member_without_mfa_is_reported_and_unknown_mfa_is_not() -> TestResult {
    let mut twin = offboarded_admin();
    twin.put_node(
        OCTOCAT.0,
        OCTOCAT.1,
        json!({"provider": "github", "login": "octocat", "mfa_enabled": false}),
        OBSERVED,
    );
    let findings = run(&twin, &twin.full_scan(&json!({})))?;
    let mfa = only(&findings, "account-without-mfa")?;
    assert_eq!(mfa.subject.key, "github:octocat");
    assert_eq!(to_json(&mfa.attributes)["org_admin"], true);

    twin.put_node(
        OCTOCAT.0,
        OCTOCAT.1,
        json!({"provider": "github", "login": "octocat"}),
        OBSERVED,
    );
    let findings = run(&twin, &twin.full_scan(&json!({})))?;
    assert!(of_rule(&findings, "account-without-mfa").is_empty());
    Ok(())
}

fn with_contractor(membership: Option<&str>) -> Twin {
    let mut twin = offboarded_admin();
    let contractor = ("Account", "github:contractor");
    twin.put_node(
        contractor.0,
        contractor.1,
        json!({"provider": "github", "login": "contractor"}),
        OBSERVED,
    )
    .put_edge(
        "HAS_PERMISSION",
        contractor,
        API,
        json!({"role": "admin"}),
        OBSERVED,
    );
    if let Some(state) = membership {
        twin.put_edge(
            "MEMBER_OF",
            contractor,
            ACME,
            json!({"role": "member", "state": state}),
            OBSERVED,
        );
    }
    twin
}

#[test]
fn admin_from_outside_the_owning_org_is_reported() -> TestResult {
    let twin = with_contractor(None);
    let findings = run(&twin, &twin.full_scan(&json!({})))?;
    let outside = only(&findings, "outside-collaborator-admin")?;
    assert_eq!(outside.subject.key, "github:contractor");
    assert_eq!(outside.key, "github:acme/api");
    assert_eq!(outside.evidence.len(), 2);
    // A pending invitation does not make the contractor a member yet.
    let twin = with_contractor(Some("pending"));
    let findings = run(&twin, &twin.full_scan(&json!({})))?;
    assert_eq!(of_rule(&findings, "outside-collaborator-admin").len(), 1);
    Ok(())
}

#[test]
fn admin_who_is_an_active_member_is_not_outside() -> TestResult {
    let twin = with_contractor(Some("active"));
    let findings = run(&twin, &twin.full_scan(&json!({})))?;
    assert!(of_rule(&findings, "outside-collaborator-admin").is_empty());
    Ok(())
}

fn with_repo(props: Json) -> Twin {
    let mut twin = offboarded_admin();
    let mut all = json!({"provider": "github", "full_name": "acme/api", "default_branch": "main", "archived": false});
    if let (Some(all), Json::Object(extra)) = (all.as_object_mut(), props) {
        all.extend(extra);
    }
    twin.put_node(API.0, API.1, all, OBSERVED);
    twin
}

const BASELINE: &str = r#"{"baseline": {"enforce_admins": true, "required_approving_review_count": 2,
    "allow_force_pushes": false, "required_signatures": true, "dismiss_stale_reviews": true}}"#;

fn baseline() -> Json {
    serde_json::from_str(BASELINE).unwrap_or_default()
}

#[test]
fn unprotected_default_branch_with_restore_remedy() -> TestResult {
    let twin = with_repo(json!({"default_branch_protected": false}));
    let findings = run(&twin, &twin.full_scan(&baseline()))?;
    let unprotected = only(&findings, "default-branch-unprotected")?;
    assert_eq!(unprotected.subject.key, "github:acme/api");
    assert_eq!(unprotected.key, "main");
    assert_eq!(
        remedy_json(unprotected),
        json!({
            "action": "github.restore-branch-protection",
            "target": "github:acme/api",
            "parameters": {
                "repository": "acme/api", "branch": "main",
                "enforce_admins": true, "required_approving_review_count": 2,
                "dismiss_stale_reviews": true, "allow_force_pushes": false,
                "required_signatures": true,
            },
        })
    );
    Ok(())
}

#[test]
fn archived_or_unknown_protection_is_not_reported() -> TestResult {
    for props in [
        json!({"default_branch_protected": false, "archived": true}),
        json!({}),
    ] {
        let twin = with_repo(props);
        let findings = run(&twin, &twin.full_scan(&baseline()))?;
        assert!(of_rule(&findings, "default-branch-unprotected").is_empty());
        assert!(of_rule(&findings, "branch-protection-below-baseline").is_empty());
    }
    Ok(())
}

#[test]
fn protection_below_baseline_names_each_weaker_field() -> TestResult {
    let twin = with_repo(json!({
        "default_branch_protected": true,
        "protection_enforce_admins": false,
        "protection_required_approving_review_count": 1,
        "protection_allow_force_pushes": true,
        "protection_dismiss_stale_reviews": true,
        // required_signatures is unknown: not a violation.
    }));
    let findings = run(&twin, &twin.full_scan(&baseline()))?;
    let below = only(&findings, "branch-protection-below-baseline")?;
    assert_eq!(below.key, "main");
    let attributes = to_json(&below.attributes);
    assert_eq!(
        attributes["weaker_fields"],
        json!([
            "enforce_admins",
            "required_approving_review_count",
            "allow_force_pushes"
        ])
    );
    assert_eq!(attributes["enforce_admins"], false);
    assert_eq!(attributes["required_approving_review_count"], 1);
    assert_eq!(attributes["allow_force_pushes"], true);
    let lines: Vec<&str> = below
        .evidence
        .iter()
        .map(|e| e.statement.as_str())
        .collect();
    assert_eq!(
        lines,
        vec![
            "acme/api: enforce_admins is false on main, the baseline wants true",
            "acme/api: required_approving_review_count is 1 on main, the baseline wants at least 2",
            "acme/api: allow_force_pushes is true on main, the baseline wants false",
        ]
    );
    assert_eq!(
        remedy_json(below)["parameters"]["required_approving_review_count"],
        2
    );
    Ok(())
}

#[test]
fn protection_at_or_above_baseline_is_quiet() -> TestResult {
    let twin = with_repo(json!({
        "default_branch_protected": true,
        "protection_enforce_admins": true,
        "protection_required_approving_review_count": 3,
        "protection_allow_force_pushes": false,
        "protection_required_signatures": true,
        "protection_dismiss_stale_reviews": true,
    }));
    let findings = run(&twin, &twin.full_scan(&baseline()))?;
    assert!(of_rule(&findings, "branch-protection-below-baseline").is_empty());
    // Without a baseline nothing is compared.
    let findings = run(&twin, &twin.full_scan(&json!({})))?;
    assert!(of_rule(&findings, "branch-protection-below-baseline").is_empty());
    Ok(())
}

#[test]
fn org_without_required_two_factor() -> TestResult {
    let mut twin = offboarded_admin();
    twin.put_node(
        ACME.0,
        ACME.1,
        json!({"provider": "github", "login": "acme", "two_factor_requirement_enabled": false}),
        OBSERVED,
    );
    let findings = run(&twin, &twin.full_scan(&json!({})))?;
    let org = only(&findings, "org-2fa-not-required")?;
    assert_eq!(org.subject.key, "github:acme");
    assert_eq!(org.score, 1.0);
    Ok(())
}

#[test]
fn bad_config_names_the_field() -> TestResult {
    let twin = offboarded_admin();
    let result = detect(
        &twin,
        &twin.full_scan(&json!({"baseline": {"enforce_admins": "yes"}})),
    );
    assert!(
        matches!(&result, Err(PluginError::InvalidConfig(m)) if m.contains("enforce_admins")),
        "{result:?}"
    );
    Ok(())
}

#[test]
fn describe_lists_every_rule_with_its_severity() {
    let d = description();
    assert_eq!(d.name, "identity-drift");
    let rules: Vec<(String, String)> = d
        .rules
        .iter()
        .map(|r| (r.id.clone(), r.default_severity.clone()))
        .collect();
    let expected: Vec<(String, String)> = [
        ("idp-offboarded-has-access", "high"),
        ("idp-offboarded-has-admin", "critical"),
        ("account-unlinked", "medium"),
        ("account-without-mfa", "medium"),
        ("outside-collaborator-admin", "high"),
        ("default-branch-unprotected", "high"),
        ("branch-protection-below-baseline", "medium"),
        ("org-2fa-not-required", "medium"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(rules, expected);
    assert_eq!(RULES.len(), 8);
}
