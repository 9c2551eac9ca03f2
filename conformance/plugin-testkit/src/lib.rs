//! A strict scripted HTTP server on 127.0.0.1, and a transport that
//! reaches it over a real socket, so the plugin's native code is tested
//! through the same bytes on the wire the real service would receive.
//!
//! The server expects an exact sequence of requests: each must have the
//! scripted method, path and query, JSON body and headers, and gets the
//! scripted answer. Anything else is recorded as a problem and answered
//! with a 500, so a test fails on the first surprise instead of drifting.
//!
//! The transport stands in for the host: it adds the credential a request
//! names by secret (as `AuthScheme` says), and records waits instead of
//! sleeping. It refuses every address but 127.0.0.1.

pub mod cassette;

use std::cell::RefCell;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value as Json;

use org_mesh_plugin::http::{self, AuthScheme, Request, Response};
use org_mesh_plugin::rest::Transport;

const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// One expected request and the answer to it.
#[derive(Debug, Clone)]
pub struct Step {
    method: String,
    target: String,
    body: Option<Json>,
    headers: Vec<(String, String)>,
    status: u16,
    answer_headers: Vec<(String, String)>,
    answer: String,
}

/// Expects `method target` (target: the path with its query), without a
/// body; answers 200 with an empty body until told otherwise.
pub fn expect(method: &str, target: &str) -> Step {
    Step {
        method: method.into(),
        target: target.into(),
        body: None,
        headers: Vec::new(),
        status: 200,
        answer_headers: Vec::new(),
        answer: String::new(),
    }
}

impl Step {
    /// The JSON body the request must carry, compared as JSON.
    pub fn body(mut self, body: Json) -> Self {
        self.body = Some(body);
        self
    }

    /// A header the request must carry with exactly this value.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    pub fn answer(mut self, status: u16, body: &Json) -> Self {
        self.status = status;
        self.answer = body.to_string();
        self.answer_headers
            .push(("content-type".into(), "application/json".into()));
        self
    }

    pub fn answer_text(mut self, status: u16, body: &str) -> Self {
        self.status = status;
        self.answer = body.into();
        self
    }

    pub fn answer_header(mut self, name: &str, value: &str) -> Self {
        self.answer_headers.push((name.into(), value.into()));
        self
    }
}

/// A request as the server read it off the socket.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub target: String,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the server saw, once stopped.
#[derive(Debug, Default)]
pub struct Finished {
    pub received: Vec<Received>,
    pub problems: Vec<String>,
    /// Scripted requests that never came.
    pub left: Vec<String>,
}

impl Finished {
    /// Every request came as scripted, and every scripted one came.
    pub fn check(&self) -> Result<(), String> {
        let mut all = self.problems.clone();
        if !self.left.is_empty() {
            all.push(format!("never requested: {}", self.left.join(", ")));
        }
        if all.is_empty() {
            Ok(())
        } else {
            Err(all.join("\n"))
        }
    }
}

#[derive(Debug)]
pub struct Server {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Finished>>,
}

impl Server {
    /// Serves the script on a free port of 127.0.0.1, one connection at a
    /// time, every request on its own connection.
    pub fn start(steps: Vec<Step>) -> io::Result<Self> {
        Self::start_with(|_| steps)
    }

    /// As `start`, with a script that needs the server's own base URL, such
    /// as answers whose links point back at the server.
    pub fn start_with(script: impl FnOnce(&str) -> Vec<Step>) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?;
        let steps = script(&format!("http://{address}"));
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || serve(&listener, steps, &flag));
        Ok(Self {
            address,
            stop,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn finish(mut self) -> Finished {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.address, IO_TIMEOUT);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(finished)) => finished,
            _ => Finished {
                problems: vec!["the server thread failed".into()],
                ..Finished::default()
            },
        }
    }
}

impl Drop for Server {
    // A test that fails before `finish` still stops its server.
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect_timeout(&self.address, IO_TIMEOUT);
        }
    }
}

fn serve(listener: &TcpListener, steps: Vec<Step>, stop: &AtomicBool) -> Finished {
    let mut steps = std::collections::VecDeque::from(steps);
    let mut done = Finished::default();
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let mut stream = match stream {
            Ok(s) => s,
            Err(e) => {
                done.problems.push(format!("accept: {e}"));
                continue;
            }
        };
        let received = match read_request(&stream) {
            Ok(r) => r,
            Err(e) => {
                done.problems.push(format!("reading a request: {e}"));
                continue;
            }
        };
        let (status, headers, body) = match steps.pop_front() {
            Some(step) => {
                done.problems.extend(mismatches(&step, &received));
                (step.status, step.answer_headers, step.answer)
            }
            None => {
                done.problems.push(format!(
                    "unexpected {} {}",
                    received.method, received.target
                ));
                (500, Vec::new(), "{\"message\":\"unexpected\"}".into())
            }
        };
        if let Err(e) = write_response(&mut stream, status, &headers, body.as_bytes()) {
            done.problems.push(format!("writing an answer: {e}"));
        }
        done.received.push(received);
    }
    done.left = steps
        .iter()
        .map(|s| format!("{} {}", s.method, s.target))
        .collect();
    done
}

