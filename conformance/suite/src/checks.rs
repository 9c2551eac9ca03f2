//! The checks a case can name. Each returns `Ok` when the plugin behaves, or
//! the violation in one sentence that names what was wrong.

use std::collections::BTreeSet;
use std::path::Path;

use org_mesh_model as model;
use org_mesh_plugin_testkit::cassette::Cassette;
use org_mesh_plugin_testkit::{Server, expect};
use org_mesh_runtime::{ActionRequest, Attachment, Capability, Failure, Incoming, Kind, Plugin};

use crate::case::{
    ActionInput, Allowed, Case, Changes, DetectInput, Exchange, HandleInput, Input, Setup,
    SyncInput,
};
use crate::subject::{Subject, imported_capabilities};
use crate::tape::Tape;

/// How one call ended.
#[derive(Debug)]
enum Ending {
    /// The output, rendered to compare runs.
    Ok(String),
    /// A WIT `plugin-error` case.
    Error(String),
    /// A connector's answer with a 4xx status.
    Rejected(u16),
    /// A trap, a broken limit or output the host refused: never acceptable.
    Broken(String),
}

/// Runs the case's check on one half of the case: the plugin loaded as the
/// half says, then the check.
pub async fn run(subject: &Subject, case: &Case, half: &Setup) -> Result<(), String> {
    let input = half.input.as_ref();
    // A cassette replays key-value calls and clock readings in the runtime
    // itself, so it must be in place before the plugin loads.
    let cassette = match (case.check, input) {
        (crate::case::Check::ReplaysCassette, Some(Input::Sync(sync))) => {
            let file = sync
                .cassette
                .as_ref()
                .ok_or("the replays-cassette check needs input.sync.cassette")?;
            Some(Cassette::load(&case.folder.join(file)).map_err(|e| e.to_string())?)
        }
        _ => None,
    };
    let tape = cassette.as_ref().map(Tape::replaying);
    let runtime = subject.runtime_on(half.limits, tape.as_ref())?;
    let plugin = subject
        .load(&runtime, &half.manifest)
        .await
        .map_err(|e| format!("did not load: {e}"))?;
    match (case.check, input, cassette, tape) {
        (crate::case::Check::Describe, ..) => describe(&plugin).await,
        (crate::case::Check::Capabilities, ..) => capabilities(&plugin),
        (crate::case::Check::Survives, Some(input), ..) => {
            let bound = subject.bind(&plugin, &half.config, None)?;
            for (what, ending) in call(subject, &bound, input, &case.folder).await? {
                allowed(&what, &ending, &case.allow)?;
            }
            Ok(())
        }
        (crate::case::Check::Deterministic, Some(input), ..) => {
            let bound = subject.bind(&plugin, &half.config, None)?;
            let first = call(subject, &bound, input, &case.folder).await?;
            let second = call(subject, &bound, input, &case.folder).await?;
            deterministic(&first, &second)
        }
        (crate::case::Check::IdempotentRecords, Some(input), ..) => {
            let bound = subject.bind(&plugin, &half.config, None)?;
            idempotent_records(&bound, input, &case.folder).await
        }
        (crate::case::Check::PlanExecuteAgree, Some(Input::Action(action)), ..) => {
            plan_execute_agree(subject, &plugin, half, action).await
        }
        (
            crate::case::Check::ReplaysCassette,
            Some(Input::Sync(sync)),
            Some(cassette),
            Some(tape),
        ) => replays_cassette(subject, &plugin, half, sync, &case.folder, &cassette, &tape).await,
        (check, ..) => Err(format!("the {check:?} check has no input it can use")),
    }
}

async fn describe(plugin: &Plugin) -> Result<(), String> {
    let first = plugin.describe().await.map_err(|e| e.to_string())?;
    let second = plugin.describe().await.map_err(|e| e.to_string())?;
    if first != second {
        return Err("describe gave two different answers".into());
    }
    if first.summary.trim().is_empty() {
        return Err("describe gives an empty summary".into());
    }
    if let Some(rule) = first.rules.iter().find(|r| r.title.trim().is_empty()) {
        return Err(format!("rule {} has no title", rule.id));
    }
    match plugin.kind() {
        Kind::Connector if !first.rules.is_empty() || !first.actions.is_empty() => {
            Err("a connector describes no rules and no actions".into())
        }
        Kind::Detector if !first.actions.is_empty() => {
            Err("a detector describes no actions".into())
        }
        Kind::Executor if !first.rules.is_empty() => Err("an executor describes no rules".into()),
        _ => Ok(()),
    }
}

fn capabilities(plugin: &Plugin) -> Result<(), String> {
    let used = imported_capabilities(plugin.imports());
    let unused: Vec<&str> = plugin
        .manifest()
        .capabilities
        .iter()
        .filter(|c| **c != Capability::Log && !used.contains(c))
        .map(|c| c.as_str())
        .collect();
    if unused.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the manifest asks for {} but the component never imports it",
            unused.join(", ")
        ))
    }
}

