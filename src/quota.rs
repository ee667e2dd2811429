//! Quotas: what a login's root holds (bytes, files), counted at first need and then kept
//! up to date by every change wharf makes there; uploads are charged as their bytes arrive.
//!
//! A root is known by its storage key (`Jail::lock_key` of its `/`), so two logins on the
//! same root share one count, and a change under a root counts for every counted root that
//! holds it (nested roots). On a cluster the count lives in PostgreSQL (`wharf_quota`):
//! read at each check, moved by each change, so every node sees the same usage. Interrupted
//! uploads kept for a resume count in bytes (they take room), not in files.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use wharf_proto::listing::Kind;

use crate::cluster::Cluster;
use crate::config::Quota;
use crate::error::Error;
use crate::vfs::{Jail, UPLOAD_RESUME_PREFIX, UPLOAD_TEMP_PREFIX, VPath};

/// What a root holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub bytes: u64,
    pub files: u64,
}

/// One counted root.
#[derive(Debug)]
pub struct Account {
    key: String,
    /// This node's figure; `None` until counted (or after a recount was asked).
    usage: Mutex<Option<Usage>>,
    /// One count (a walk of the root) at a time.
    counting: tokio::sync::Mutex<()>,
    /// Bytes received by this node's uploads in progress, not yet in `usage`.
    in_flight: AtomicU64,
}

impl Account {
    fn figure(&self) -> Option<Usage> {
        self.usage.lock().ok().and_then(|u| *u)
    }

    fn set(&self, u: Option<Usage>) {
        if let Ok(mut g) = self.usage.lock() {
            *g = u;
        }
    }

    fn add(&self, bytes: i64, files: i64) {
        if let Ok(mut g) = self.usage.lock()
            && let Some(u) = g.as_mut()
        {
            u.bytes = u.bytes.saturating_add_signed(bytes);
            u.files = u.files.saturating_add_signed(files);
        }
    }
}

/// Every counted root of this node, and the cluster that shares the counts.
#[derive(Debug, Default)]
pub struct Quotas {
    accounts: Mutex<HashMap<String, Arc<Account>>>,
    cluster: Option<Arc<Cluster>>,
    /// Some login has a quota: changes are worth counting.
    active: AtomicBool,
}

/// Whether the root known as `key` holds the storage key `path`.
fn covers(key: &str, path: &str) -> bool {
    let k = key.trim_end_matches('/');
    path == key || path == k || (path.starts_with(k) && path[k.len()..].starts_with('/'))
}

/// The storage key of `path` (a local root's own key ends in `/.`: without it).
fn key_of(jail: &Jail, path: &VPath) -> String {
    let mut key = jail.lock_key(path);
    if key.ends_with("/.") {
        key.truncate(key.len() - 2);
    }
    key
}

/// What a name takes in a root: the file under it and an interrupted upload of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Footprint {
    pub bytes: u64,
    pub files: u64,
    /// The size of the file under the name, if there is one.
    pub file: Option<u64>,
}

impl Footprint {
    /// Measures `path` in `jail` now.
    pub async fn of(jail: &Jail, path: &VPath) -> Footprint {
        let mut f = Footprint::default();
        if let Ok(e) = jail.stat(path).await
            && e.kind == Kind::File
        {
            f.bytes = e.size;
            f.files = 1;
            f.file = Some(e.size);
        }
        if matches!(jail, Jail::Disk(_))
            && let Ok(e) = jail.stat(&path.upload_resume()).await
            && e.kind == Kind::File
        {
            f.bytes += e.size;
        }
        f
    }

    /// The change from `before` to `self`.
    pub fn since(self, before: Footprint) -> (i64, i64) {
        (
            self.bytes as i64 - before.bytes as i64,
            self.files as i64 - before.files as i64,
        )
    }
}

