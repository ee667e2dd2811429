//! What every session of one server shares: the configuration in force and what a reload
//! swaps (users, certificate, storages, hooks), the limits and bans, the session registry
//! and metrics, and the shutdown level. The server builds it; sessions, the admin endpoint
//! and the accept loops hold an `Arc` of it.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::auth::Authenticator;
use crate::config::{Config, ListenerConfig};
use crate::limits::{Guard, Sessions};
use crate::tls::{self, CertSource, Tls};

mod listen;
mod preflight;
mod reload;

pub use listen::bind_listener;
pub use preflight::preflight;
/// How far a shutdown has gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stopping {
    No,
    /// Idle sessions get 421 and close; transfers run to their end, then close.
    Draining,
    /// The grace time is over: transfers are aborted.
    Abort,
}

/// Produces a fresh configuration on reload (the file re-read, command-line flags applied
/// again).
pub type Reloader = Box<dyn Fn() -> Result<Config, String> + Send + Sync>;

/// What every session of one server shares. What a reload may change sits behind locks that
/// are held only to clone an `Arc` out, never across IO.
pub struct Shared {
    config: RwLock<Arc<Config>>,
    reloader: std::sync::Mutex<Option<Reloader>>,
    /// Login rules; swapped whole when the users file is reloaded.
    auth: RwLock<Arc<Authenticator>>,
    /// The TLS server side, when any listener or policy uses TLS. Swapped whole on a
    /// certificate reload; readers clone the `Arc` out and never hold the lock across IO.
    tls: RwLock<Option<Arc<Tls>>>,
    tls_source: RwLock<Option<CertSource>>,
    /// The virtual hosts (`[[host]]`), replaced whole by a reload.
    hosts: RwLock<Arc<Vec<Arc<Host>>>>,
    pub sessions: Arc<Sessions>,
    /// Logged-in user behind each control connection's TLS session token.
    pub tls_owners: Arc<crate::tls::TokenOwners>,
    /// Failed logins and bans.
    pub guard: Arc<Guard>,
    /// The total session limit when `max_sessions` is unset: what the descriptor limit
    /// (raised to its hard limit at start) allows.
    pub auto_max_sessions: usize,
    /// Password checks running and waiting (bounded, per core).
    pub password_checks: crate::limits::PasswordChecks,
    /// Bandwidth allowances per user.
    pub buckets: crate::limits::Buckets,
    hooks: RwLock<Arc<crate::hooks::Hooks>>,
    /// Modes and owner of what uploads create.
    ownership: RwLock<crate::vfs::Ownership>,
    /// What PASV announces to whom (`public_address`, `[[passive_address]]`), resolved.
    announce: RwLock<Arc<crate::datachan::Announce>>,
    /// Jail roots open now, shared between sessions.
    pub roots: crate::vfs::Roots,
    /// The S3 storages by name (replaced whole by a reload; sessions keep theirs).
    stores: RwLock<Arc<Stores>>,
    /// Shared state with the other nodes (`[cluster]`), when configured.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// What each root with a quota holds.
    pub quotas: Arc<crate::quota::Quotas>,
    pub xferlog: Option<crate::observe::XferLog>,
    /// Shutdown level sessions watch: running, draining (finish transfers), abort.
    stop: tokio::sync::watch::Sender<Stopping>,
    /// Every session task, to wait for them on shutdown.
    pub tracker: tokio_util::task::TaskTracker,
    /// Every other task (janitor, cluster, hooks, xferlog writer), stopped after sessions.
    pub tasks: crate::tasks::Tasks,
    pub metrics: crate::observe::Metrics,
    /// Passive ports held, per client address.
    pub leases: Arc<crate::datachan::Leases>,
    /// The sessions connected now, for the admin interface.
    pub who: Arc<crate::observe::Who>,
    /// Users and addresses whose sessions write a protocol trace.
    pub trace: crate::observe::Trace,
    next_id: AtomicU64,
    /// Where a reload sends the listeners it bound or dropped, while the server runs (not
    /// under socket activation, where systemd owns the sockets).
    listener_changes: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedSender<ListenerChange>>>,
    /// One reload at a time (SIGHUP and the admin endpoint may race).
    reloading: std::sync::Mutex<()>,
}

