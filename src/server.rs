//! The server: binds the control listeners, accepts connections and spawns one session
//! task per connection. A panic in a session ends that task only; accepting goes on.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use tokio::net::TcpListener;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::session;

/// What every session of one server shares (read-only after start).
#[derive(Debug)]
pub struct Shared {
    pub config: Config,
    pub auth: Authenticator,
    next_id: AtomicU64,
}

impl Shared {
    pub fn new(config: Config) -> Shared {
        Shared {
            auth: Authenticator::new(&config),
            config,
            next_id: AtomicU64::new(1),
        }
    }

    pub fn next_session_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// A bound server, ready to run.
pub struct Server {
    listeners: Vec<TcpListener>,
    shared: Arc<Shared>,
}

/// Binds one control listener. `[::]` is made dual-stack so IPv4 clients reach it too.
fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if let SocketAddr::V6(v6) = addr {
        socket.set_only_v6(!v6.ip().is_unspecified())?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

impl Server {
    /// Validates the configuration and binds every listener. A dual-stack `[::]` listener
    /// falls back to `0.0.0.0` on a host without IPv6.
    pub async fn bind(config: Config) -> io::Result<Server> {
        config
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let mut listeners = Vec::new();
        for &addr in &config.listen {
            let l = match bind(addr) {
                Err(e) if addr.ip().is_unspecified() && addr.is_ipv6() => {
                    tracing::warn!(%addr, error = %e, "IPv6 unavailable; listening on IPv4 only");
                    bind(SocketAddr::from(([0, 0, 0, 0], addr.port())))?
                }
                other => other.map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"))
                })?,
            };
            listeners.push(l);
        }
        Ok(Server {
            listeners,
            shared: Arc::new(Shared::new(config)),
        })
    }

    /// The bound addresses, in the order of `listen` (port 0 resolved).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Accepts until `shutdown` completes.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let mut tasks = tokio::task::JoinSet::new();
        for listener in self.listeners {
            tasks.spawn(accept_loop(listener, self.shared.clone()));
        }
        shutdown.await;
        tasks.abort_all();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                // ABOR arrives as TCP urgent data (ftplib, BSD ftp); keep that byte in
                // the stream so the line framer sees the whole command.
                let _ = socket2::SockRef::from(&stream).set_out_of_band_inline(true);
                let shared = shared.clone();
                tokio::spawn(session::run(stream, peer, shared));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
