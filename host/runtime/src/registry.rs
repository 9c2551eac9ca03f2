//! Loading a plugin folder, and the counters kept per plugin.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};

use crate::engine::{Runtime, RuntimeOptions};
use crate::error::LoadError;
use crate::manifest::Manifest;
use crate::plugin::Plugin;

/// Prometheus series of plugin calls, registered once per runtime.
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    calls: IntCounterVec,
    failures: IntCounterVec,
    duration: HistogramVec,
}

impl Metrics {
    pub fn new(registry: &prometheus::Registry) -> prometheus::Result<Metrics> {
        let calls = IntCounterVec::new(
            Opts::new(
                "org_mesh_plugin_calls_total",
                "Plugin calls, by plugin and function",
            ),
            &["plugin", "function"],
        )?;
        let failures = IntCounterVec::new(
            Opts::new(
                "org_mesh_plugin_failures_total",
                "Failed plugin calls, by plugin and reason",
            ),
            &["plugin", "reason"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "org_mesh_plugin_call_duration_seconds",
                "Plugin call latency",
            )
            .buckets(vec![
                0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0,
            ]),
            &["plugin", "function"],
        )?;
        registry.register(Box::new(calls.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Metrics {
            calls,
            failures,
            duration,
        })
    }

    pub fn call(&self, plugin: &str, function: &str, took: Duration) {
        self.calls.with_label_values(&[plugin, function]).inc();
        self.duration
            .with_label_values(&[plugin, function])
            .observe(took.as_secs_f64());
    }

    pub fn failure(&self, plugin: &str, reason: &str) {
        self.failures.with_label_values(&[plugin, reason]).inc();
    }
}

#[derive(Debug, Default)]
struct StatsInner {
    calls: u64,
    failures: BTreeMap<&'static str, u64>,
    consecutive: u32,
    quarantines: u32,
    quarantined_until: Option<Instant>,
    last_backoff: Option<Duration>,
}

/// Calls and failures of one loaded plugin, shared by all its instances.
#[derive(Debug, Default)]
pub struct PluginStats {
    inner: Mutex<StatsInner>,
}

impl PluginStats {
    fn with<R>(&self, f: impl FnOnce(&mut StatsInner) -> R) -> R {
        match self.inner.lock() {
            Ok(mut guard) => f(&mut guard),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    pub fn calls(&self) -> u64 {
        self.with(|s| s.calls)
    }

    /// Failures so far, by reason.
    pub fn failures(&self) -> BTreeMap<&'static str, u64> {
        self.with(|s| s.failures.clone())
    }

    /// How long the plugin stays quarantined, if it is.
    pub fn quarantine_left(&self) -> Option<Duration> {
        self.with(|s| {
            s.quarantined_until
                .and_then(|t| t.checked_duration_since(Instant::now()))
        })
    }

    /// How many times the plugin has been quarantined since it was loaded.
    pub fn quarantines(&self) -> u32 {
        self.with(|s| s.quarantines)
    }

    /// How long the latest quarantine lasts, or lasted: the base at the
    /// first, doubling with each further one. Shows how close the next
    /// quarantine is to the one-hour cap.
    pub fn quarantine_backoff(&self) -> Option<Duration> {
        self.with(|s| s.last_backoff)
    }

    pub(crate) fn record_success(&self) {
        self.with(|s| {
            s.calls += 1;
            s.consecutive = 0;
        });
    }

    /// Counts a failure; returns the backoff if this one starts a quarantine.
    /// Only sandbox failures (traps, limits) lead to quarantine: a plugin that
    /// reports an upstream error is doing its job.
    pub(crate) fn record_failure(
        &self,
        reason: &'static str,
        sandbox: bool,
        options: &RuntimeOptions,
    ) -> Option<Duration> {
        self.with(|s| {
            s.calls += 1;
            *s.failures.entry(reason).or_default() += 1;
            if !sandbox {
                return None;
            }
            s.consecutive += 1;
            if s.consecutive < options.quarantine_after {
                return None;
            }
            s.consecutive = 0;
            let factor = 1u32 << s.quarantines.min(7);
            let backoff = (options.quarantine_base * factor).min(Duration::from_secs(3600));
            s.quarantines += 1;
            s.quarantined_until = Some(Instant::now() + backoff);
            s.last_backoff = Some(backoff);
            Some(backoff)
        })
    }
}

/// The plugins of one folder that loaded, those that did not, and those
/// left alone because nothing wanted them.
#[derive(Debug, Default)]
pub struct Loaded {
    pub plugins: BTreeMap<String, Plugin>,
    pub failed: Vec<LoadError>,
    /// Names from manifests that were read but whose plugins were neither
    /// compiled nor checked.
    pub unused: Vec<String>,
}

/// Loads plugin folders: each subfolder holding a `manifest.yaml` is one
/// plugin. A plugin that fails to load is reported and skipped.
#[derive(Debug)]
pub struct Registry;

impl Registry {
    pub async fn load_dir(runtime: &Runtime, dir: &Path) -> Result<Loaded, LoadError> {
        Self::load_dir_where(runtime, dir, |_| true).await
    }

    /// [`Registry::load_dir`], loading only the plugins whose manifest name
    /// `wanted` accepts. Compiling a component is most of the cost of
    /// loading it when the compiled-plugin cache is cold (seconds for the
    /// shipped plugins), so a process loads only what it will call.
    pub async fn load_dir_where(
        runtime: &Runtime,
        dir: &Path,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<Loaded, LoadError> {
        let read_err = |error| LoadError::Read {
            path: dir.to_path_buf(),
            error,
        };
        let mut manifests: Vec<_> = std::fs::read_dir(dir)
            .map_err(read_err)?
            .filter_map(Result::ok)
            .map(|e| e.path().join("manifest.yaml"))
            .filter(|p| p.is_file())
            .collect();
        manifests.sort();

        let mut loaded = Loaded::default();
        for path in manifests {
            let result = match Manifest::load(&path) {
                Ok(manifest) if !wanted(&manifest.name) => {
                    tracing::debug!(plugin = %manifest.name, "Plugin not loaded: nothing uses it");
                    loaded.unused.push(manifest.name);
                    continue;
                }
                Ok(manifest) => runtime.load(manifest).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(plugin) if loaded.plugins.contains_key(plugin.name()) => {
                    let folder = |p: &Plugin| p.manifest().path.parent().map(Path::to_path_buf);
                    let e = LoadError::Duplicate {
                        name: plugin.name().to_string(),
                        kept: folder(&loaded.plugins[plugin.name()]).unwrap_or_default(),
                        ignored: folder(&plugin).unwrap_or_default(),
                    };
                    tracing::error!(error = %e, "Plugin not loaded");
                    loaded.failed.push(e);
                }
                Ok(plugin) => {
                    loaded.plugins.insert(plugin.name().to_string(), plugin);
                }
                Err(e) => {
                    tracing::error!(error = %e, "Plugin not loaded");
                    loaded.failed.push(e);
                }
            }
        }
        Ok(loaded)
    }
}
