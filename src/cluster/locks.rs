//! One writer per name across the nodes: a PostgreSQL advisory lock per upload
//! (`pg_try_advisory_lock`), on a connection held for the upload, so that a killed node's
//! locks end with its connections.
//!
//! Every upload of a node with `[cluster]` holds a slot here, locked or not: one begun
//! while the database was away (policy `local`), or whose lock went with a lost connection,
//! holds an empty slot, and the heartbeat takes its lock as soon as the database answers,
//! before limits count again. If another node took the name meanwhile, both uploads go on
//! (neither can be told to stop without losing data) and that is logged.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};

use deadpool_postgres::Object;

use super::{Cluster, Unavailable};
use crate::error::Error;
use crate::limits::CLUSTER_OP_WITHIN;

/// The live uploads' slots.
#[derive(Default)]
pub(super) struct Locks {
    slots: Mutex<Vec<Weak<Slot>>>,
}

struct Slot {
    id: i64,
    state: Mutex<SlotState>,
    /// Another node held the name when the lock was taken again: said once, not per beat.
    conflict_logged: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct SlotState {
    /// The connection that holds the lock.
    conn: Option<Object>,
    /// The upload ended: never lock again.
    released: bool,
}

impl Slot {
    fn state(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Still uploading without a live lock.
    fn unlocked(&self) -> bool {
        let s = self.state();
        !s.released && s.conn.as_ref().is_none_or(|c| c.is_closed())
    }

    /// Keeps `c`, which now holds the lock; hands it back if the upload ended meanwhile.
    fn fill(&self, c: Object) -> Option<Object> {
        let mut s = self.state();
        if s.released {
            return Some(c);
        }
        s.conn = Some(c);
        None
    }

    /// Ends the slot: the connection holding the lock, if any, to be unlocked.
    fn release(&self) -> Option<Object> {
        let mut s = self.state();
        s.released = true;
        s.conn.take()
    }
}

/// What one lock attempt got.
enum Try {
    Locked(Box<Object>),
    Busy,
    /// The database did not answer.
    Away,
}

impl Cluster {
    /// Takes the upload lock of `key` (a storage location and path) for as long as the
    /// returned guard lives. `Busy` when another session holds it; `SharedState` when the
    /// database did not answer and the policy is `refuse`. Under policy `local` an upload
    /// without the database holds an empty slot, locked when the database returns.
    pub async fn lock_upload(&self, key: &str) -> Result<UploadLock, Error> {
        let id = lock_id(key);
        let conn = if self.ready.load(Ordering::Relaxed) {
            match self.try_lock(id).await {
                Try::Locked(c) => Some(*c),
                Try::Busy => return Err(Error::Busy),
                Try::Away => None,
            }
        } else {
            None
        };
        if conn.is_none() && self.policy == Unavailable::Refuse {
            return Err(Error::SharedState);
        }
        let slot = Arc::new(Slot {
            id,
            state: Mutex::new(SlotState {
                conn,
                released: false,
            }),
            conflict_logged: Default::default(),
        });
        let mut slots = self.locks.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.retain(|w| w.strong_count() > 0);
        slots.push(Arc::downgrade(&slot));
        Ok(UploadLock {
            slot,
            tasks: self.tasks.clone(),
        })
    }

    async fn try_lock(&self, id: i64) -> Try {
        let Some(c) = self.client().await else {
            return Try::Away;
        };
        let got = tokio::time::timeout(
            CLUSTER_OP_WITHIN,
            c.query_one("SELECT pg_try_advisory_lock($1)", &[&id]),
        )
        .await;
        match got {
            Ok(Ok(row)) if row.try_get::<_, bool>(0).unwrap_or(false) => Try::Locked(Box::new(c)),
            Ok(Ok(_)) => Try::Busy,
            Ok(Err(e)) => {
                if e.is_closed() {
                    self.lost();
                }
                Try::Away
            }
            Err(_) => {
                self.lost();
                Try::Away
            }
        }
    }

    /// Takes the lock of every live upload that has none; how many were taken.
    pub(super) async fn retake_locks(&self) -> Result<usize, String> {
        let slots: Vec<Arc<Slot>> = {
            let mut slots = self.locks.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots.retain(|w| w.strong_count() > 0);
            slots.iter().filter_map(Weak::upgrade).collect()
        };
        let mut taken = 0;
        for slot in slots.iter().filter(|s| s.unlocked()) {
            match self.try_lock(slot.id).await {
                Try::Locked(c) => {
                    if let Some(c) = slot.fill(*c) {
                        unlock(c, slot.id).await;
                    }
                    taken += 1;
                }
                Try::Busy if !slot.conflict_logged.swap(true, Ordering::Relaxed) => tracing::warn!(
                    lock = slot.id,
                    "an upload begun while the shared state was away has the same name as one on another node; both go on"
                ),
                Try::Busy => {}
                Try::Away => return Err("the database did not answer".into()),
            }
        }
        if taken > 0 {
            tracing::info!(uploads = taken, "upload locks taken again");
        }
        Ok(taken)
    }
}

/// A 64-bit advisory lock id for a key (FNV-1a: the same on every node and build).
fn lock_id(key: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

/// A held upload lock (or the slot of one to take): released when dropped, and by
/// PostgreSQL if the node dies, since it belongs to the connection held here.
pub struct UploadLock {
    slot: Arc<Slot>,
    tasks: crate::tasks::Tasks,
}

impl std::fmt::Debug for UploadLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UploadLock")
    }
}

impl UploadLock {
    /// Releases the lock now, so that the client told the upload is done can write the
    /// name again at once, through any node.
    pub async fn release(self) {
        if let Some(c) = self.slot.release() {
            unlock(c, self.slot.id).await;
        }
    }
}

async fn unlock(c: Object, id: i64) {
    let unlocked = tokio::time::timeout(
        CLUSTER_OP_WITHIN,
        c.execute("SELECT pg_advisory_unlock($1)", &[&id]),
    )
    .await;
    if !matches!(unlocked, Ok(Ok(_))) {
        // Never hand a connection that may still hold the lock back to the pool.
        let _ = Object::take(c);
    }
}

impl Drop for UploadLock {
    /// A lock not released on purpose (an early return) is released in the background.
    fn drop(&mut self) {
        let Some(c) = self.slot.release() else {
            return;
        };
        let id = self.slot.id;
        if tokio::runtime::Handle::try_current().is_ok() {
            self.tasks.spawn(unlock(c, id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_ids_are_stable() {
        assert_eq!(lock_id("s3://b/p/a.txt"), lock_id("s3://b/p/a.txt"));
        assert_ne!(lock_id("s3://b/p/a.txt"), lock_id("s3://b/p/b.txt"));
        assert_eq!(lock_id(""), 0xcbf2_9ce4_8422_2325_u64 as i64);
    }
}
