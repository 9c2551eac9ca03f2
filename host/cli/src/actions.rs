//! `org-mesh actions`: the fix proposals of a running `org-mesh serve`,
//! listed, approved, rejected and tried again through its API.

use std::process::ExitCode;

use org_mesh_app::actions::State;
use serde_json::Value;

use crate::fail;

/// Where the service is and who is asking.
pub struct Endpoint {
    pub url: String,
    pub token: String,
}

impl Endpoint {
    fn client() -> Result<reqwest::Client, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value, String> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| format!("cannot reach {}: {e}", self.url))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("reading the answer of {}: {e}", self.url))?;
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if !status.is_success() {
            let message = value["error"]["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            return Err(format!("{} answered {status}: {message}", self.url));
        }
        Ok(value)
    }
}

pub async fn list(endpoint: &Endpoint, state: Option<State>) -> ExitCode {
    let client = match Endpoint::client() {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let url = format!("{}/api/v1/proposals", endpoint.url.trim_end_matches('/'));
    let answer = match endpoint.call(client.get(&url)).await {
        Ok(v) => v,
        Err(e) => return fail(&e),
    };
    let mut out = String::new();
    if answer["dry_run"] == true {
        out.push_str("dry run: approved fixes are held and not executed\n");
    }
    let proposals = answer["proposals"].as_array().cloned().unwrap_or_default();
    let shown: Vec<&Value> = proposals
        .iter()
        .filter(|p| state.is_none_or(|s| p["state"] == s.name()))
        .collect();
    for p in &shown {
        let last = p["events"]
            .as_array()
            .and_then(|e| e.last())
            .and_then(|e| e["reason"].as_str())
            .unwrap_or("");
        out.push_str(&format!(
            "{}  {:<18} {}  {}({})  by {}  {}\n",
            p["id"].as_str().unwrap_or(""),
            p["state"].as_str().unwrap_or(""),
            p["kind"].as_str().unwrap_or(""),
            p["target"]["label"].as_str().unwrap_or(""),
            p["target"]["key"].as_str().unwrap_or(""),
            p["executor"].as_str().unwrap_or(""),
            last,
        ));
    }
    out.push_str(&format!("{} proposal(s)\n", shown.len()));
    crate::emit(&out);
    ExitCode::SUCCESS
}

/// What a person asks of a proposal.
#[derive(Debug, Clone, Copy)]
pub enum Verb {
    Approve,
    Reject,
    Retry,
}

pub async fn decide(endpoint: &Endpoint, id: &str, verb: Verb, reason: &str) -> ExitCode {
    let client = match Endpoint::client() {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let verb = match verb {
        Verb::Approve => "approve",
        Verb::Reject => "reject",
        Verb::Retry => "retry",
    };
    let url = format!(
        "{}/api/v1/proposals/{id}/{verb}",
        endpoint.url.trim_end_matches('/')
    );
    let body = serde_json::json!({ "reason": reason }).to_string();
    let request = client
        .post(&url)
        .header("content-type", "application/json")
        .body(body);
    match endpoint.call(request).await {
        Ok(answer) => {
            crate::emit(format!(
                "proposal {id}: {}\n",
                answer["proposal"]["state"].as_str().unwrap_or("unknown")
            ));
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}