fn mismatches(step: &Step, got: &Received) -> Vec<String> {
    let mut problems = Vec::new();
    let what = format!("{} {}", got.method, got.target);
    if (got.method.as_str(), got.target.as_str()) != (step.method.as_str(), step.target.as_str()) {
        problems.push(format!(
            "sent {what}, expected {} {}",
            step.method, step.target
        ));
    }
    for (name, value) in &step.headers {
        if got.header(name) != Some(value.as_str()) {
            problems.push(format!(
                "{what}: header {name} is {:?}, expected {value:?}",
                got.header(name)
            ));
        }
    }
    match (&step.body, got.body.is_empty()) {
        (None, true) => {}
        (None, false) => problems.push(format!(
            "{what}: unexpected body {}",
            String::from_utf8_lossy(&got.body)
        )),
        (Some(expected), _) => {
            let sent: Option<Json> = serde_json::from_slice(&got.body).ok();
            if sent.as_ref() != Some(expected) {
                problems.push(format!("{what}: body {sent:?}, expected {expected}"));
            }
            let json = got
                .header("content-type")
                .is_some_and(|t| t.starts_with("application/json"));
            if !json {
                problems.push(format!("{what}: the body is not marked as JSON"));
            }
        }
    }
    problems
}

/// Reads one HTTP/1.1 request with a `content-length` body, as the
/// transport below sends it.
pub(crate) fn read_request(stream: &TcpStream) -> io::Result<Received> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(io::Error::other(format!("bad request line {line:?}")));
    };
    let (method, target) = (method.to_string(), target.to_string());
    let headers = read_headers(&mut reader)?;
    let length = content_length(&headers)?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Received {
        method,
        target,
        headers,
        body,
    })
}

fn read_headers(reader: &mut impl BufRead) -> io::Result<Vec<(String, String)>> {
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::Error::other("connection closed inside the headers"));
        }
        let line = line.trim_end();
        if line.is_empty() {
            return Ok(headers);
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| io::Error::other(format!("bad header line {line:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
}

fn content_length(headers: &[(String, String)]) -> io::Result<usize> {
    match headers.iter().find(|(k, _)| k == "content-length") {
        Some((_, v)) => v
            .parse()
            .map_err(|_| io::Error::other(format!("bad content-length {v:?}"))),
        None => Ok(0),
    }
}

pub(crate) fn write_response(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} Scripted\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

/// The plugin's side of the socket, standing in for the host's `http`
/// import.
#[derive(Debug, Default)]
pub struct Wire {
    secrets: Vec<(String, String)>,
    pub slept: RefCell<Vec<u64>>,
    pub warnings: RefCell<Vec<String>>,
}

impl Wire {
    pub fn new() -> Self {
        Self::default()
    }

    /// A secret the host would hold for the plugin.
    pub fn secret(mut self, name: &str, value: &str) -> Self {
        self.secrets.push((name.into(), value.into()));
        self
    }

    fn credential(&self, request: &Request) -> Result<Option<(String, String)>, http::Error> {
        let Some(auth) = &request.auth else {
            return Ok(None);
        };
        let value = self
            .secrets
            .iter()
            .find(|(name, _)| *name == auth.secret)
            .map(|(_, value)| value.clone())
            .ok_or_else(|| http::Error::UnknownSecret(auth.secret.clone()))?;
        Ok(Some(match &auth.scheme {
            AuthScheme::Bearer => ("authorization".into(), format!("Bearer {value}")),
            AuthScheme::Token => ("authorization".into(), format!("token {value}")),
            AuthScheme::Header(name) => (name.clone(), value),
        }))
    }
}

fn transport_error(e: &io::Error) -> http::Error {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => http::Error::Timeout,
        _ => http::Error::Transport(e.to_string()),
    }
}

impl Transport for Wire {
    fn send(&self, request: &Request) -> Result<Response, http::Error> {
        let rest = request.url.strip_prefix("http://").ok_or_else(|| {
            http::Error::InvalidRequest(format!("{} is not a plain http URL", request.url))
        })?;
        let (authority, target) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let address: SocketAddr = authority
            .parse()
            .map_err(|_| http::Error::Denied(format!("{authority} is not 127.0.0.1:<port>")))?;
        if !address.ip().is_loopback() {
            return Err(http::Error::Denied(format!("{address} is not loopback")));
        }
        let mut head = format!(
            "{} {target} HTTP/1.1\r\nhost: {authority}\r\n",
            request.method
        );
        let credential = self.credential(request)?;
        for (name, value) in request.headers.iter().chain(credential.iter()) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let body = request.body.clone().unwrap_or_default();
        head.push_str(&format!(
            "content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        ));
        let mut stream =
            TcpStream::connect_timeout(&address, IO_TIMEOUT).map_err(|e| transport_error(&e))?;
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .map_err(|e| transport_error(&e))?;
        stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(&body))
            .map_err(|e| transport_error(&e))?;
        read_response(&stream).map_err(|e| transport_error(&e))
    }

    fn now_unix_secs(&self) -> u64 {
        1_700_000_000
    }

    fn sleep_secs(&self, secs: u64) {
        self.slept.borrow_mut().push(secs);
    }

    fn warn(&self, message: &str, _fields: &[(&str, String)]) {
        self.warnings.borrow_mut().push(message.to_string());
    }
}

/// For clients that take their transport by value and tests that keep
/// the wire to look at afterwards.
impl Transport for &Wire {
    fn send(&self, request: &Request) -> Result<Response, http::Error> {
        (**self).send(request)
    }

    fn now_unix_secs(&self) -> u64 {
        (**self).now_unix_secs()
    }

    fn sleep_secs(&self, secs: u64) {
        (**self).sleep_secs(secs);
    }

    fn warn(&self, message: &str, fields: &[(&str, String)]) {
        (**self).warn(message, fields);
    }
}

fn read_response(stream: &TcpStream) -> io::Result<Response> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("bad status line {line:?}")))?;
    let headers = read_headers(&mut reader)?;
    let mut body = vec![0; content_length(&headers)?];
    reader.read_exact(&mut body)?;
    Ok(Response {
        status,
        headers,
        body,
    })
}