/// Counts what `jail`'s root holds: every file (hidden interrupted uploads in bytes only;
/// uploads in progress are charged by their transfers, not here).
async fn count(jail: &Jail) -> Result<Usage, Error> {
    let mut usage = Usage::default();
    let mut dirs = vec![VPath::root()];
    // A directory reached twice (a symlink to one above it) is counted once, and a loop
    // ends.
    let mut seen = std::collections::HashSet::new();
    if let Ok(root) = jail.stat(&VPath::root()).await {
        seen.insert(root.unique);
    }
    while let Some(dir) = dirs.pop() {
        let entries = match jail.list(&dir).await {
            Ok(e) => e,
            // Removed while counting: it holds nothing now.
            Err(Error::NotFound) if !dir.is_root() => continue,
            Err(e) => return Err(e),
        };
        for e in entries {
            let name = e.name.as_slice();
            match e.kind {
                Kind::Dir if name != b"." && name != b".." => {
                    if !seen.insert(e.unique) {
                        continue;
                    }
                    if let Ok(sub) = dir.resolve(name) {
                        dirs.push(sub);
                    }
                }
                Kind::File if name.starts_with(UPLOAD_RESUME_PREFIX.as_bytes()) => {
                    usage.bytes += e.size;
                }
                Kind::File if name.starts_with(UPLOAD_TEMP_PREFIX.as_bytes()) => {}
                Kind::File => {
                    usage.bytes += e.size;
                    usage.files += 1;
                }
                _ => {}
            }
        }
    }
    Ok(usage)
}

/// What one upload has received, charged to its root while it runs.
#[derive(Debug)]
pub struct Charge {
    account: Arc<Account>,
    limit: Quota,
    /// Bytes the upload frees when it completes (the file it replaces).
    credit: u64,
    charged: AtomicU64,
}

impl Charge {
    /// The upload has received `total` bytes: over the quota it must stop.
    pub fn reach(&self, total: u64) -> Result<(), Error> {
        let before = self.charged.swap(total, Ordering::Relaxed);
        let flying = if total >= before {
            self.account
                .in_flight
                .fetch_add(total - before, Ordering::Relaxed)
                + (total - before)
        } else {
            self.account
                .in_flight
                .fetch_sub(before - total, Ordering::Relaxed)
                - (before - total)
        };
        let Some(limit) = self.limit.bytes else {
            return Ok(());
        };
        let used = self.account.figure().unwrap_or_default().bytes;
        if used.saturating_add(flying) > limit.saturating_add(self.credit) {
            return Err(Error::OverQuota);
        }
        Ok(())
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        let n = self.charged.load(Ordering::Relaxed);
        self.account.in_flight.fetch_sub(n, Ordering::Relaxed);
    }
}

impl Quotas {
    pub fn new(cluster: Option<Arc<Cluster>>) -> Quotas {
        Quotas {
            cluster,
            ..Quotas::default()
        }
    }

    /// Says whether any login has a quota (set at start and by each reload); without one,
    /// nothing is counted.
    pub fn set_active(&self, active: bool) {
        self.active.store(active, Ordering::Relaxed);
    }

    /// Whether changes are counted.
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// The account of `jail`'s root.
    fn account(&self, jail: &Jail) -> Arc<Account> {
        let key = key_of(jail, &VPath::root());
        let mut map = match self.accounts.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.entry(key.clone())
            .or_insert_with(|| {
                Arc::new(Account {
                    key,
                    usage: Mutex::new(None),
                    counting: tokio::sync::Mutex::new(()),
                    in_flight: AtomicU64::new(0),
                })
            })
            .clone()
    }

    /// What `jail`'s root holds now, counted if nobody has yet (on a cluster, as the
    /// database says; this node's own figure while the database is away).
    pub async fn usage(&self, jail: &Jail) -> Result<Usage, Error> {
        let account = self.account(jail);
        self.usage_of(&account, jail).await
    }

    async fn usage_of(&self, account: &Account, jail: &Jail) -> Result<Usage, Error> {
        if let Some(c) = &self.cluster {
            match c.quota_usage(&account.key).await {
                Some(Some((bytes, files))) => {
                    let u = Usage { bytes, files };
                    account.set(Some(u));
                    return Ok(u);
                }
                Some(None) => {
                    let _one = account.counting.lock().await;
                    let u = count(jail).await?;
                    let u = match c.quota_counted(&account.key, u.bytes, u.files).await {
                        Some((bytes, files)) => Usage { bytes, files },
                        None => u,
                    };
                    account.set(Some(u));
                    return Ok(u);
                }
                None => {}
            }
        }
        if let Some(u) = account.figure() {
            return Ok(u);
        }
        let _one = account.counting.lock().await;
        if let Some(u) = account.figure() {
            return Ok(u);
        }
        let u = count(jail).await?;
        account.set(Some(u));
        Ok(u)
    }

