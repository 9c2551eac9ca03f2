//! A minimal HTTP/1.1 client for the latency benches, on loopback only.
//!
//! A full client (pool bookkeeping, header maps, TLS layers) would add its
//! own tens of microseconds to every sample, which matters against a 1 ms
//! target; this one writes the request in one call and reads exactly the
//! framing the two servers under test use: `Content-Length`, chunked, or a
//! body ending with the connection (HTTP/1.0, as Python's `wsgiref` answers).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Mutex;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

/// An answer, its body read whole.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header of that name, compared without case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "status {}, body not JSON: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Connections to one server, kept open between requests when the server
/// allows it.
#[derive(Debug)]
pub struct Client {
    addr: SocketAddr,
    idle: Mutex<Vec<BufReader<TcpStream>>>,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            idle: Mutex::new(Vec::new()),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn take_idle(&self) -> Option<BufReader<TcpStream>> {
        self.idle.lock().ok()?.pop()
    }

    fn put_idle(&self, conn: BufReader<TcpStream>) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
    }

    /// Sends one request; `headers` are added to `Host` and
    /// `Content-Length`.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> anyhow::Result<Response> {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\n",
            self.addr,
            body.len()
        );
        for (name, value) in headers {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        let mut request = head.into_bytes();
        request.extend_from_slice(body);

        // A kept connection the server has meanwhile closed fails on first
        // use; that is no answer from the server, so one fresh try follows.
        if let Some(conn) = self.take_idle()
            && let Ok(answer) = self.exchange(conn, &request, method).await
        {
            return Ok(answer);
        }
        let stream = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        stream.set_nodelay(true)?;
        self.exchange(BufReader::new(stream), &request, method)
            .await
    }

    async fn exchange(
        &self,
        mut conn: BufReader<TcpStream>,
        request: &[u8],
        method: &str,
    ) -> anyhow::Result<Response> {
        conn.get_mut().write_all(request).await?;
        let mut line = String::new();
        if conn.read_line(&mut line).await? == 0 {
            bail!("the connection closed before an answer");
        }
        let mut parts = line.split_whitespace();
        let version = parts.next().unwrap_or_default().to_owned();
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {line:?}"))?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            conn.read_line(&mut line).await?;
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            if let Some((name, value)) = trimmed.split_once(':') {
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
        }
        let mut answer = Response {
            status,
            headers,
            body: Vec::new(),
        };
        let closes = answer
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"))
            || (version == "HTTP/1.0"
                && !answer
                    .header("connection")
                    .is_some_and(|c| c.eq_ignore_ascii_case("keep-alive")));
        let length = answer
            .header("content-length")
            .and_then(|l| l.parse::<usize>().ok());
        let chunked = answer
            .header("transfer-encoding")
            .is_some_and(|t| t.eq_ignore_ascii_case("chunked"));
        let bodiless = method == "HEAD" || status == 204 || status == 304 || status < 200;
        if bodiless {
            // Nothing follows the head.
        } else if chunked {
            answer.body = read_chunked(&mut conn).await?;
        } else if let Some(length) = length {
            answer.body.resize(length, 0);
            conn.read_exact(&mut answer.body).await?;
        } else {
            conn.read_to_end(&mut answer.body).await?;
            return Ok(answer);
        }
        if !closes {
            self.put_idle(conn);
        }
        Ok(answer)
    }
}

async fn read_chunked(conn: &mut BufReader<TcpStream>) -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        conn.read_line(&mut line).await?;
        let size_text = line.trim().split(';').next().unwrap_or_default();
        let size = usize::from_str_radix(size_text, 16)
            .with_context(|| format!("bad chunk size {line:?}"))?;
        if size == 0 {
            // Trailers, if any, end with an empty line.
            loop {
                line.clear();
                conn.read_line(&mut line).await?;
                if line.trim_end().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        conn.read_exact(&mut body[start..]).await?;
        line.clear();
        conn.read_line(&mut line).await?;
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters, for a
/// query value.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}
