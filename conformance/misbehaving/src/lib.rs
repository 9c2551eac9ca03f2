//! A detector that breaks the rules on purpose, so the host's tests can show
//! each sandbox limit holding. Its `mode` config picks the misbehaviour;
//! `ok` behaves, `boom` behaves until the twin holds the account
//! `test:boom`, and `kv` counts its calls in the key-value store; `fs` and
//! `env` look for files and environment variables, and `remember` for what
//! an earlier call left in its memory, and report what they found as the
//! attributes of one finding. Never load it in production.

// Only the wasm build exports the plugin, so natively its code looks unused.
// `allow`, not `expect`: test builds see the code as used and would leave an
// expectation unfulfilled.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};

use org_mesh_plugin::detector::{DetectRequest, Finding, Guest};
use org_mesh_plugin::props::Props;
use org_mesh_plugin::types::{Description, NodeRef, PluginError, RuleInfo};
use org_mesh_plugin::{graph, kv, log};

struct Misbehaving;

/// Starts in the data segment at a value other than zero.
static MARK: AtomicU32 = AtomicU32::new(0xfeed);
/// Starts in zeroed memory, spanning several pages.
static SCRATCH: [AtomicU8; 64 << 10] = [const { AtomicU8::new(0) }; 64 << 10];
static CALLS: AtomicU32 = AtomicU32::new(0);

/// What this instance's memory held on entry, then overwritten, so that a
/// later call reading the same memory would see this one's writes.
fn remember() -> Props {
    let calls = CALLS.fetch_add(1, Ordering::Relaxed);
    let mark = MARK.swap(0xdead, Ordering::Relaxed);
    let dirty = SCRATCH
        .iter()
        .filter(|b| b.swap(0xa5, Ordering::Relaxed) != 0)
        .count();
    Props::new()
        .text("earlier calls", calls.to_string())
        .text("mark", format!("{mark:#x}"))
        .text("dirty scratch bytes", dirty.to_string())
}

fn mode(config: &str) -> Result<String, PluginError> {
    let value: serde_json::Value = serde_json::from_str(config)
        .map_err(|e| PluginError::InvalidConfig(format!("config is not JSON: {e}")))?;
    Ok(value
        .get("mode")
        .and_then(|m| m.as_str())
        .unwrap_or("ok")
        .to_string())
}

fn finding(i: usize) -> Finding {
    Finding {
        rule: "noise".into(),
        subject: NodeRef {
            label: "Account".into(),
            key: format!("test:{i}"),
        },
        key: String::new(),
        title: "x".repeat(1024),
        score: 1.0,
        attributes: Vec::new(),
        evidence: Vec::new(),
        remedy: None,
    }
}

/// What one attempt at the file system gave: the content or the error.
fn outcome<T>(result: std::io::Result<T>, show: impl FnOnce(T) -> String) -> String {
    match result {
        Ok(value) => format!("ok: {}", show(value)),
        Err(e) => format!("error: {e}"),
    }
}

/// One finding whose attributes say what each attempt got, so the host's
/// test reads the plugin's view of its sandbox rather than a bare pass.
fn report(attempts: Props) -> Finding {
    Finding {
        attributes: attempts.build(),
        ..finding(0)
    }
}

#[inline(never)]
#[expect(unconditional_recursion, reason = "unbounded recursion is the point")]
fn recurse(depth: u64, pad: &mut [u8; 256]) -> u64 {
    pad[usize::from(depth.to_le_bytes()[0])] = depth.to_le_bytes()[1];
    let mut next = *pad;
    recurse(depth + 1, &mut next) + u64::from(next[0])
}

impl Guest for Misbehaving {
    fn describe() -> Description {
        Description {
            name: "misbehaving".into(),
            version: "0.1.0".into(),
            summary: "Misbehaves on purpose for sandbox tests".into(),
            rules: vec![RuleInfo {
                id: "noise".into(),
                title: "Test noise".into(),
                default_severity: "info".into(),
            }],
            actions: Vec::new(),
        }
    }

