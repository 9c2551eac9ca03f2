//! The notify executor plugin: posts a message to a Slack-compatible
//! incoming webhook (`notify.post`), with the action's idempotency key in
//! an `Idempotency-Key` header so that a receiver can drop repeats.
//!
//! Where a message goes is the operator's choice, not a finding's: the
//! configured `default_url`, or a URL in the action that falls under one of
//! the configured `allowed_url_prefixes`; the host's HTTP allow list must
//! hold the host as well. With `remember_deliveries` the executor also
//! keeps each delivered key in its key-value store and does not post the
//! same key twice, for receivers such as Slack that ignore the header.
//!
//! Build the component with
//! `cargo build --target wasm32-wasip2 --profile plugin -p notify-executor`;
//! `cargo test -p notify-executor` posts to webhook receivers the tests
//! serve on loopback.

mod address;
mod config;
mod deliver;
mod message;

use sha2::{Digest, Sha256};

use org_mesh_plugin::executor::{ActionPlan, ActionRequest, Guest, Outcome, PlannedCall};
use org_mesh_plugin::kv;
use org_mesh_plugin::rest::{HostTransport, Transport};
use org_mesh_plugin::types::{Description, PluginError};

pub use address::WebhookUrl;
pub use config::Config;
pub use message::{POST, Post};

pub const NAME: &str = "notify-executor";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Where delivered idempotency keys are remembered.
pub trait Ledger {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String>;
    fn set(&self, key: &str, value: &[u8]) -> Result<(), String>;
}

/// The host's key-value store, scoped by the host to this instance.
#[derive(Debug, Default, Clone, Copy)]
pub struct HostLedger;

fn kv_error(e: &kv::Error) -> String {
    match e {
        kv::Error::Denied(m) => format!("denied: {m}"),
        kv::Error::TooLarge(n) => format!("larger than {n} bytes"),
        kv::Error::Backend(m) => format!("backend: {m}"),
    }
}

impl Ledger for HostLedger {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        kv::get(key).map_err(|e| kv_error(&e))
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        kv::set(key, value).map_err(|e| kv_error(&e))
    }
}

/// A fixed-length store key for any idempotency key, so a long key never
/// meets the store's size limit.
pub fn ledger_key(idempotency_key: &str) -> String {
    format!(
        "delivered/{}",
        hex::encode(Sha256::digest(idempotency_key.as_bytes()))
    )
}

/// What one action comes to: the checked URL and the exact body.
struct Prepared {
    url: WebhookUrl,
    body: String,
    key: String,
    /// Where the URL came from, for people.
    source: &'static str,
}

fn prepare(req: &ActionRequest, config: &Config) -> Result<Prepared, PluginError> {
    let post = Post::parse(&req.action.kind, &req.action.parameters)?;
    let key = req.action.idempotency_key.trim().to_string();
    if key.is_empty() {
        return Err(PluginError::InvalidInput(
            "the action has no idempotency key, so a retried post could not be told from a new \
             one"
            .into(),
        ));
    }
    let (url, source) = match &post.url {
        Some(given) => {
            if config.allowed_url_prefixes.is_empty() {
                return Err(PluginError::InvalidInput(
                    "parameter url: this executor takes no URL from actions \
                     (allowed_url_prefixes is empty); leave it out to use default_url"
                        .into(),
                ));
            }
            let url = WebhookUrl::parse(given)
                .map_err(|e| PluginError::InvalidInput(format!("parameter url: {e}")))?;
            if !config.allowed_url_prefixes.iter().any(|p| url.is_under(p)) {
                return Err(PluginError::InvalidInput(format!(
                    "parameter url: {} is not under any of allowed_url_prefixes",
                    url.masked()
                )));
            }
            (url, "the URL the action gives")
        }
        None => match &config.default_url {
            Some(url) => (url.clone(), "the configured default_url"),
            None => {
                return Err(PluginError::InvalidInput(format!(
                    "{POST} needs the parameter url, since this executor has no default_url"
                )));
            }
        },
    };
    let key_field = config
        .idempotency_field
        .as_deref()
        .map(|field| (field, key.as_str()));
    let body = post.payload(key_field);
    Ok(Prepared {
        url,
        body,
        key,
        source,
    })
}