fn allowed(what: &str, ending: &Ending, allow: &[Allowed]) -> Result<(), String> {
    let (kind, detail) = match ending {
        Ending::Ok(_) => (Allowed::Ok, String::new()),
        Ending::Error(e) => (Allowed::Error, e.clone()),
        Ending::Rejected(status) => (Allowed::Rejected, format!("status {status}")),
        Ending::Broken(e) => return Err(format!("{what}: {e}")),
    };
    if allow.contains(&kind) {
        Ok(())
    } else {
        Err(format!(
            "{what} ended as {kind:?} ({detail}), expected one of {allow:?}"
        ))
    }
}

fn deterministic(first: &[(String, Ending)], second: &[(String, Ending)]) -> Result<(), String> {
    for ((what, a), (_, b)) in first.iter().zip(second) {
        if let Ending::Broken(e) = a {
            return Err(format!("{what}: {e}"));
        }
        let same = match (a, b) {
            (Ending::Ok(x), Ending::Ok(y)) | (Ending::Error(x), Ending::Error(y)) => x == y,
            (Ending::Rejected(x), Ending::Rejected(y)) => x == y,
            _ => false,
        };
        if !same {
            return Err(format!(
                "{what} gave different output for the same input: {a:?} then {b:?}"
            ));
        }
    }
    Ok(())
}

async fn idempotent_records(plugin: &Plugin, input: &Input, folder: &Path) -> Result<(), String> {
    let first = batch_of(plugin, input, folder).await?;
    let second = batch_of(plugin, input, folder).await?;
    if first.nodes.is_empty() && first.edges.is_empty() {
        return Err("the batch holds no records, so there is nothing to check".into());
    }
    if first != second {
        return Err("the same input gave two different batches".into());
    }
    unique_records(&first)
}

/// Each record once: a batch that names a node or an edge twice leaves the
/// stored result to the order the host applies them in.
fn unique_records(batch: &model::Batch) -> Result<(), String> {
    let mut nodes = BTreeSet::new();
    for n in &batch.nodes {
        if !nodes.insert((&n.label, &n.key)) {
            return Err(format!(
                "node {}:{} appears twice in one batch",
                n.label, n.key
            ));
        }
    }
    let mut edges = BTreeSet::new();
    for e in &batch.edges {
        if !edges.insert((&e.kind, &e.from, &e.to)) {
            return Err(format!(
                "edge {} from {}:{} to {}:{} appears twice in one batch",
                e.kind, e.from.label, e.from.key, e.to.label, e.to.key
            ));
        }
    }
    Ok(())
}

async fn batch_of(plugin: &Plugin, input: &Input, folder: &Path) -> Result<model::Batch, String> {
    let (batch, skipped) = match input {
        Input::Handle(h) => {
            let out = plugin
                .handle(&incoming(h, folder)?)
                .await
                .map_err(|e| e.to_string())?;
            (out.batch, out.skipped)
        }
        Input::Sync(s) => {
            let out = plugin
                .sync(s.cursor.clone(), &attachments(s, folder)?)
                .await
                .map_err(|e| e.to_string())?;
            (out.batch, out.skipped)
        }
        _ => return Err("records come from a handle or a sync input".into()),
    };
    if let Some(first) = skipped.first() {
        return Err(format!(
            "the host refused {} record(s), first: {first}",
            skipped.len()
        ));
    }
    Ok(batch)
}

async fn plan_execute_agree(
    subject: &Subject,
    plugin: &Plugin,
    half: &Setup,
    action: &ActionInput,
) -> Result<(), String> {
    let steps = half.server.iter().map(step).collect();
    let server = Server::start(steps).map_err(|e| format!("cannot start the server: {e}"))?;
    let api = format!("{}{}", server.base_url(), half.server_path);
    let bound = subject.bind(plugin, &half.config, Some(&api))?;
    let mut verdict = Ok(());
    for request in actions(&bound, action)? {
        verdict = agree(&bound, &request).await;
        if verdict.is_err() {
            break;
        }
    }
    let finished = server.finish();
    verdict?;
    finished
        .check()
        .map_err(|e| format!("the HTTP exchanges differ from the script: {e}"))
}

