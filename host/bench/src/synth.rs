//! Seeded synthetic organisations: people, their identity-provider and
//! code-host accounts, one organisation per code host, repositories, and
//! the edges between them, in the shape the connectors write.
//!
//! The same shape and seed give the same records on every machine
//! (`fastrand`'s generator is defined by its seed alone), so a figure can
//! be reproduced and both sides of a comparison load the same data.

use anyhow::ensure;
use org_mesh_model::{Batch, Edge, Node, NodeRef, Properties, Value};

/// How big an organisation to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub people: usize,
    /// Accounts go round the providers in [`PROVIDERS`], each linked to a
    /// person, so each person has about `accounts / people` of them.
    pub accounts: usize,
    pub repositories: usize,
    /// All edges: one `IDENTITY_OF` per account, one `MEMBER_OF` per
    /// code-host account, one `OWNS` per repository, and `HAS_PERMISSION`
    /// edges for the rest.
    pub edges: usize,
}

impl Shape {
    /// The organisation of the scale bench.
    pub const LARGE: Shape = Shape {
        people: 100_000,
        accounts: 300_000,
        repositories: 50_000,
        edges: 1_000_000,
    };

    /// This shape shrunk by `factor`, for quick runs and tests.
    pub fn scaled_down(self, factor: usize) -> Shape {
        let f = factor.max(1);
        Shape {
            people: self.people / f,
            accounts: self.accounts / f,
            repositories: self.repositories / f,
            edges: self.edges / f,
        }
    }

    fn code_host_accounts(self) -> usize {
        (0..self.accounts)
            .filter(|i| PROVIDERS[i % PROVIDERS.len()] != "okta")
            .count()
    }

    /// The edges every organisation of this shape has before permissions.
    fn structural_edges(self) -> usize {
        self.accounts + self.code_host_accounts() + self.repositories
    }
}

/// The providers accounts go round, the identity provider first.
pub const PROVIDERS: [&str; 3] = ["okta", "github", "gitlab"];

/// One organisation's records, nodes before the edges that need them.
#[derive(Debug, Clone, PartialEq)]
pub struct Org {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

impl Org {
    /// The records in batches of at most `size` records, nodes first, as a
    /// connector that pages through an API hands them over.
    pub fn batches(&self, size: usize) -> Vec<Batch> {
        let size = size.max(1);
        let nodes = self.nodes.chunks(size).map(|chunk| Batch {
            nodes: chunk.to_vec(),
            ..Batch::default()
        });
        let edges = self.edges.chunks(size).map(|chunk| Batch {
            edges: chunk.to_vec(),
            ..Batch::default()
        });
        nodes.chain(edges).collect()
    }

