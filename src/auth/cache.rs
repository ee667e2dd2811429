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
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type Tag = [u8; 32];

/// The remembered logins, shared across reloads.
pub struct CredentialCache {
    key: [u8; 32],
    entries: Mutex<HashMap<String, (Tag, Instant)>>,
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
}
