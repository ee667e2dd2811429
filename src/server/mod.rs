//! The server: binds the control listeners, accepts connections and spawns one session
//! task per connection. A panic in a session ends that task only; accepting goes on.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::config::{Config, ListenerConfig};
use crate::session;
use crate::shared::{Shared, Stopping, bind_listener};

mod accept;
mod process;

use accept::accept_loop;
use process::inherited_listeners;
pub use process::{apply_process_settings, notify};

/// A bound server, ready to run.
pub struct Server {
    /// Control listeners with their policies.
    listeners: Vec<(TcpListener, ListenerConfig)>,
    /// The listeners came from systemd (socket activation); a reload leaves them alone.
    activated: bool,
    /// The admin endpoint's listener, when configured.
    admin: Option<TcpListener>,
    /// The admin endpoint's Unix socket and its path (removed at exit), when configured.
    admin_unix: Option<(tokio::net::UnixListener, std::path::PathBuf)>,
    shared: Arc<Shared>,
}

impl Server {
    /// Validates the configuration and binds every listener. A dual-stack `[::]` listener
    /// falls back to `0.0.0.0` on a host without IPv6.
    pub async fn bind(config: Config) -> io::Result<Server> {
        crate::shared::preflight(&config)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut listeners = Vec::new();
        // Socket activation: serve on what systemd bound, instead of `listen`.
        for (l, implicit) in inherited_listeners()? {
            let addr = l.local_addr()?;
            tracing::info!(%addr, implicit, "serving on an inherited socket");
            let policy = config
                .listeners
                .iter()
                .find(|c| c.address == addr)
                .cloned()
                .unwrap_or_else(|| ListenerConfig::new(addr, implicit));
            listeners.push((l, policy));
        }
        let activated = !listeners.is_empty();
        for listener in config.all_listeners().into_iter().filter(|_| !activated) {
            let l = bind_listener(listener.address).map_err(io::Error::other)?;
            listeners.push((TcpListener::from_std(l)?, listener));
        }
        let admin =
            match config.admin_listen {
                Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| {
                    io::Error::new(e.kind(), format!("admin endpoint {addr}: {e}"))
                })?),
                None => None,
            };
        let admin_unix = match &config.admin_socket {
            Some(path) => Some((
                crate::admin::bind_unix(path).map_err(|e| {
                    io::Error::new(e.kind(), format!("admin_socket {}: {e}", path.display()))
                })?,
                path.clone(),
            )),
            None => None,
        };
        let shared = Arc::new(Shared::new(config)?);
        if let Some(c) = &shared.cluster
            && let Err(e) = c.start().await
        {
            // Not fatal: the pool retries, and logins follow `when_unavailable` meanwhile.
            tracing::warn!(error = %e, "shared state (PostgreSQL) unreachable at start");
        }
        // A wrong key or a missing bucket is said now, not at the first upload.
        shared
            .probe_stores()
            .await
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(Server {
            listeners,
            activated,
            admin,
            admin_unix,
            shared,
        })
    }

    /// The bound explicit listeners, in the order of `listen` (port 0 resolved).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.addrs(false)
    }

    /// The bound implicit-TLS listeners, in the order of `implicit_listen`.
    pub fn implicit_addrs(&self) -> Vec<SocketAddr> {
        self.addrs(true)
    }

    fn addrs(&self, implicit: bool) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter(|(_, l)| l.implicit == implicit)
            .filter_map(|(l, _)| l.local_addr().ok())
            .collect()
    }

    /// The SHA-256 fingerprint of the TLS certificate, when TLS is on.
    pub fn tls_fingerprint(&self) -> Option<String> {
        self.shared.tls().map(|t| t.fingerprint.clone())
    }

    /// The admin endpoint's address, when configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The configuration the server runs with.
    pub fn config(&self) -> Arc<Config> {
        self.shared.config()
    }

    /// A handle for reloading the certificate while the server runs (SIGHUP).
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Accepts until `shutdown` completes, then stops gracefully: no new connections,
    /// idle sessions get 421, transfers may finish within `shutdown_grace`, then the rest
    /// are aborted (atomic uploads leave nothing under their final name).
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let mut tasks = JoinSet::new();
        self.shared.start_janitor();
        let cfg = self.shared.config();
        tracing::info!(
            max_sessions = cfg.max_sessions.unwrap_or(self.shared.auto_max_sessions),
            max_sessions_per_ip = cfg.max_sessions_per_ip,
            "session limits (0 = none)"
        );
        if let Some(c) = &self.shared.cluster {
            c.spawn_tasks(
                Arc::downgrade(&self.shared.guard),
                Arc::downgrade(&self.shared.who),
            );
        }
        if let Some(admin) = self.admin {
            tasks.spawn(crate::admin::serve(admin, self.shared.clone()));
        }
        let admin_path = self.admin_unix.map(|(listener, path)| {
            tasks.spawn(crate::admin::serve(listener, self.shared.clone()));
            path
        });
        // Accepting tasks by configured address, each with its policy (a reload may change it).
        let mut accepting = HashMap::new();
        let start = |tasks: &mut JoinSet<()>, listener: TcpListener, policy: ListenerConfig| {
            let address = policy.address;
            let (tx, rx) = tokio::sync::watch::channel(Arc::new(policy));
            let task = tasks.spawn(accept_loop(listener, rx, self.shared.clone()));
            (address, (task, tx))
        };
        for (listener, policy) in self.listeners {
            let (address, running) = start(&mut tasks, listener, policy);
            accepting.insert(address, running);
        }
        let (changes_tx, mut changes) = tokio::sync::mpsc::unbounded_channel();
        if !self.activated {
            self.shared.route_listener_changes(Some(changes_tx));
        }
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                Some(change) = changes.recv() => {
                    for address in change.remove {
                        if let Some((task, _)) = accepting.remove(&address) {
                            task.abort();
                            tracing::info!(%address, "stopped listening");
                        }
                    }
                    for policy in change.update {
                        if let Some((_, tx)) = accepting.get(&policy.address) {
                            tx.send_replace(Arc::new(policy));
                        }
                    }
                    for (std_listener, policy) in change.add {
                        match TcpListener::from_std(std_listener) {
                            Ok(l) => {
                                let bound = l.local_addr().ok();
                                tracing::info!(address = ?bound, implicit = policy.implicit, "listening");
                                let (address, running) = start(&mut tasks, l, policy);
                                accepting.insert(address, running);
                            }
                            Err(e) => tracing::error!(error = %e, "cannot serve a new listener"),
                        }
                    }
                }
            }
        }
        self.shared.route_listener_changes(None);
        tasks.abort_all();
        let shared = self.shared;
        shared.tracker.close();
        tracing::info!(sessions = shared.sessions.total(), "shutting down");
        shared.set_stopping(Stopping::Draining);
        let grace = Duration::from_secs(shared.config().shutdown_grace);
        if tokio::time::timeout(grace, shared.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("shutdown grace over; aborting transfers");
            shared.set_stopping(Stopping::Abort);
            let _ = tokio::time::timeout(crate::limits::STOP_WITHIN, shared.tracker.wait()).await;
        }
        // Background work ends after the sessions that feed it (hooks, xferlog lines).
        if !shared.tasks.stop(crate::limits::STOP_WITHIN).await {
            tracing::warn!("background tasks still running at exit");
        }
        if let Some(path) = admin_path {
            let _ = std::fs::remove_file(path);
        }
        tracing::info!("stopped");
    }
}
