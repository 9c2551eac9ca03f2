//! Real services for org-mesh's tests, started on 127.0.0.1 by the tests
//! themselves.
//!
//! [`replay`] is GitHub's recorded REST traffic served by
//! `@octokit/fixtures-server` (see `conformance/replay`), one shared server
//! per test process. It needs the npm packages `.ci/setup` installs; when
//! they are missing the test fails and says so. [`FaultProxy`] stands
//! between org-mesh and a server to break the network on command.

#![expect(
    clippy::panic,
    clippy::expect_used,
    reason = "a test harness fails loudly"
)]

mod dice;
mod fault_proxy;

pub use dice::Dice;
pub use fault_proxy::FaultProxy;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// The repository's top folder.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The placeholder token the recordings were made with; the replay insists
/// on it.
pub const GITHUB_TOKEN: &str = "0000000000000000000000000000000000000001";

/// A running replay server. It exits when its stdin closes, which happens
/// when the test process ends, however it ends.
#[derive(Debug)]
pub struct Replay {
    port: u16,
    _child: Child,
}

/// The replay server of this test process, started on first use.
pub fn replay() -> &'static Replay {
    static REPLAY: OnceLock<Replay> = OnceLock::new();
    REPLAY.get_or_init(Replay::start)
}

/// One loaded scenario: the base URL to use as the GitHub API, and the id
/// to ask what it still expects.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub id: String,
    pub api_url: String,
}

impl Replay {
    fn start() -> Replay {
        let dir = root().join("conformance/replay");
        assert!(
            dir.join("node_modules").is_dir(),
            "the replay's npm packages are missing in {}: run .ci/setup",
            dir.display()
        );
        let mut child = Command::new("node")
            .arg(dir.join("server.mjs"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting node conformance/replay/server.mjs");
        let stdout = child.stdout.take().expect("the replay's stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("reading the replay's address");
        let url = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|v| v["url"].as_str().map(str::to_string))
            .unwrap_or_else(|| panic!("unexpected first line from the replay: {line:?}"));
        let port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {url}"));
        // Held open until the process exits, so the server lives exactly as
        // long as the tests that use it.
        std::mem::forget(child.stdin.take());
        Replay {
            port,
            _child: child,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`, as a plugin's HTTP allow list names it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Loads a recorded or composed scenario for one client to replay.
    pub fn scenario(&self, name: &str) -> Scenario {
        let body = format!("{{\"scenario\":\"{name}\"}}");
        let answer: serde_json::Value =
            serde_json::from_str(&self.http("POST", "/fixtures", &body))
                .unwrap_or_else(|e| panic!("loading scenario {name}: {e}"));
        let id = answer["id"].as_str().unwrap_or_default().to_string();
        let api_url = answer["url"].as_str().unwrap_or_default().to_string();
        assert!(
            !id.is_empty() && !api_url.is_empty(),
            "scenario {name}: {answer}"
        );
        Scenario { id, api_url }
    }

    /// The requests a scenario still expects; empty once it was consumed
    /// in full.
    pub fn pending(&self, scenario: &Scenario) -> Vec<serde_json::Value> {
        let answer: serde_json::Value = serde_json::from_str(&self.http(
            "GET",
            &format!("/fixtures/{}/pending", scenario.id),
            "",
        ))
        .expect("the pending list is JSON");
        answer["pending"].as_array().cloned().unwrap_or_default()
    }

    /// The methods of the requests a scenario still expects, sorted: what
    /// a test compares when it cares which writes were sent, not in what
    /// order the recording lists the rest.
    pub fn pending_methods(&self, scenario: &Scenario) -> Vec<String> {
        let mut methods: Vec<String> = self
            .pending(scenario)
            .iter()
            .filter_map(|p| p.as_str()?.split_whitespace().next().map(str::to_owned))
            .collect();
        methods.sort();
        methods
    }

    /// A minimal HTTP/1.1 exchange with the replay's control routes.
    fn http(&self, method: &str, path: &str, body: &str) -> String {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.port)).expect("connecting to the replay");
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            self.host(),
            body.len()
        )
        .expect("writing to the replay");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .expect("reading from the replay");
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_string()
        }
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}