    /// Before an upload to a name whose footprint is `before`: refused (552) when the
    /// root is full, else its charge. `replaces`: the upload replaces that file when
    /// complete (its bytes are given back then).
    pub async fn admit(
        &self,
        jail: &Jail,
        quota: Quota,
        before: Footprint,
        new_name: bool,
        replaces: bool,
    ) -> Result<Charge, Error> {
        let account = self.account(jail);
        let usage = self.usage_of(&account, jail).await?;
        if let Some(files) = quota.files
            && (new_name || before.files == 0)
            && usage.files >= files
        {
            return Err(Error::OverQuota);
        }
        if let Some(bytes) = quota.bytes
            && usage
                .bytes
                .saturating_add(account.in_flight.load(Ordering::Relaxed))
                >= bytes.saturating_add(if replaces { before.bytes } else { 0 })
        {
            return Err(Error::OverQuota);
        }
        Ok(Charge {
            account,
            limit: quota,
            credit: if replaces { before.bytes } else { 0 },
            charged: AtomicU64::new(0),
        })
    }

    /// Something under `path` changed by `bytes` and `files`: every counted root that
    /// holds it moves (here, and in the database on a cluster).
    pub async fn changed(&self, jail: &Jail, path: &VPath, bytes: i64, files: i64) {
        if (bytes == 0 && files == 0) || !self.active() {
            return;
        }
        let key = key_of(jail, path);
        for a in self.all() {
            if covers(&a.key, &key) {
                a.add(bytes, files);
            }
        }
        if let Some(c) = &self.cluster {
            c.quota_change(&key, bytes, files).await;
        }
    }

    /// A directory moved from `from` to `to`: the roots that hold one and not the other,
    /// and the roots inside either, are counted again at their next need.
    pub async fn moved_dir(&self, jail: &Jail, from: &VPath, to: &VPath) {
        if !self.active() {
            return;
        }
        let (f, t) = (key_of(jail, from), key_of(jail, to));
        for a in self.all() {
            if covers(&a.key, &f) != covers(&a.key, &t) || covers(&f, &a.key) || covers(&t, &a.key)
            {
                a.set(None);
            }
        }
        if let Some(c) = &self.cluster {
            c.quota_forget(&f).await;
            c.quota_forget(&t).await;
        }
    }

    /// Forgets every count (files removed behind wharf's back, a reload): counted again
    /// at the next need.
    pub async fn recount(&self) {
        for a in self.all() {
            a.set(None);
            if let Some(c) = &self.cluster {
                c.quota_forget(&a.key).await;
            }
        }
    }

    /// Forgets this node's own figures (a reload); the cluster's stay.
    pub fn forget_local(&self) {
        for a in self.all() {
            a.set(None);
        }
    }

    fn all(&self) -> Vec<Arc<Account>> {
        match self.accounts.lock() {
            Ok(m) => m.values().cloned().collect(),
            Err(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_covers_what_is_under_it_only() {
        assert!(covers("/srv/a", "/srv/a"));
        assert!(covers("/srv/a", "/srv/a/x"));
        assert!(covers("/srv/a/", "/srv/a/x/y"));
        assert!(!covers("/srv/a", "/srv/ab"));
        assert!(!covers("/srv/a", "/srv"));
        assert!(covers("s3://bucket/", "s3://bucket/x"));
    }

    #[test]
    fn charges_add_up_and_stop_at_the_limit() {
        let account = Arc::new(Account {
            key: "/r".into(),
            usage: Mutex::new(Some(Usage {
                bytes: 60,
                files: 1,
            })),
            counting: tokio::sync::Mutex::new(()),
            in_flight: AtomicU64::new(0),
        });
        let limit = Quota {
            bytes: Some(100),
            files: None,
        };
        let a = Charge {
            account: account.clone(),
            limit,
            credit: 0,
            charged: AtomicU64::new(0),
        };
        let b = Charge {
            account: account.clone(),
            limit,
            credit: 10,
            charged: AtomicU64::new(0),
        };
        assert!(a.reach(20).is_ok());
        assert!(b.reach(20).is_ok());
        // 60 + 20 + 25 = 105 > 100.
        assert!(matches!(a.reach(25), Err(Error::OverQuota)));
        // b replaces 10 bytes: 60 + 25 + 25 = 110 ≤ 110.
        assert!(b.reach(25).is_ok());
        drop(a);
        drop(b);
        assert_eq!(account.in_flight.load(Ordering::Relaxed), 0);
    }
}