/// What a reload changes in the set of control listeners; keyed by configured address.
#[derive(Debug, Default)]
pub struct ListenerChange {
    /// Newly bound, with their policies.
    pub add: Vec<(std::net::TcpListener, ListenerConfig)>,
    /// Configured addresses no longer listed.
    pub remove: Vec<SocketAddr>,
    /// Listeners kept whose policy changed.
    pub update: Vec<ListenerConfig>,
}

/// S3 storages by `[[storage]]` name.
pub type Stores = std::collections::HashMap<String, Arc<crate::vfs::s3::ObjectStore>>;

/// Builds the S3 storages a configuration names (no request is made).
pub fn build_stores(config: &Config) -> Result<Stores, String> {
    let mut out = Stores::new();
    for st in &config.storages {
        if st.kind != crate::config::StorageKind::S3 {
            continue;
        }
        let secret =
            crate::vfs::s3::Secret::load(st).map_err(|e| format!("storage `{}`: {e}", st.name))?;
        let store = crate::vfs::s3::ObjectStore::new(st, &secret)
            .map_err(|e| format!("storage `{}`: {e}", st.name))?;
        out.insert(st.name.clone(), Arc::new(store));
    }
    Ok(out)
}

impl ListenerChange {
    fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty() && self.update.is_empty()
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

/// The virtual hosts' own certificates: each host's names and its certificate files.
fn host_certs(config: &Config) -> Vec<(Vec<String>, CertSource)> {
    config
        .hosts
        .iter()
        .filter_map(|h| match (&h.tls_cert, &h.tls_key) {
            (Some(cert), Some(key)) => Some((
                h.names(),
                CertSource::Files {
                    cert: cert.clone(),
                    key: key.clone(),
                },
            )),
            _ => None,
        })
        .collect()
}

/// A virtual host (`[[host]]`) as sessions use it.
#[derive(Debug)]
pub struct Host {
    pub name: String,
    /// Its names and aliases, lower-cased.
    pub names: Vec<String>,
    /// The globals with the host's own keys.
    pub config: Arc<Config>,
    /// Its own users and anonymous policy.
    pub auth: Arc<Authenticator>,
}

/// Builds the virtual hosts of `config`; their logins share `cache_of`'s credential cache.
fn build_hosts(config: &Config, cache_of: &Authenticator) -> Result<Vec<Arc<Host>>, String> {
    config
        .hosts
        .iter()
        .map(|h| {
            let own = config.for_host(h);
            let users = own
                .all_users()
                .map_err(|e| format!("host `{}`: {e}", h.name))?;
            Ok(Arc::new(Host {
                name: h.name.clone(),
                names: h.names(),
                auth: Arc::new(Authenticator::new(&own, &users).sharing_cache_of(cache_of)),
                config: Arc::new(own),
            }))
        })
        .collect()
}

/// Where a configuration's certificate comes from, when it uses TLS at all.
fn cert_source(config: &Config) -> Option<CertSource> {
    config
        .tls_enabled()
        .then(|| match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => CertSource::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            _ => CertSource::Generated {
                dir: crate::secrets::state_dir(config),
            },
        })
}