    pub fn records(&self) -> usize {
        self.nodes.len() + self.edges.len()
    }
}

fn props(pairs: Vec<(&str, Value)>) -> Properties {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn text(s: impl Into<String>) -> Value {
    Value::Text(s.into())
}

fn org_of(provider: &str) -> NodeRef {
    NodeRef::new("Organisation", format!("{provider}:acme"))
}

fn account_key(i: usize) -> String {
    let provider = PROVIDERS[i % PROVIDERS.len()];
    format!("{provider}:user{}", i / PROVIDERS.len())
}

/// Makes an organisation of `shape` from `seed`.
pub fn generate(shape: Shape, seed: u64) -> anyhow::Result<Org> {
    ensure!(shape.people > 0, "an organisation needs people");
    ensure!(
        shape.edges >= shape.structural_edges(),
        "{} edges cannot hold the {} structural ones",
        shape.edges,
        shape.structural_edges()
    );
    // Half the repositories belong to each code host, and so do the
    // accounts; this bounds how many distinct permissions there can be.
    let possible = shape.code_host_accounts() * shape.repositories / 2;
    ensure!(
        shape.edges - shape.structural_edges() <= possible / 2,
        "{} permissions would crowd {possible} account-repository pairs",
        shape.edges - shape.structural_edges()
    );
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut nodes = Vec::with_capacity(shape.people + shape.accounts + shape.repositories + 2);
    let mut edges = Vec::with_capacity(shape.edges);

    for provider in &PROVIDERS[1..] {
        nodes.push(Node {
            label: "Organisation".into(),
            key: org_of(provider).key,
            properties: props(vec![(
                "two_factor_required",
                Value::Boolean(rng.u8(..10) > 0),
            )]),
        });
    }
    for p in 0..shape.people {
        nodes.push(Node {
            label: "Person".into(),
            key: format!("person:{p}"),
            properties: props(vec![("display_name", text(format!("Person {p}")))]),
        });
    }
    for a in 0..shape.accounts {
        let provider = PROVIDERS[a % PROVIDERS.len()];
        let key = account_key(a);
        let person = NodeRef::new("Person", format!("person:{}", a % shape.people));
        let account = NodeRef::new("Account", &key);
        let mut properties = vec![("provider", text(provider))];
        if provider == "okta" {
            // About one person in fifty has left.
            properties.push(("active", Value::Boolean(rng.u8(..50) > 0)));
            properties.push(("email", text(format!("user{}@acme.test", a / 3))));
        } else {
            properties.push(("login", text(format!("user{}", a / 3))));
            properties.push(("two_factor", Value::Boolean(rng.u8(..20) > 0)));
            let role = if rng.u8(..100) == 0 {
                "admin"
            } else {
                "member"
            };
            edges.push(edge(
                "MEMBER_OF",
                account.clone(),
                org_of(provider),
                props(vec![("role", text(role)), ("state", text("active"))]),
            ));
        }
        nodes.push(Node {
            label: "Account".into(),
            key,
            properties: props(properties),
        });
        edges.push(edge("IDENTITY_OF", account, person, Properties::new()));
    }
    for r in 0..shape.repositories {
        let provider = PROVIDERS[1 + r % (PROVIDERS.len() - 1)];
        let key = format!("{provider}:acme/repo{r}");
        nodes.push(Node {
            label: "Repository".into(),
            key: key.clone(),
            properties: props(vec![
                ("default_branch", text("main")),
                ("protected", Value::Boolean(rng.u8(..10) > 0)),
            ]),
        });
        edges.push(edge(
            "OWNS",
            org_of(provider),
            NodeRef::new("Repository", &key),
            Properties::new(),
        ));
    }
    permissions(shape, &mut rng, &mut edges);
    Ok(Org { nodes, edges })
}

/// Fills the edges up to the shape with distinct account-to-repository
/// permissions.
fn permissions(shape: Shape, rng: &mut fastrand::Rng, edges: &mut Vec<Edge>) {
    let code_hosts: Vec<usize> = (0..shape.accounts)
        .filter(|i| PROVIDERS[i % PROVIDERS.len()] != "okta")
        .collect();
    let wanted = shape.edges - shape.structural_edges();
    let hosts = PROVIDERS.len() - 1;
    let mut taken = std::collections::HashSet::with_capacity(wanted);
    while taken.len() < wanted && !code_hosts.is_empty() {
        let account = code_hosts[rng.usize(..code_hosts.len())];
        // A repository of the account's own code host.
        let host = account % PROVIDERS.len() - 1;
        let of_host = (shape.repositories + hosts - 1 - host) / hosts;
        if of_host == 0 {
            continue;
        }
        let repo = rng.usize(..of_host) * hosts + host;
        if !taken.insert((account, repo)) {
            continue;
        }
        let permission = match rng.u8(..100) {
            0..90 => "read",
            90..98 => "write",
            _ => "admin",
        };
        let provider = PROVIDERS[1 + host];
        edges.push(edge(
            "HAS_PERMISSION",
            NodeRef::new("Account", account_key(account)),
            NodeRef::new("Repository", format!("{provider}:acme/repo{repo}")),
            props(vec![("permission", text(permission))]),
        ));
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
