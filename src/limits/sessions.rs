//! Session admission: counts in total, per client address and per user.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Session counts, for admission.
#[derive(Debug, Default)]
pub struct Sessions {
    inner: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
    by_user: HashMap<String, usize>,
}

/// Why a session was not admitted; the text goes into the 421 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

impl Refusal {
    /// `max` sessions from one client address (here, or across a cluster's nodes).
    pub fn per_ip(max: usize) -> Refusal {
        Refusal(format!(
            "Too many sessions from your address ({max}); try again later."
        ))
    }

    /// `max` sessions of one user (here, or across a cluster's nodes).
    pub fn per_user(max: usize) -> Refusal {
        Refusal(format!(
            "Too many sessions for this user ({max}); try again later."
        ))
    }
}

/// Holds one admitted session's place; releases it when dropped.
#[derive(Debug)]
pub struct SessionSlot {
    sessions: Arc<Sessions>,
    ip: IpAddr,
    user: Option<String>,
}

impl Sessions {
    /// Admits a connection from `ip` unless `max_total` or `max_per_ip` (0 = no limit) is
    /// reached.
    pub fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        max_total: usize,
        max_per_ip: usize,
    ) -> Result<SessionSlot, Refusal> {
        let mut c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if max_total > 0 && c.total >= max_total {
            return Err(Refusal(format!(
                "Too many sessions on this server ({max_total}); try again later."
            )));
        }
        let here = c.by_ip.get(&ip).copied().unwrap_or(0);
        if max_per_ip > 0 && here >= max_per_ip {
            return Err(Refusal::per_ip(max_per_ip));
        }
        c.total += 1;
        *c.by_ip.entry(ip).or_default() += 1;
        Ok(SessionSlot {
            sessions: self.clone(),
            ip,
            user: None,
        })
    }

    pub fn total(&self) -> usize {
        self.inner.lock().map(|c| c.total).unwrap_or(0)
    }
}

impl SessionSlot {
    /// Counts the slot against `user` (at login) unless the user is at `max` (0 = no
    /// limit). A slot already counted for another user moves.
    pub fn login(&mut self, user: &str, max: usize) -> Result<(), Refusal> {
        let mut c = self
            .sessions
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if self.user.as_deref() == Some(user) {
            return Ok(());
        }
        let now = c.by_user.get(user).copied().unwrap_or(0);
        if max > 0 && now >= max {
            return Err(Refusal::per_user(max));
        }
        if let Some(old) = self.user.take() {
            release(&mut c.by_user, &old);
        }
        *c.by_user.entry(user.to_string()).or_default() += 1;
        self.user = Some(user.to_string());
        Ok(())
    }

    /// Stops counting the slot against its user (logout, REIN).
    pub fn logout(&mut self) {
        if let Some(old) = self.user.take() {
            let mut c = self
                .sessions
                .inner
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            release(&mut c.by_user, &old);
        }
    }
}

fn release<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        let mut c = self
            .sessions
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        c.total = c.total.saturating_sub(1);
        release(&mut c.by_ip, &self.ip);
        if let Some(u) = self.user.take() {
            release(&mut c.by_user, &u);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    #[test]
    fn admission_limits_and_release() {
        let s = Arc::new(Sessions::default());
        let a1 = s.admit(A, 3, 2).unwrap();
        let _a2 = s.admit(A, 3, 2).unwrap();
        assert!(s.admit(A, 3, 2).unwrap_err().0.contains("your address"));
        let _b1 = s.admit(B, 3, 2).unwrap();
        assert!(s.admit(B, 3, 2).unwrap_err().0.contains("this server"));
        drop(a1);
        assert_eq!(s.total(), 2);
        let _b2 = s.admit(B, 3, 2).unwrap();
    }

    #[test]
    fn per_user_limit() {
        let s = Arc::new(Sessions::default());
        let mut x = s.admit(A, 0, 0).unwrap();
        let mut y = s.admit(A, 0, 0).unwrap();
        x.login("u", 1).unwrap();
        assert!(y.login("u", 1).is_err());
        x.logout();
        y.login("u", 1).unwrap();
        drop(y);
        x.login("u", 1).unwrap();
    }
}
