//! A real server on 127.0.0.1:0 with a recording sink, and a small client.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test loudly on a broken setup"
)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use org_mesh_scim::{
    Endpoint, MemoryRepository, Offered, ResourceKind, ScimRepository, ScimService, ScimSink,
    SinkError, router,
};
use serde_json::Value;

pub const OKTA_TOKEN: &str = "okta-test-token-1";
pub const ENTRA_TOKEN: &str = "entra-test-token-2";

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Upserted(String, ResourceKind, Value),
    Deleted(String, ResourceKind, Value),
}

/// Remembers every change offered and how many came in each offer, says
/// it is unavailable on demand, and refuses every user whose `userName`
/// starts with `refused`.
#[derive(Debug, Default)]
pub struct RecordingSink {
    pub events: Mutex<Vec<Event>>,
    pub offers_made: Mutex<Vec<usize>>,
    pub failing: AtomicBool,
}

impl RecordingSink {
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// How many changes each offer carried, in the order made.
    pub fn offer_sizes(&self) -> Vec<usize> {
        self.offers_made.lock().unwrap().clone()
    }

    /// The last resource the sink saw for `id`, or `None` once deleted.
    pub fn last(&self, id: &str) -> Option<Value> {
        let mut last = None;
        for event in self.events() {
            match event {
                Event::Upserted(_, _, r) if r["id"] == id => last = Some(r),
                Event::Deleted(_, _, r) if r["id"] == id => last = None,
                _ => {}
            }
        }
        last
    }

    /// How many times the sink was offered a change of `id`.
    pub fn offers(&self, id: &str) -> usize {
        self.events()
            .iter()
            .filter(|e| match e {
                Event::Upserted(_, _, r) | Event::Deleted(_, _, r) => r["id"] == id,
            })
            .count()
    }
}

#[async_trait::async_trait]
impl ScimSink for RecordingSink {
    async fn take(
        &self,
        connector: &str,
        changes: &[Offered],
    ) -> Result<Vec<Result<(), String>>, SinkError> {
        self.offers_made.lock().unwrap().push(changes.len());
        let mut outcomes = Vec::new();
        for change in changes {
            let (kind, resource) = (change.kind, change.resource.clone());
            self.events.lock().unwrap().push(if change.deleted {
                Event::Deleted(connector.to_owned(), kind, resource)
            } else {
                Event::Upserted(connector.to_owned(), kind, resource)
            });
            let refused = change.resource["userName"]
                .as_str()
                .is_some_and(|n| n.starts_with("refused"));
            outcomes.push(if refused {
                Err("this user cannot be taken".to_owned())
            } else {
                Ok(())
            });
        }
        if self.failing.load(Ordering::SeqCst) {
            return Err(SinkError::Unavailable(
                "the twin is not accepting changes".to_owned(),
            ));
        }
        Ok(outcomes)
    }
}

pub struct Server {
    pub addr: String,
    pub sink: Arc<RecordingSink>,
    pub service: Arc<ScimService>,
    pub client: reqwest::Client,
    connector: String,
    token: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start() -> Server {
    start_with(Arc::new(MemoryRepository::new()), None).await
}

pub async fn start_with(repo: Arc<dyn ScimRepository>, body_limit: Option<usize>) -> Server {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sink = Arc::new(RecordingSink::default());
    let mut endpoints = BTreeMap::new();
    endpoints.insert(
        "okta".to_owned(),
        Endpoint {
            token: OKTA_TOKEN.to_owned(),
        },
    );
    endpoints.insert(
        "entra".to_owned(),
        Endpoint {
            token: ENTRA_TOKEN.to_owned(),
        },
    );
    let mut service = ScimService::new(repo, sink.clone(), endpoints);
    if let Some(limit) = body_limit {
        service = service.with_body_limit(limit);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let service = Arc::new(service);
    let app = router(service.clone());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server {
        addr,
        sink,
        service,
        client: reqwest::Client::new(),
        connector: "okta".to_owned(),
        token: OKTA_TOKEN.to_owned(),
        task,
    }
}

/// A PatchOp message carrying `ops`.
pub fn patch_op(ops: Value) -> Value {
    let mut body =
        serde_json::json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]});
    body["Operations"] = ops;
    body
}

pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
}

impl Server {
    /// Speaks as another connector from now on.
    pub fn speaking_as(mut self, connector: &str, token: &str) -> Self {
        self.connector = connector.to_owned();
        self.token = token.to_owned();
        self
    }

    pub fn base(&self) -> String {
        format!("{}/scim/v2/{}", self.addr, self.connector)
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// Hands the stored changes over, as the host does after each write,
    /// and returns the last resource the sink then has for `id`.
    pub async fn last_handed(&self, id: &str) -> Option<Value> {
        self.service.hand_over_new().await.unwrap();
        self.sink.last(id)
    }

    /// Sends a request with the connector's token and SCIM JSON body.
    pub async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let url = format!("{}{path}", self.base());
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .client
            .request(method, url)
            .header("authorization", format!("Bearer {}", self.token));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        reply(request.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call("GET", path, None).await
    }
    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.call("POST", path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.call("PUT", path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: &Value) -> Reply {
        self.call("PATCH", path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> Reply {
        self.call("DELETE", path, None).await
    }
}

pub async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Reply {
        status,
        content_type,
        body,
    }
}

/// Checks that a reply is a SCIM error with this status.
pub fn assert_scim_error(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "body: {}", reply.body);
    assert_eq!(reply.content_type, "application/scim+json");
    assert_eq!(
        reply.body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    assert_eq!(reply.body["status"], status.to_string());
    assert!(
        reply.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "error without detail: {}",
        reply.body
    );
}

/// Encodes a filter for a query string.
pub fn q(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