/// The plan, then `execute` held to it as serve holds an approved fix, then
/// `execute` again. Every call the execution reports, reads included, must
/// be one the plan announced.
async fn agree(plugin: &Plugin, request: &ActionRequest) -> Result<(), String> {
    let plan = plugin.plan(request).await.map_err(|e| e.to_string())?;
    let first = plugin
        .execute_within(request, &plan)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(extra) = first.calls.iter().find(|made| {
        !plan
            .calls
            .iter()
            .any(|planned| planned.covers(&made.method, &made.url))
    }) {
        return Err(format!(
            "{}: execute made {} {}, which plan did not announce",
            request.kind, extra.method, extra.url
        ));
    }
    if plan.calls.is_empty() && first.changed {
        return Err(format!(
            "{}: plan announced no calls but execute changed the target",
            request.kind
        ));
    }
    let second = plugin
        .execute_within(request, &plan)
        .await
        .map_err(|e| e.to_string())?;
    if second.changed {
        return Err(format!(
            "{}: a second execute with the same idempotency key changed the target again",
            request.kind
        ));
    }
    Ok(())
}

/// Syncs until the connector says it is done, answered only by the
/// cassette. A request the cassette does not expect gets a 500, so the
/// sync usually fails too; the cassette's complaint names the request and
/// comes first. Key-value calls and clock readings come from the cassette
/// too, through the runtime's `tape`, and must match it as strictly.
async fn replays_cassette(
    subject: &Subject,
    plugin: &Plugin,
    half: &Setup,
    sync: &SyncInput,
    folder: &Path,
    cassette: &Cassette,
    tape: &Tape,
) -> Result<(), String> {
    let server = Server::start_with(|base| cassette.steps(base))
        .map_err(|e| format!("cannot start the cassette's server: {e}"))?;
    tape.set_base(&server.base_url());
    let bound = subject.bind(plugin, &half.config, Some(&server.base_url()))?;
    let synced = sync_to_the_end(&bound, sync, folder).await;
    server
        .finish()
        .check()
        .map_err(|e| format!("the requests differ from the cassette: {e}"))?;
    tape.check()
        .map_err(|e| format!("the host calls differ from the cassette: {e}"))?;
    if synced?.nodes.is_empty() {
        return Err("the replayed sync yields no records".into());
    }
    Ok(())
}

/// The batches of every `sync` call until `more` is unset, merged.
async fn sync_to_the_end(
    plugin: &Plugin,
    sync: &SyncInput,
    folder: &Path,
) -> Result<model::Batch, String> {
    const MAX_CALLS: usize = 100;
    let attachments = attachments(sync, folder)?;
    let mut cursor = sync.cursor.clone();
    let mut batch = model::Batch::default();
    for _ in 0..MAX_CALLS {
        let out = plugin
            .sync(cursor.clone(), &attachments)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(first) = out.skipped.first() {
            return Err(format!(
                "the host refused {} record(s), first: {first}",
                out.skipped.len()
            ));
        }
        batch.nodes.extend(out.batch.nodes);
        batch.edges.extend(out.batch.edges);
        if !out.more {
            return Ok(batch);
        }
        cursor = out.cursor;
    }
    Err(format!("sync still had more after {MAX_CALLS} calls"))
}

fn step(exchange: &Exchange) -> org_mesh_plugin_testkit::Step {
    let mut s = expect(&exchange.method, &exchange.target);
    if let Some(body) = &exchange.body {
        s = s.body(body.clone());
    }
    match &exchange.answer {
        Some(answer) => s.answer(exchange.status, answer),
        None => s.answer_text(exchange.status, ""),
    }
}

/// Every call the input makes, each with what it was and how it ended.
async fn call(
    subject: &Subject,
    plugin: &Plugin,
    input: &Input,
    folder: &Path,
) -> Result<Vec<(String, Ending)>, String> {
    Ok(match input {
        Input::Handle(h) => {
            let ending = match plugin.handle(&incoming(h, folder)?).await {
                Ok(out) if !out.skipped.is_empty() => refused(&out.skipped),
                Ok(out) if (400..500).contains(&out.status) => Ending::Rejected(out.status),
                Ok(out) => Ending::Ok(format!("{} {:?}", out.status, out.batch)),
                Err(e) => ending_of(e.failure),
            };
            vec![("handle".into(), ending)]
        }
        Input::Sync(s) => {
            let ending = match plugin
                .sync(s.cursor.clone(), &attachments(s, folder)?)
                .await
            {
                Ok(out) if !out.skipped.is_empty() => refused(&out.skipped),
                Ok(out) => Ending::Ok(format!("{:?} {:?} {}", out.batch, out.cursor, out.more)),
                Err(e) => ending_of(e.failure),
            };
            vec![("sync".into(), ending)]
        }
        Input::Detect(d) => {
            let changes = change_set(d, folder)?;
            subject.graph.hold(&changes);
            let ending = match plugin.detect(d.full, &changes).await {
                Ok(out) if !out.rejected.is_empty() => refused(&out.rejected),
                Ok(out) => Ending::Ok(format!("{:?}", out.findings)),
                Err(e) => ending_of(e.failure),
            };
            vec![("detect".into(), ending)]
        }
        Input::Action(a) => {
            let mut endings = Vec::new();
            for request in actions(plugin, a)? {
                let plan = match plugin.plan(&request).await {
                    Ok(p) => Ending::Ok(format!("{p:?}")),
                    Err(e) => ending_of(e.failure),
                };
                endings.push((format!("plan {}", request.kind), plan));
                let execute = match plugin.execute(&request).await {
                    Ok(o) => Ending::Ok(format!("{o:?}")),
                    Err(e) => ending_of(e.failure),
                };
                endings.push((format!("execute {}", request.kind), execute));
            }
            endings
        }
    })
}

