//! Verified credentials, remembered for a while: after a successful argon2id verification,
//! an HMAC-SHA-256 (per-process random key) of the user, the password and the stored hash
//! is kept with its time; a login that matches it within `credential_cache` seconds skips
//! the verification (~20 ms of a core) — what lets a fleet of scanners that log in per file
//! do so at the speed of anonymous logins.
//!
//! The trade-off: for that long, a password is checked against a keyed hash in memory,
//! not against argon2; the key never leaves the process and the entry holds no password.
//! Failed attempts never enter; a changed hash (a reload with a new password) no longer
//! matches; a user removed by a reload is not found before the cache is asked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type Tag = [u8; 32];

/// The remembered logins, shared across reloads.
pub struct CredentialCache {
    key: [u8; 32],
    entries: Mutex<HashMap<String, (Tag, Instant)>>,
    /// Verifications under way, by tag: the same credentials arriving meanwhile wait for
    /// the first check instead of each costing one (a fleet that starts together).
    flights: Mutex<HashMap<Tag, Arc<tokio::sync::Mutex<()>>>>,
}

/// Held while one set of credentials is verified; see [`CredentialCache::flight`].
pub struct Flight<'a> {
    cache: &'a CredentialCache,
    tag: Tag,
    held: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        let mut flights = self.cache.flights.lock().unwrap_or_else(|e| e.into_inner());
        // The map's reference and this guard's: nobody else waits, the entry can go.
        if flights
            .get(&self.tag)
            .is_some_and(|f| Arc::strong_count(f) <= 2)
        {
            flights.remove(&self.tag);
        }
        drop(self.held.take());
    }
}

impl std::fmt::Debug for CredentialCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialCache(..)")
    }
}

impl Default for CredentialCache {
    fn default() -> Self {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        CredentialCache {
            key,
            entries: Mutex::default(),
            flights: Mutex::default(),
        }
    }
}

impl CredentialCache {
    fn mac(&self, user: &str, password: &[u8], phc: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        // Lengths first, so that no two different triples feed the same bytes.
        for part in [user.as_bytes(), password, phc.as_bytes()] {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part);
        }
        mac
    }

    /// Whether `user` logged in with `password` against `phc` less than `ttl` ago.
    pub fn remembers(&self, user: &str, password: &[u8], phc: &str, ttl: Duration) -> bool {
        let Some((tag, at)) = self.lock().get(user).copied() else {
            return false;
        };
        // Constant-time comparison (`verify_slice`).
        at.elapsed() < ttl && self.mac(user, password, phc).verify_slice(&tag).is_ok()
    }

    /// Remembers a login that argon2 verified.
    pub fn remember(&self, user: &str, password: &[u8], phc: &str, ttl: Duration) {
        let tag: Tag = self.mac(user, password, phc).finalize().into_bytes().into();
        let mut entries = self.lock();
        if entries.len() >= crate::limits::MAX_CACHED_CREDENTIALS {
            entries.retain(|_, (_, at)| at.elapsed() < ttl);
            if entries.len() >= crate::limits::MAX_CACHED_CREDENTIALS {
                entries.clear();
            }
        }
        entries.insert(user.to_string(), (tag, Instant::now()));
    }

    /// Waits until no other verification of these credentials is under way, then holds the
    /// turn until dropped: the caller asks [`Self::remembers`] again and verifies only if
    /// the one before it failed (failures are never remembered).
    pub async fn flight(&self, user: &str, password: &[u8], phc: &str) -> Flight<'_> {
        let tag: Tag = self.mac(user, password, phc).finalize().into_bytes().into();
        let lock = self
            .flights
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(tag)
            .or_default()
            .clone();
        Flight {
            cache: self,
            tag,
            held: Some(lock.lock_owned().await),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Tag, Instant)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_password_and_hash_within_the_time() {
        let c = CredentialCache::default();
        let ttl = Duration::from_secs(60);
        assert!(!c.remembers("a", b"pw", "$h1", ttl));
        c.remember("a", b"pw", "$h1", ttl);
        assert!(c.remembers("a", b"pw", "$h1", ttl));
        assert!(!c.remembers("a", b"pw2", "$h1", ttl), "another password");
        assert!(
            !c.remembers("a", b"pw", "$h2", ttl),
            "the hash changed (reload)"
        );
        assert!(!c.remembers("b", b"pw", "$h1", ttl), "another user");
        assert!(!c.remembers("a", b"pw", "$h1", Duration::ZERO), "expired");
        // No triple collides with another by moving bytes between fields.
        c.remember("ab", b"c", "$h", ttl);
        assert!(!c.remembers("ab", b"", "c$h", ttl));
        assert!(!format!("{c:?}").contains("pw"));
    }

    #[tokio::test]
    async fn the_same_credentials_wait_for_the_check_under_way() {
        let c = CredentialCache::default();
        let first = c.flight("a", b"pw", "$h").await;
        let wait = std::time::Duration::from_millis(50);
        // The same triple waits; another password does not.
        assert!(
            tokio::time::timeout(wait, c.flight("a", b"pw", "$h"))
                .await
                .is_err()
        );
        assert!(
            tokio::time::timeout(wait, c.flight("a", b"other", "$h"))
                .await
                .is_ok()
        );
        drop(first);
        let second = tokio::time::timeout(wait, c.flight("a", b"pw", "$h")).await;
        assert!(second.is_ok(), "free once the first is done");
        drop(second);
        assert!(
            c.flights.lock().unwrap().is_empty(),
            "no entry outlives its flights"
        );
    }
}
