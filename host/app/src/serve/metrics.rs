//! The service's Prometheus series. Their names are a contract with
//! operators' dashboards and alerts: change them only with a migration note.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

#[derive(Debug, Clone)]
pub struct Metrics {
    pub ingest_duration: HistogramVec,
    pub nodes: IntGaugeVec,
    pub drift_detections: IntCounterVec,
    pub narrative_signals: IntCounterVec,
    pub action_success_rate: prometheus::GaugeVec,
    pub actions: IntCounterVec,
    pub evaluation_duration: Histogram,
    pub evaluations: IntCounterVec,
    pub reloads: IntCounterVec,
    pub webhook_deliveries: IntCounterVec,
    pub queue_depth: IntGauge,
    pub scim_unsent: IntGauge,
    pub scim_answers: HistogramVec,
    pub changes: IntCounterVec,
    pub backend_up: IntGaugeVec,
    /// Whether a plugin serves each configured instance; the labels come
    /// from the configuration, so they are bounded.
    pub instance_loaded: IntGaugeVec,
    pub messages_forgotten: IntCounter,
}

impl Metrics {
    /// Creates the detection series of every rule the detectors describe,
    /// at zero. A series that first appears at 1 hides that first count
    /// from rate() and increase(), so an alert on a burst from a rule never
    /// seen before would not fire.
    pub fn expect_rules(&self, rules: impl Iterator<Item = String>) {
        for rule in rules {
            for severity in org_mesh_model::Severity::ALL {
                self.drift_detections
                    .with_label_values(&[rule.as_str(), severity.as_str()]);
            }
        }
    }

    /// Counts one executed fix and updates its executor's success rate.
    pub fn count_action(&self, executor: &str, succeeded: bool) {
        let outcome = if succeeded { "succeeded" } else { "failed" };
        self.actions.with_label_values(&[executor, outcome]).inc();
        let ok = self
            .actions
            .with_label_values(&[executor, "succeeded"])
            .get();
        let failed = self.actions.with_label_values(&[executor, "failed"]).get();
        let total = ok + failed;
        if total > 0 {
            let rate = ok as f64 / total as f64;
            self.action_success_rate
                .with_label_values(&[executor])
                .set(rate);
        }
    }

    pub fn new(registry: &Registry) -> prometheus::Result<Metrics> {
        let m = Metrics {
            ingest_duration: HistogramVec::new(
                HistogramOpts::new(
                    "org_mesh_ingest_duration_seconds",
                    "Time to apply one sync, webhook or SCIM change to the twin, by connector",
                ),
                &["connector"],
            )?,
            nodes: IntGaugeVec::new(
                Opts::new("org_mesh_graph_nodes_count", "Nodes in the twin, by label"),
                &["label"],
            )?,
            drift_detections: IntCounterVec::new(
                Opts::new(
                    "org_mesh_drift_detection_count",
                    "Findings seen for the first time, by rule and severity",
                ),
                &["rule", "severity"],
            )?,
            narrative_signals: IntCounterVec::new(
                Opts::new(
                    "org_mesh_narrative_signals_count",
                    "Narrative-risk signals, by signal kind",
                ),
                &["kind"],
            )?,
            action_success_rate: prometheus::GaugeVec::new(
                Opts::new(
                    "org_mesh_agent_action_success_rate",
                    "Share of executed fixes that succeeded, by executor",
                ),
                &["executor"],
            )?,
            actions: IntCounterVec::new(
                Opts::new(
                    "org_mesh_agent_actions_total",
                    "Executed fixes by executor and outcome; the success rate derives from it",
                ),
                &["executor", "outcome"],
            )?,
            evaluation_duration: Histogram::with_opts(HistogramOpts::new(
                "org_mesh_evaluation_duration_seconds",
                "Time to run detectors, policy and planning over the twin",
            ))?,
            evaluations: IntCounterVec::new(
                Opts::new(
                    "org_mesh_evaluations_total",
                    "Evaluations by scope: changes (incremental detectors given only what \
                     changed) or twin (every detector given the whole twin)",
                ),
                &["scope"],
            )?,
            reloads: IntCounterVec::new(
                Opts::new(
                    "org_mesh_reload_total",
                    "Reloads of plugins and policies, by outcome",
                ),
                &["kind", "outcome"],
            )?,
            webhook_deliveries: IntCounterVec::new(
                Opts::new(
                    "org_mesh_webhook_deliveries_total",
                    "Webhook deliveries by connector and outcome",
                ),
                &["connector", "outcome"],
            )?,
            queue_depth: IntGauge::new(
                "org_mesh_queue_depth",
                "Changes waiting to be applied and evaluated",
            )?,
            scim_unsent: IntGauge::new(
                "org_mesh_scim_unsent",
                "SCIM changes stored and answered but not queued for the twin yet",
            )?,
            // Identity providers give up on an answer after a while (Okta
            // after 600 ms), so the buckets are finest below a second.
            scim_answers: HistogramVec::new(
                HistogramOpts::new(
                    "org_mesh_scim_request_duration_seconds",
                    "Time to answer a SCIM request, by connector, method and status class",
                )
                .buckets(vec![
                    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                    5.0,
                ]),
                &["connector", "method", "status"],
            )?,
            changes: IntCounterVec::new(
                Opts::new(
                    "org_mesh_changes_total",
                    "Queued changes this replica finished with, by outcome",
                ),
                &["outcome"],
            )?,
            backend_up: IntGaugeVec::new(
                Opts::new(
                    "org_mesh_backend_up",
                    "Whether the graph store and the cache answer (1) or not (0)",
                ),
                &["backend"],
            )?,
            instance_loaded: IntGaugeVec::new(
                Opts::new(
                    "org_mesh_instance_loaded",
                    "Whether a plugin serves each configured connector, detector and executor (1) or it was left out (0)",
                ),
                &["kind", "instance"],
            )?,
            messages_forgotten: IntCounter::new(
                "org_mesh_messages_forgotten_total",
                "Messages removed from the twin, with their edges and history, by retention",
            )?,
        };
        registry.register(Box::new(m.ingest_duration.clone()))?;
        registry.register(Box::new(m.nodes.clone()))?;
        registry.register(Box::new(m.drift_detections.clone()))?;
        registry.register(Box::new(m.narrative_signals.clone()))?;
        registry.register(Box::new(m.action_success_rate.clone()))?;
        registry.register(Box::new(m.actions.clone()))?;
        registry.register(Box::new(m.evaluation_duration.clone()))?;
        registry.register(Box::new(m.evaluations.clone()))?;
        registry.register(Box::new(m.reloads.clone()))?;
        registry.register(Box::new(m.webhook_deliveries.clone()))?;
        registry.register(Box::new(m.queue_depth.clone()))?;
        registry.register(Box::new(m.scim_unsent.clone()))?;
        registry.register(Box::new(m.scim_answers.clone()))?;
        registry.register(Box::new(m.changes.clone()))?;
        registry.register(Box::new(m.backend_up.clone()))?;
        registry.register(Box::new(m.instance_loaded.clone()))?;
        registry.register(Box::new(m.messages_forgotten.clone()))?;
        // Series with known labels exist from the start at zero, so that
        // dashboards and alerts see them before the first event.
        for outcome in ["applied", "failed", "unreadable"] {
            m.changes.with_label_values(&[outcome]);
        }
        for scope in ["changes", "twin"] {
            m.evaluations.with_label_values(&[scope]);
        }
        for kind in ["plugin", "policy"] {
            for outcome in ["applied", "rejected"] {
                m.reloads.with_label_values(&[kind, outcome]);
            }
        }
        Ok(m)
    }
}
