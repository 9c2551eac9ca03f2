//! Hot reload in the service: a watch on every plugin folder and on the
//! policy folder, the reloads they start, and what the last one said for
//! each target, for `/api/v1/reloads`, the logs and `org_mesh_reload_total`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use org_mesh_watch::{FolderWatch, WatchOptions};

use super::Service;
use crate::reload::{Outcome, ReloadReport};

/// The last reload report of each policy folder and plugin instance.
#[derive(Debug, Default)]
pub struct Reloads {
    last: std::sync::Mutex<BTreeMap<(&'static str, String), ReloadReport>>,
}

impl Reloads {
    pub fn list(&self) -> Vec<ReloadReport> {
        match self.last.lock() {
            Ok(g) => g.values().cloned().collect(),
            Err(poisoned) => poisoned.into_inner().values().cloned().collect(),
        }
    }

    fn record(&self, report: &ReloadReport) {
        let mut last = match self.last.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        last.insert((report.kind, report.target.clone()), report.clone());
    }
}

/// Which folder a watch reloads.
#[derive(Debug, Clone, Copy)]
enum Target {
    Plugins,
    Policies,
}

impl Service {
    /// Reloads plugins, policies or both, records and logs what happened,
    /// and evaluates the twin again when a new version serves.
    pub async fn reload(&self, plugins: bool, policies: bool) -> Vec<ReloadReport> {
        let turn = self.reloading.lock().await;
        let mut reports = Vec::new();
        if plugins {
            reports.extend(self.twin.reload_plugins().await);
            self.count_loaded();
        }
        if policies {
            let now = time::OffsetDateTime::now_utc();
            let live = self
                .findings
                .read()
                .await
                .findings
                .iter()
                .map(|r| org_mesh_policy::DecisionInput::from_finding(&r.finding, now))
                .collect();
            reports.push(self.twin.reload_policies(live).await);
        }
        drop(turn);
        self.after_reloads(&reports).await;
        reports
    }

    /// Records, logs and counts reload reports, and evaluates the twin
    /// again when a new version serves or went on trial.
    async fn after_reloads(&self, reports: &[ReloadReport]) {
        // The findings are evaluated with what now serves before the
        // reports say so, so that a client seeing "applied" reads findings
        // decided by the new version.
        let serves_new = reports
            .iter()
            .any(|r| matches!(r.outcome, Outcome::Applied | Outcome::Shadowing));
        if serves_new {
            let _turn = self.pipeline.lock().await;
            let version = self.evaluated_at.load(std::sync::atomic::Ordering::Relaxed);
            if let Err(e) = self.evaluate_locked(true, version, None).await {
                tracing::warn!(error = %format!("{e:#}"), "Cannot evaluate the twin after a reload");
            }
        }
        for r in reports {
            self.reloads.record(r);
            if r.outcome != Outcome::Unchanged {
                self.metrics
                    .reloads
                    .with_label_values(&[r.kind, r.outcome.as_str()])
                    .inc();
            }
            match r.outcome {
                Outcome::Applied => tracing::info!(
                    kind = r.kind,
                    target = %r.target,
                    version = r.serving.as_deref().unwrap_or(""),
                    "Reloaded"
                ),
                Outcome::Rejected => tracing::error!(
                    kind = r.kind,
                    target = %r.target,
                    candidate = r.candidate.as_deref().unwrap_or(""),
                    serving = r.serving.as_deref().unwrap_or("nothing"),
                    problem = r.problem.as_deref().unwrap_or(""),
                    "Reload rejected; the previous version keeps serving"
                ),
                Outcome::Shadowing => tracing::info!(
                    kind = r.kind,
                    target = %r.target,
                    candidate = r.candidate.as_deref().unwrap_or(""),
                    "New version decides beside the serving one before promotion"
                ),
                Outcome::Unchanged => {}
            }
        }
    }
}

/// How often a policy version on trial is checked for the end of its
/// window.
const SHADOW_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Promotes or rolls back a policy version on trial once its window ends.
pub async fn settle_shadows(service: Arc<Service>) {
    loop {
        tokio::time::sleep(SHADOW_CHECK).await;
        let settled = {
            let _turn = service.reloading.lock().await;
            service.twin.settle_shadow()
        };
        if let Some(report) = settled {
            service.after_reloads(std::slice::from_ref(&report)).await;
        }
    }
}

/// Watches every plugin folder and the policy folder until the returned
/// tasks are aborted. A folder that cannot be watched is logged and left
/// to `POST /api/v1/reload`.
pub fn watch(service: &Arc<Service>) -> Vec<tokio::task::JoinHandle<()>> {
    let mut folders: Vec<(PathBuf, Target)> = service
        .config
        .plugins
        .dirs
        .iter()
        .map(|d| (d.clone(), Target::Plugins))
        .collect();
    folders.push((service.config.policies.dir.clone(), Target::Policies));
    folders
        .into_iter()
        .filter_map(|(dir, target)| {
            let (watch, mut changes) = match FolderWatch::start(&dir, WatchOptions::default()) {
                Ok(w) => w,
                Err(e) => {
                    tracing::error!(dir = %dir.display(), error = %e, "Cannot watch a folder; reload it with POST /api/v1/reload");
                    return None;
                }
            };
            tracing::info!(dir = %dir.display(), version = %watch.current(), "Watching for new versions");
            let service = service.clone();
            Some(tokio::spawn(async move {
                // The watch stops when dropped; this task owns it.
                let _watch = watch;
                while let Some(change) = changes.recv().await {
                    tracing::info!(
                        dir = %change.dir.display(),
                        version = %change.hash,
                        previous = %change.previous,
                        files = change.files.len(),
                        "Folder changed"
                    );
                    match target {
                        Target::Plugins => service.reload(true, false).await,
                        Target::Policies => service.reload(false, true).await,
                    };
                }
            }))
        })
        .collect()
}
