//! A TCP proxy on 127.0.0.1 that sits between org-mesh and a server the
//! tests started (Neo4j, Redis) and breaks the network on command: it can
//! black-hole traffic, go down (reset every connection and refuse new ones,
//! as a restarting server does) and heal.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Forward,
    /// Nothing moves either way, but every socket stays open and new
    /// connections are still accepted: a peer that went silent, not one
    /// that went away.
    BlackHole,
    /// Every connection is reset and the port refuses new ones.
    Down,
}

#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
    /// Whether the port listens, as the accept task last set it.
    listening: watch::Receiver<bool>,
    accepted: Arc<AtomicUsize>,
    server: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free port of 127.0.0.1 and forwards to the `IP:PORT`
    /// of `upstream`, a URL such as `bolt://127.0.0.1:7687` or
    /// `redis://127.0.0.1:6379/`.
    pub async fn start(upstream: &str) -> FaultProxy {
        let address = upstream
            .split_once("://")
            .map_or(upstream, |(_, rest)| rest)
            .trim_end_matches('/');
        let upstream: SocketAddr = address
            .parse()
            .expect("the upstream URL is scheme://IP:PORT");
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let (mode, watcher) = watch::channel(Mode::Forward);
        let (listens, listening) = watch::channel(true);
        let accepted = Arc::new(AtomicUsize::new(0));
        let server = tokio::spawn(serve(
            listener,
            upstream,
            watcher,
            listens,
            accepted.clone(),
        ));
        FaultProxy {
            addr,
            mode,
            listening,
            accepted,
            server,
        }
    }

    /// The proxy's URL with the scheme `scheme`: `bolt`, `redis`.
    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}", self.addr)
    }

    /// How many connections the proxy has accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    pub fn black_hole(&self) {
        self.mode.send_replace(Mode::BlackHole);
    }

    /// Returns once the port refuses connections.
    pub async fn go_down(&mut self) {
        self.mode.send_replace(Mode::Down);
        self.listening_is(false).await;
    }

    /// Forwards again, and returns once the port listens. Connections that
    /// were black-holed carry on with whatever was held back, so a client
    /// that kept using one would read stale answers; connections reset
    /// while down stay gone.
    pub async fn heal(&mut self) {
        self.mode.send_replace(Mode::Forward);
        self.listening_is(true).await;
    }

    async fn listening_is(&mut self, wanted: bool) {
        self.listening
            .wait_for(|listening| *listening == wanted)
            .await
            .expect("the proxy's accept task is running");
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Dropping the accept task drops its JoinSet, which aborts every
        // connection it spawned.
        self.server.abort();
    }
}

async fn serve(
    listener: TcpListener,
    upstream: SocketAddr,
    mut mode: watch::Receiver<Mode>,
    listens: watch::Sender<bool>,
    accepted: Arc<AtomicUsize>,
) {
    let addr = listener.local_addr().expect("the proxy's address");
    let mut listener = Some(listener);
    let mut connections = JoinSet::new();
    loop {
        let current = *mode.borrow_and_update();
        match (current, listener.as_ref()) {
            (Mode::Down, Some(_)) => listener = None,
            (Mode::Down, None) => {}
            (_, None) => listener = Some(rebind(addr)),
            (_, Some(_)) => {}
        }
        listens.send_replace(listener.is_some());
        tokio::select! {
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            incoming = accept(listener.as_ref()) => {
                let Ok((client, _)) = incoming else { continue };
                accepted.fetch_add(1, Ordering::SeqCst);
                connections.spawn(relay(client, upstream, mode.clone()));
            }
            // Reaps finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn accept(listener: Option<&TcpListener>) -> io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// Listens on the same port again after being down. The port's old
/// connections may linger in TIME_WAIT, which SO_REUSEADDR allows.
fn rebind(addr: SocketAddr) -> TcpListener {
    let socket = TcpSocket::new_v4().expect("a socket for the proxy");
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    socket.bind(addr).expect("binding the proxy's port again");
    socket.listen(64).expect("listening again")
}

async fn relay(client: TcpStream, upstream: SocketAddr, mode: watch::Receiver<Mode>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    // A zero linger makes closing send a reset, so a proxy going down looks
    // like a server whose process died rather than one that said goodbye.
    let _ = client.set_zero_linger();
    let _ = server.set_zero_linger();
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let mut down = mode.clone();
    // The first direction to end ends both: Bolt never half-closes. Going
    // down ends both too, even when a write is stuck on a full buffer.
    tokio::select! {
        _ = pump(client_read, server_write, mode.clone()) => {}
        _ = pump(server_read, client_write, mode) => {}
        _ = down.wait_for(|m| *m == Mode::Down) => {}
    }
}

/// Copies `from` to `to` while the mode is `Forward`, holds still while it
/// is `BlackHole` (leaving what arrives in the kernel's buffers) and stops
/// when it is `Down`.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
) -> io::Result<()> {
    let mut buffer = vec![0; 16 * 1024];
    loop {
        flowing(&mut mode).await?;
        let read = tokio::select! {
            read = from.read(&mut buffer) => read?,
            changed = mode.changed() => {
                changed.map_err(io::Error::other)?;
                continue;
            }
        };
        if read == 0 {
            return Ok(());
        }
        // Bytes read just before a black hole are held, not dropped, so a
        // healed connection carries on in step.
        flowing(&mut mode).await?;
        to.write_all(&buffer[..read]).await?;
    }
}

async fn flowing(mode: &mut watch::Receiver<Mode>) -> io::Result<()> {
    loop {
        match *mode.borrow_and_update() {
            Mode::Forward => return Ok(()),
            Mode::Down => return Err(io::ErrorKind::ConnectionAborted.into()),
            Mode::BlackHole => {}
        }
        mode.changed().await.map_err(io::Error::other)?;
    }
}