fn ending_of(failure: Failure) -> Ending {
    match failure {
        Failure::Plugin(p) => Ending::Error(p.to_string()),
        other => Ending::Broken(other.to_string()),
    }
}

fn refused(what: &[String]) -> Ending {
    Ending::Broken(format!(
        "returned output the host refused ({} item(s)), first: {}",
        what.len(),
        what.first().map(String::as_str).unwrap_or_default()
    ))
}

fn incoming(h: &HandleInput, folder: &Path) -> Result<Incoming, String> {
    Ok(Incoming {
        method: h.method.clone(),
        path: h.path.clone(),
        headers: h
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect(),
        body: h.body.bytes(folder)?,
    })
}

fn attachments(s: &SyncInput, folder: &Path) -> Result<Vec<Attachment>, String> {
    s.attachments
        .iter()
        .map(|a| {
            Ok(Attachment {
                name: a.name.clone(),
                content: a.body.bytes(folder)?,
            })
        })
        .collect()
}

fn change_set(d: &DetectInput, folder: &Path) -> Result<model::ChangeSet, String> {
    match &d.changes {
        Changes::File(file) => {
            let path = folder.join(file);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            serde_json::from_str(&text)
                .map_err(|e| format!("{} is not a change set: {e}", path.display()))
        }
        Changes::Accounts(n) => Ok(many_accounts(*n)),
    }
}

fn many_accounts(n: usize) -> model::ChangeSet {
    let now = time::OffsetDateTime::UNIX_EPOCH;
    let provenance = model::Provenance {
        source: "conformance".into(),
        first_seen: now,
        last_seen: now,
        not_observed_since: None,
    };
    let org = model::NodeRef::new("Organisation", "github:conformance");
    let mut changes = model::ChangeSet::default();
    for i in 0..n {
        let login = format!("user{i}");
        let node = model::Node {
            label: "Account".into(),
            key: format!("github:{login}"),
            properties: model::Properties::from([
                ("login".into(), model::Value::Text(login)),
                ("provider".into(), model::Value::Text("github".into())),
            ]),
        };
        let edge = model::Edge {
            kind: "MEMBER_OF".into(),
            from: node.reference(),
            to: org.clone(),
            properties: model::Properties::from([(
                "role".into(),
                model::Value::Text("member".into()),
            )]),
        };
        changes.nodes.push(model::NodeChange {
            node: model::StoredNode {
                node,
                provenance: provenance.clone(),
            },
            kind: model::ChangeKind::Added,
        });
        changes.edges.push(model::EdgeChange {
            edge: model::StoredEdge {
                edge,
                provenance: provenance.clone(),
            },
            kind: model::ChangeKind::Added,
        });
    }
    changes
}

/// The action requests an input stands for: its kind, or every kind the
/// executor describes.
fn actions(plugin: &Plugin, a: &ActionInput) -> Result<Vec<ActionRequest>, String> {
    let kinds = match &a.kind {
        Some(k) => vec![k.clone()],
        None => plugin.description().actions.clone(),
    };
    let mut parameters = a
        .parameters
        .iter()
        .map(|(k, v)| Ok((k.clone(), value(k, v)?)))
        .collect::<Result<model::Properties, String>>()?;
    for (name, size) in &a.sized {
        parameters.insert(name.clone(), model::Value::Text("x".repeat(*size)));
    }
    Ok(kinds
        .into_iter()
        .map(|kind| ActionRequest {
            kind,
            target: model::NodeRef::new(&a.target.label, &a.target.key),
            parameters: parameters.clone(),
            idempotency_key: a.idempotency_key.clone(),
        })
        .collect())
}

fn value(name: &str, v: &serde_json::Value) -> Result<model::Value, String> {
    use serde_json::Value as J;
    Ok(match v {
        J::Null => model::Value::Null,
        J::Bool(b) => model::Value::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => model::Value::Integer(i),
            None => model::Value::Float(n.as_f64().unwrap_or_default()),
        },
        J::String(s) => model::Value::Text(s.clone()),
        J::Array(items) => model::Value::Texts(
            items
                .iter()
                .map(|i| i.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| format!("parameter {name}: a list holds strings only"))?,
        ),
        J::Object(_) => return Err(format!("parameter {name}: objects are not property values")),
    })
}