impl Shared {
    /// Builds the shared state; loads or generates the certificate when TLS is on.
    pub fn new(config: Config) -> io::Result<Shared> {
        let tls_source = cert_source(&config);
        let tls = match &tls_source {
            Some(source) => {
                let tls = tls::load(source, &host_certs(&config))?;
                tracing::info!(source = %tls.source, sha256 = %tls.fingerprint, "TLS ready");
                Some(Arc::new(tls))
            }
            None => None,
        };
        let metrics = crate::observe::Metrics::default();
        let tasks = crate::tasks::Tasks::default();
        let who: Arc<crate::observe::Who> = Arc::default();
        let auth = Authenticator::new(
            &config,
            &config
                .all_users()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?,
        );
        let cluster = match &config.cluster.database_url {
            Some(_) => Some(
                crate::cluster::Cluster::new(&config.cluster, tasks.clone())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
            ),
            None => None,
        };
        let hosts = build_hosts(&config, &auth)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let quotas = crate::quota::Quotas::new(cluster.clone());
        quotas.set_active(auth.has_quota() || hosts.iter().any(|h| h.auth.has_quota()));
        Ok(Shared {
            auth: RwLock::new(Arc::new(auth)),
            hosts: RwLock::new(Arc::new(hosts)),
            tls: RwLock::new(tls),
            tls_source: RwLock::new(tls_source),
            sessions: Arc::new(Sessions::default()),
            tls_owners: Arc::default(),
            guard: {
                let guard = Guard::default();
                // A ban ends the address's open sessions too (each says 421 and closes).
                let who = who.clone();
                guard.on_ban(move |ip| {
                    for s in who.all().into_iter().filter(|s| s.client == ip) {
                        s.kick();
                    }
                });
                Arc::new(guard)
            },
            auto_max_sessions: crate::limits::sessions_for_descriptors(
                crate::limits::raise_descriptor_limit(),
            ),
            password_checks: crate::limits::PasswordChecks::per_core(),
            buckets: Default::default(),
            hooks: RwLock::new(Arc::new(crate::hooks::Hooks::new(&config, tasks.clone()))),
            ownership: RwLock::new(crate::vfs::Ownership::from_config(&config)),
            announce: RwLock::new(Arc::new(
                crate::datachan::Announce::resolve(&config)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
            )),
            roots: Default::default(),
            stores: RwLock::new(Arc::new(
                build_stores(&config)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
            )),
            cluster,
            quotas: Arc::new(quotas),
            stop: tokio::sync::watch::Sender::new(Stopping::No),
            tracker: tokio_util::task::TaskTracker::new(),
            tasks: tasks.clone(),
            leases: Arc::new(crate::datachan::Leases::new(metrics.passive_ports.clone())),
            metrics,
            who,
            trace: Default::default(),
            xferlog: match &config.xferlog {
                Some(path) => Some(crate::observe::XferLog::start(path, &tasks).map_err(|e| {
                    io::Error::new(e.kind(), format!("xferlog {}: {e}", path.display()))
                })?),
                None => None,
            },
            config: RwLock::new(Arc::new(config)),
            reloader: std::sync::Mutex::new(None),
            next_id: AtomicU64::new(1),
            listener_changes: std::sync::Mutex::new(None),
            reloading: std::sync::Mutex::new(()),
        })
    }

    /// The configuration now in force.
    pub fn config(&self) -> Arc<Config> {
        read(&self.config)
    }

    pub fn hooks(&self) -> Arc<crate::hooks::Hooks> {
        read(&self.hooks)
    }

    pub fn ownership(&self) -> crate::vfs::Ownership {
        read(&self.ownership)
    }

    pub fn announce(&self) -> Arc<crate::datachan::Announce> {
        read(&self.announce)
    }

    /// Sets how a reload obtains the new configuration (the CLI re-reads its file and
    /// flags); without one, a reload re-reads the users file and the certificate only.
    pub fn set_reloader(&self, f: Reloader) {
        if let Ok(mut r) = self.reloader.lock() {
            *r = Some(f);
        }
    }