    fn detect(req: DetectRequest) -> Result<Vec<Finding>, PluginError> {
        match mode(&req.config)?.as_str() {
            "ok" => Ok(vec![finding(0)]),
            "spin" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "oom" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "recurse" => {
                let mut pad = [0u8; 256];
                Ok(vec![finding(usize::from(recurse(0, &mut pad) > 0))])
            }
            "trap" => {
                // A bug in a plugin: the host must contain the trap.
                #[expect(clippy::panic, reason = "this plugin exists to trap")]
                {
                    panic!("misbehaving plugin traps on purpose")
                }
            }
            "huge" => Ok((0..100_000).map(finding).collect()),
            "long-title" => Ok(vec![
                Finding {
                    title: "x".repeat(1 << 20),
                    ..finding(0)
                },
                finding(1),
            ]),
            "graph" => {
                let node = graph::get_node(&NodeRef {
                    label: "Account".into(),
                    key: "test:0".into(),
                })
                .map_err(|e| PluginError::Internal(format!("{e:?}")))?;
                Ok(node.map(|_| finding(1)).into_iter().collect())
            }
            "boom" => {
                // A bug only some data reaches: the call traps once the
                // twin holds this account, and behaves until then.
                let boom = graph::get_node(&NodeRef {
                    label: "Account".into(),
                    key: "test:boom".into(),
                })
                .map_err(|e| PluginError::Internal(format!("{e:?}")))?;
                #[expect(clippy::panic, reason = "this plugin exists to trap")]
                if boom.is_some() {
                    panic!("misbehaving plugin trips over test:boom");
                }
                Ok(vec![finding(0)])
            }
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(3600));
                Ok(Vec::new())
            }
            "kv" => {
                // Counts its own calls in the key-value store, so a test can
                // see where the state lives and whose it is.
                let backend = |e: kv::Error| PluginError::Upstream(format!("kv: {e:?}"));
                let calls: usize = kv::get("calls")
                    .map_err(backend)?
                    .and_then(|v| String::from_utf8(v).ok())
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0)
                    + 1;
                kv::set("calls", calls.to_string().as_bytes()).map_err(backend)?;
                Ok(vec![finding(calls)])
            }
            "log-flood" => {
                for i in 0..100_000 {
                    log::emit(log::Level::Info, "flood", &[("i".into(), i.to_string())]);
                }
                Ok(vec![finding(0)])
            }
            "fs" => {
                let passwd = outcome(std::fs::read_to_string("/etc/passwd"), |text| {
                    format!("{} bytes", text.len())
                });
                let write = outcome(
                    std::fs::write("/tmp/org-mesh-misbehaving", b"escaped"),
                    |()| "written".to_string(),
                );
                let root = outcome(std::fs::read_dir("/"), |entries| {
                    format!("{} entries", entries.count())
                });
                let here = outcome(std::fs::read_dir("."), |entries| {
                    format!("{} entries", entries.count())
                });
                Ok(vec![report(
                    Props::new()
                        .text("read /etc/passwd", passwd)
                        .text("write /tmp", write)
                        .text("list /", root)
                        .text("list .", here),
                )])
            }
            "env" => {
                let vars: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
                let lookup = |name: &str| match std::env::var(name) {
                    Ok(v) => format!("set: {v}"),
                    Err(e) => format!("unset: {e}"),
                };
                let args: Vec<String> = std::env::args().collect();
                Ok(vec![report(
                    Props::new()
                        .text("vars", vars.join("\n"))
                        .text("HOME", lookup("HOME"))
                        .text("PATH", lookup("PATH"))
                        .text("args", args.join(" ")),
                )])
            }
            "remember" => Ok(vec![report(remember())]),
            other => Err(PluginError::InvalidConfig(format!(
                "unknown mode {other:?}"
            ))),
        }
    }
}

// The exported symbol names follow WIT paths, which only the wasm linker
// accepts; a native build just type-checks the plugin.
#[cfg(target_arch = "wasm32")]
org_mesh_plugin::export_detector!(Misbehaving);
