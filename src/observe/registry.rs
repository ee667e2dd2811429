//! The sessions connected now (what `wharf who` shows and `wharf kick` ends) and which of
//! them write a protocol trace. Sessions update their own entry; the admin endpoint reads.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// What the admin interface shows of one session; the session updates it.
#[derive(Debug)]
pub struct SessionView {
    pub id: u64,
    pub client: IpAddr,
    pub started: SystemTime,
    pub user: Mutex<Option<String>>,
    /// The virtual host chosen (HOST or SNI); none for the default host.
    pub host: Mutex<Option<String>>,
    pub tls: AtomicBool,
    pub command: Mutex<String>,
    pub last_active: Mutex<Instant>,
    pub transfer: Mutex<Option<TransferView>>,
    /// Wakes the session to look at `kicked` and the server's shutdown level: one waiter
    /// for both keeps every idle session's task smaller.
    pub wake: Notify,
    /// The administrator ended this session.
    pub kicked: AtomicBool,
    /// The last lines of its protocol trace, while traced (empty, unallocated, otherwise).
    pub trace: Mutex<std::collections::VecDeque<String>>,
    /// Counted in the cluster's shared state (at admission, login, or re-registered after
    /// an outage): its end must be told there.
    pub registered: AtomicBool,
}

impl SessionView {
    /// Ends the session (kick).
    pub fn kick(&self) {
        self.kicked.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }
}

/// A transfer in flight, as shown by `wharf who`.
#[derive(Debug, Clone)]
pub struct TransferView {
    pub direction: &'static str,
    pub path: String,
    pub progress: Arc<AtomicU64>,
    pub started: Instant,
    /// The bytes a download will send, when known.
    pub size: Option<u64>,
}

/// Trace lines a session keeps for the admin interface (older ones are dropped).
pub const TRACE_LINES: usize = 200;

impl SessionView {
    /// Keeps a line of the session's protocol trace, for `GET /sessions/{id}/trace`.
    pub fn traced(&self, line: String) {
        if let Ok(mut t) = self.trace.lock() {
            if t.len() >= TRACE_LINES {
                t.pop_front();
            }
            t.push_back(line);
        }
    }

    /// The trace lines kept.
    pub fn trace_lines(&self) -> Vec<String> {
        self.trace
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn touch(&self, command: &str) {
        if let Ok(mut c) = self.command.lock() {
            command.clone_into(&mut c);
        }
        if let Ok(mut t) = self.last_active.lock() {
            *t = Instant::now();
        }
    }
}

/// The sessions connected now.
#[derive(Debug, Default)]
pub struct Who {
    inner: Mutex<HashMap<u64, Arc<SessionView>>>,
}

/// Removes a session from [`Who`] when the session ends.
#[derive(Debug)]
pub struct Listed {
    who: Arc<Who>,
    pub view: Arc<SessionView>,
}

impl Drop for Listed {
    fn drop(&mut self) {
        if let Ok(mut m) = self.who.inner.lock() {
            m.remove(&self.view.id);
        }
    }
}

impl Who {
    pub fn add(self: &Arc<Self>, id: u64, client: IpAddr) -> Listed {
        let view = Arc::new(SessionView {
            id,
            client,
            started: SystemTime::now(),
            user: Mutex::new(None),
            host: Mutex::new(None),
            tls: AtomicBool::new(false),
            command: Mutex::new(String::new()),
            last_active: Mutex::new(Instant::now()),
            transfer: Mutex::new(None),
            wake: Notify::new(),
            kicked: AtomicBool::new(false),
            trace: Mutex::new(std::collections::VecDeque::new()),
            registered: AtomicBool::new(false),
        });
        if let Ok(mut m) = self.inner.lock() {
            m.insert(id, view.clone());
        }
        Listed {
            who: self.clone(),
            view,
        }
    }

    pub fn all(&self) -> Vec<Arc<SessionView>> {
        let mut v: Vec<_> = self
            .inner
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        v.sort_by_key(|s| s.id);
        v
    }

    pub fn get(&self, id: u64) -> Option<Arc<SessionView>> {
        self.inner.lock().ok()?.get(&id).cloned()
    }
}

/// One session as JSON.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct SessionInfo {
    pub id: u64,
    pub user: Option<String>,
    /// The virtual host the session chose, if not the default one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub client: String,
    pub tls: bool,
    pub command: String,
    pub idle_seconds: u64,
    pub connected_seconds: u64,
    pub transfer: Option<TransferInfo>,
}

#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct TransferInfo {
    pub direction: String,
    pub path: String,
    pub bytes: u64,
    pub bytes_per_second: u64,
    /// What a download will send in all, when known (for a progress bar).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

impl SessionView {
    pub fn info(&self) -> SessionInfo {
        let transfer = self.transfer.lock().ok().and_then(|t| t.clone()).map(|t| {
            let bytes = t.progress.load(Ordering::Relaxed);
            let secs = t.started.elapsed().as_secs_f64().max(0.001);
            TransferInfo {
                direction: t.direction.to_string(),
                path: t.path,
                bytes,
                bytes_per_second: (bytes as f64 / secs) as u64,
                size: t.size,
            }
        });
        SessionInfo {
            id: self.id,
            user: self.user.lock().ok().and_then(|u| u.clone()),
            host: self.host.lock().ok().and_then(|h| h.clone()),
            client: self.client.to_string(),
            tls: self.tls.load(Ordering::Relaxed),
            command: self.command.lock().map(|c| c.clone()).unwrap_or_default(),
            idle_seconds: self
                .last_active
                .lock()
                .map(|t| t.elapsed().as_secs())
                .unwrap_or(0),
            connected_seconds: self.started.elapsed().map(|d| d.as_secs()).unwrap_or(0),
            transfer,
        }
    }
}

/// Which sessions write a protocol trace: by user name or client address, switched at run
/// time through the admin endpoint.
#[derive(Debug, Default)]
pub struct Trace {
    inner: Mutex<std::collections::HashSet<String>>,
    /// Fast path: nothing is traced (the usual case).
    any: AtomicBool,
}

impl Trace {
    pub fn set(&self, key: &str, on: bool) {
        if let Ok(mut m) = self.inner.lock() {
            if on {
                m.insert(key.to_string());
            } else {
                m.remove(key);
            }
            self.any.store(!m.is_empty(), Ordering::Relaxed);
        }
    }

    /// Whether a session of `user` from `client` is traced.
    pub fn wants(&self, user: Option<&str>, client: IpAddr) -> bool {
        if !self.any.load(Ordering::Relaxed) {
            return false;
        }
        self.inner
            .lock()
            .is_ok_and(|m| m.contains(&client.to_string()) || user.is_some_and(|u| m.contains(u)))
    }

    pub fn list(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .inner
            .lock()
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default();
        v.sort();
        v
    }
}