    /// The jail for a login's root: a local directory, or a `storage:NAME` block.
    pub async fn jail(&self, root: &std::path::Path) -> io::Result<crate::vfs::Jail> {
        use crate::vfs::Jail;
        let Some(name) = crate::config::storage_name(root) else {
            return Ok(Jail::Disk(self.roots.open(root).await?));
        };
        if let Some(store) = read(&self.stores).get(name) {
            return Ok(Jail::Object(store.clone()));
        }
        let config = self.config();
        match config.storages.iter().find(|s| s.name == name) {
            Some(st) if st.kind == crate::config::StorageKind::Local => {
                let path = st.path.clone().unwrap_or_default();
                Ok(Jail::Disk(self.roots.open(&path).await?))
            }
            _ => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no storage named `{name}`"),
            )),
        }
    }

    /// The S3 storages by name, as they are now.
    pub fn stores(&self) -> Arc<Stores> {
        read(&self.stores)
    }

    /// Checks every S3 storage answers with its credentials; says which does not.
    pub async fn probe_stores(&self) -> Result<(), String> {
        let stores = read(&self.stores);
        for (name, store) in stores.iter() {
            store
                .probe()
                .await
                .map_err(|e| format!("storage `{name}` ({}): {e}", store.location))?;
        }
        Ok(())
    }

    /// Aborts, now and hourly, the interrupted uploads nobody resumed in time, and removes
    /// stale upload temporaries from the local roots (vfs::sweep).
    pub fn start_janitor(self: &Arc<Shared>) {
        let shared = Arc::downgrade(self);
        self.tasks.spawn_until_ending(async move {
            let mut tick = tokio::time::interval(crate::limits::JANITOR_EVERY);
            loop {
                tick.tick().await;
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                let config = shared.config();
                let local = config.clone();
                let swept = tokio::task::spawn_blocking(move || sweep_local(&local)).await;
                if let Ok(n @ 1..) = swept {
                    tracing::info!(removed = n, "removed stale upload temporaries");
                    // Interrupted uploads counted in quotas are gone.
                    shared.quotas.recount().await;
                }
                let stores = read(&shared.stores);
                for st in &config.storages {
                    let Some(store) = stores.get(&st.name) else {
                        continue;
                    };
                    let age = std::time::Duration::from_secs(st.resumable_for);
                    match store.janitor(age).await {
                        Ok(0) => {}
                        Ok(n) => {
                            tracing::info!(storage = %st.name, aborted = n, "aborted stale interrupted uploads")
                        }
                        Err(e) => {
                            tracing::warn!(storage = %st.name, error = %e, "janitor could not list uploads")
                        }
                    }
                }
            }
        });
    }

    /// A receiver of the shutdown level, for a session.
    pub fn stopping(&self) -> tokio::sync::watch::Receiver<Stopping> {
        self.stop.subscribe()
    }

    /// Raises the shutdown level and has every session look at it. A session that starts
    /// later sees it before it first waits.
    pub fn set_stopping(&self, level: Stopping) {
        self.stop.send_replace(level);
        self.wake_sessions();
    }

    /// From now on a reload sends the listeners it bound or dropped here, instead of
    /// leaving them to the next restart. `None` stops that (the server is stopping).
    pub fn route_listener_changes(
        &self,
        to: Option<tokio::sync::mpsc::UnboundedSender<ListenerChange>>,
    ) {
        *self
            .listener_changes
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = to;
    }

    fn wake_sessions(&self) {
        for view in self.who.all() {
            view.wake.notify_one();
        }
    }

    /// Reopens the log files (SIGUSR1, after logrotate).
    pub fn reopen_logs(&self) {
        if let Some(x) = &self.xferlog {
            x.reopen();
        }
    }

    /// The current login rules.
    pub fn auth(&self) -> Arc<Authenticator> {
        read(&self.auth)
    }

    /// Reloads (see [`Shared::reload`]) and returns how many users there are now.
    pub fn reload_users(&self) -> Result<usize, String> {
        self.reload_inner()
    }

    /// The current TLS server side.
    pub fn tls(&self) -> Option<Arc<Tls>> {
        read(&self.tls)
    }

    /// Re-reads the certificate and key (with everything else, see [`Shared::reload`]).
    /// On error the old ones stay in use; sessions already running keep their connections.
    pub fn reload_tls(&self) -> io::Result<()> {
        self.reload_inner().map(|_| ()).map_err(io::Error::other)
    }

    /// The virtual host named `name` (case-insensitive, a final dot ignored), if any.
    pub fn host(&self, name: &str) -> Option<Arc<Host>> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        read(&self.hosts)
            .iter()
            .find(|h| h.names.contains(&name))
            .cloned()
    }

    /// Every virtual host.
    pub fn hosts(&self) -> Arc<Vec<Arc<Host>>> {
        read(&self.hosts)
    }

    pub fn next_session_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

fn read<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read()
        .map(|v| v.clone())
        .unwrap_or_else(|e| e.into_inner().clone())
}

fn write<T>(lock: &RwLock<T>, value: T) {
    match lock.write() {
        Ok(mut v) => *v = value,
        Err(e) => *e.into_inner() = value,
    }
}

/// One sweep of every local root `config` serves; how many temporaries were removed.
fn sweep_local(config: &Config) -> usize {
    let users = config.all_users().unwrap_or_default();
    let ages = crate::vfs::sweep::Ages::of(config);
    crate::vfs::sweep::local_roots(config, &users)
        .iter()
        .map(|root| match crate::vfs::sweep::sweep(root, ages) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(root = %root.display(), error = %e, "janitor could not walk a root");
                0
            }
        })
        .sum()
}