fn expected(prepared: &Prepared) -> String {
    format!(
        "the webhook took the message with Idempotency-Key {}",
        prepared.key
    )
}

pub fn plan(req: &ActionRequest) -> Result<ActionPlan, PluginError> {
    let config = Config::parse(&req.config)?;
    let prepared = prepare(req, &config)?;
    let remembered = if config.remember_deliveries {
        "; not sent when this key was delivered before"
    } else {
        ""
    };
    Ok(ActionPlan {
        calls: vec![PlannedCall {
            method: "POST".into(),
            url: prepared.url.masked(),
            body: Some(prepared.body.clone()),
            effect: format!(
                "posts the message to {} (shown masked: webhook URLs carry their credential) \
                 with the header Idempotency-Key: {}; sent up to {} times while the webhook \
                 answers 5xx, 408 or 429{remembered}",
                prepared.source, prepared.key, config.max_attempts
            ),
        }],
        expected: expected(&prepared),
    })
}

pub fn execute<T: Transport, L: Ledger>(
    req: &ActionRequest,
    transport: &T,
    ledger: &L,
) -> Result<Outcome, PluginError> {
    let config = Config::parse(&req.config)?;
    let prepared = prepare(req, &config)?;
    if config.dry_run_only {
        return Err(PluginError::Denied(
            "dry_run_only is set for this executor: it plans but does not execute".into(),
        ));
    }
    let store_key = ledger_key(&prepared.key);
    if config.remember_deliveries {
        let before = ledger.get(&store_key).map_err(|e| {
            PluginError::Internal(format!(
                "reading which messages were delivered (remember_deliveries needs grants.kv): {e}"
            ))
        })?;
        if before.is_some() {
            return Ok(Outcome {
                changed: false,
                calls: Vec::new(),
                detail: format!("already so: {}", expected(&prepared)),
            });
        }
    }
    let limits = deliver::Limits {
        max_attempts: config.max_attempts,
        max_wait_secs: config.max_wait_secs,
    };
    let calls = deliver::deliver(
        transport,
        &prepared.url,
        &prepared.body,
        &prepared.key,
        limits,
    )?;
    let mut detail = expected(&prepared);
    if config.remember_deliveries {
        let record = serde_json::json!({"delivered_at": transport.now_unix_secs()}).to_string();
        // The message is out; failing the action now would only invite a
        // second post, so the lapse is reported instead.
        if let Err(e) = ledger.set(&store_key, record.as_bytes()) {
            transport.warn(
                "Delivered, but could not remember the delivery",
                &[("error", e.clone())],
            );
            detail.push_str(&format!(
                "; remembering the delivery failed ({e}), so a repeat would post again"
            ));
        }
    }
    Ok(Outcome {
        changed: true,
        calls,
        detail,
    })
}

#[cfg_attr(
    not(target_arch = "wasm32"),
    expect(dead_code, reason = "only the wasm build exports the plugin")
)]
struct NotifyExecutor;

impl Guest for NotifyExecutor {
    fn describe() -> Description {
        Description {
            name: NAME.into(),
            version: VERSION.into(),
            summary: "Posts messages to Slack-compatible webhooks".into(),
            rules: Vec::new(),
            actions: vec![POST.into()],
        }
    }

    fn plan(req: ActionRequest) -> Result<ActionPlan, PluginError> {
        plan(&req)
    }

    fn execute(req: ActionRequest) -> Result<Outcome, PluginError> {
        execute(&req, &HostTransport, &HostLedger)
    }
}

// The export macro names symbols after WIT paths (`org-mesh:plugin/...`),
// which a native linker's version script cannot express, so the exports
// exist only in the wasm build; native builds keep the impl type-checked.
#[cfg(target_arch = "wasm32")]
org_mesh_plugin::export_executor!(NotifyExecutor);
