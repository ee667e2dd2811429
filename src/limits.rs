//! Named bounds: every limit a peer can push against, in one place — the fixed caps, the
//! session admission counters (total, per client address, per user) and the failed-login
//! bookkeeping behind delays and bans.
//!
//! Configurable values live in [`crate::config::Config`]. Counters sit behind short-lived
//! mutexes that are never held across IO.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest control line, CRLF excluded (re-exported from the protocol core).
pub const MAX_LINE: usize = wharf_proto::line::MAX_LINE;

/// Commands a client may pipeline while a transfer runs; more are refused.
pub const MAX_QUEUED_COMMANDS: usize = 16;

/// The largest buffer a transfer moves data through (two alternate: one on the network,
/// one at the disk). Never one per chunk; idle sessions hold none. Large, because each
/// buffer costs a hop to the blocking pool: 1 MiB moved uploads from ~1.1 to ~1.6 GB/s
/// against 256 KiB on loopback.
pub const TRANSFER_BUFFER: usize = 1024 * 1024;

/// The first buffer of an upload, grown 4× whenever a read fills it, up to
/// [`TRANSFER_BUFFER`]: small uploads never touch a megabyte of fresh memory.
pub const FIRST_TRANSFER_BUFFER: usize = 64 * 1024;

/// How many unique-name candidates STOU and the drop box try before giving up.
pub const MAX_UNIQUE_TRIES: u32 = 1000;

/// Files bigger than this are not scanned to compute a TYPE A SIZE (550 instead).
pub const MAX_ASCII_SIZE_SCAN: u64 = 64 * 1024 * 1024;

/// Control-connection read buffer.
pub const CONTROL_READ_BUFFER: usize = 4096;

/// Failure records kept at most; the oldest are forgotten first (bounds memory under a
/// flood of addresses).
pub const MAX_TRACKED_ADDRESSES: usize = 100_000;

/// The longest delay after a failed login.
pub const MAX_LOGIN_DELAY: Duration = Duration::from_secs(5);

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

/// Failed logins per client address, and the bans they lead to.
#[derive(Debug, Default)]
pub struct Guard {
    inner: Mutex<GuardState>,
}

#[derive(Debug, Default)]
struct GuardState {
    failures: HashMap<IpAddr, Failures>,
    bans: HashMap<IpAddr, Instant>,
    /// Failures per login name (for the optional per-user lockout) and locked names.
    user_failures: HashMap<String, Failures>,
    locked: HashMap<String, Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    first: Instant,
}

/// The failed-login policy.
#[derive(Debug, Clone, Copy)]
pub struct BanPolicy {
    /// Failures tolerated within `window`; the next one bans (0 = never ban).
    pub max_failures: u32,
    pub window: Duration,
    pub ban_for: Duration,
    /// Delay after the first failure; doubles with each further one, up to
    /// [`MAX_LOGIN_DELAY`].
    pub delay: Duration,
}

/// A ban as listed to operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    pub ip: IpAddr,
    pub remaining: Duration,
}

impl Guard {
    /// Whether `ip` is banned now; the remaining time if so.
    pub fn banned(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match g.bans.get(&ip) {
            Some(until) if *until > now => Some(*until - now),
            Some(_) => {
                g.bans.remove(&ip);
                None
            }
            None => None,
        }
    }

    /// Records a failed login from `ip`. Returns the delay to apply before replying, and
    /// whether this failure banned the address.
    pub fn failed(&self, ip: IpAddr, policy: &BanPolicy, now: Instant) -> (Duration, bool) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if g.failures.len() >= MAX_TRACKED_ADDRESSES && !g.failures.contains_key(&ip) {
            // Forget expired records first, then anything, to stay bounded.
            g.failures
                .retain(|_, f| now.duration_since(f.first) < policy.window);
            if g.failures.len() >= MAX_TRACKED_ADDRESSES {
                g.failures.clear();
            }
        }
        let f = g.failures.entry(ip).or_insert(Failures {
            count: 0,
            first: now,
        });
        if now.duration_since(f.first) >= policy.window {
            *f = Failures {
                count: 0,
                first: now,
            };
        }
        f.count += 1;
        let count = f.count;
        let delay = policy
            .delay
            .saturating_mul(1u32 << (count - 1).min(16))
            .min(MAX_LOGIN_DELAY);
        let ban = policy.max_failures > 0 && count > policy.max_failures;
        if ban {
            g.failures.remove(&ip);
            g.bans.insert(ip, now + policy.ban_for);
        }
        (delay, ban)
    }

    /// Whether `user` is locked out now.
    pub fn locked(&self, user: &str, now: Instant) -> bool {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match g.locked.get(user) {
            Some(until) if *until > now => true,
            Some(_) => {
                g.locked.remove(user);
                false
            }
            None => false,
        }
    }

    /// Records a failed password for `user`; more than `max` failures within the policy's
    /// window lock the name for the ban time (`max` = 0: never). Returns whether it locked.
    pub fn user_failed(&self, user: &str, max: u32, policy: &BanPolicy, now: Instant) -> bool {
        if max == 0 {
            return false;
        }
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if g.user_failures.len() >= MAX_TRACKED_ADDRESSES && !g.user_failures.contains_key(user) {
            g.user_failures.clear();
        }
        let f = g.user_failures.entry(user.to_string()).or_insert(Failures {
            count: 0,
            first: now,
        });
        if now.duration_since(f.first) >= policy.window {
            *f = Failures {
                count: 0,
                first: now,
            };
        }
        f.count += 1;
        if f.count > max {
            g.user_failures.remove(user);
            g.locked.insert(user.to_string(), now + policy.ban_for);
            return true;
        }
        false
    }

    /// A successful login forgets the address's failures.
    pub fn succeeded(&self, ip: IpAddr, user: &str) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.failures.remove(&ip);
        g.user_failures.remove(user);
    }

    /// Current bans, soonest to expire first.
    pub fn bans(&self, now: Instant) -> Vec<Ban> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.bans.retain(|_, until| *until > now);
        let mut v: Vec<Ban> = g
            .bans
            .iter()
            .map(|(ip, until)| Ban {
                ip: *ip,
                remaining: *until - now,
            })
            .collect();
        v.sort_by_key(|b| b.remaining);
        v
    }

    /// Bans `ip` for `dur` (by the administrator).
    pub fn ban(&self, ip: IpAddr, dur: Duration, now: Instant) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.bans.insert(ip, now + dur);
    }

    /// Lifts a ban.
    pub fn unban(&self, ip: IpAddr) -> bool {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.bans.remove(&ip).is_some()
    }
}

/// A token bucket: `rate` bytes per second, shared by every transfer that holds it, so
/// concurrent transfers of one user split the allowance between them.
#[derive(Debug)]
pub struct Bucket {
    rate: f64,
    /// Tokens (may go negative: debt that the next taker waits out) and when last filled.
    state: Mutex<(f64, tokio::time::Instant)>,
}

impl Bucket {
    pub fn new(rate: u64) -> Bucket {
        Bucket {
            rate: rate as f64,
            state: Mutex::new((0.0, tokio::time::Instant::now())),
        }
    }

    /// A chunk size that keeps the flow smooth at this rate (about 1/8 s of data).
    pub fn chunk(&self) -> usize {
        ((self.rate / 8.0) as usize).clamp(4096, TRANSFER_BUFFER)
    }

    /// Accounts for `n` bytes, waiting as long as the rate requires.
    pub async fn take(&self, n: usize) {
        let wait = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let now = tokio::time::Instant::now();
            // At most a tenth of a second of burst builds up while idle.
            let burst = self.rate / 10.0;
            st.0 = (st.0 + now.duration_since(st.1).as_secs_f64() * self.rate).min(burst);
            st.1 = now;
            st.0 -= n as f64;
            if st.0 < 0.0 {
                Duration::from_secs_f64(-st.0 / self.rate)
            } else {
                Duration::ZERO
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// The buckets of every user, created on first use.
#[derive(Debug, Default)]
pub struct Buckets {
    inner: Mutex<HashMap<(String, bool), Arc<Bucket>>>,
}

impl Buckets {
    /// The shared bucket for `user`'s uploads (`up`) or downloads; `None` when `rate` is 0.
    pub fn get(&self, user: &str, up: bool, rate: u64) -> Option<Arc<Bucket>> {
        if rate == 0 {
            return None;
        }
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let b = m
            .entry((user.to_string(), up))
            .or_insert_with(|| Arc::new(Bucket::new(rate)));
        if b.rate != rate as f64 {
            // The limit changed (reload): start a fresh bucket.
            *b = Arc::new(Bucket::new(rate));
        }
        Some(b.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bucket_paces_and_shares() {
        let b = Arc::new(Bucket::new(1000));
        let start = tokio::time::Instant::now();
        for _ in 0..10 {
            b.take(100).await;
        }
        let one = start.elapsed();
        assert!(one >= Duration::from_millis(900), "{one:?}");
        assert!(one <= Duration::from_millis(1100), "{one:?}");
        // Two takers share the same rate.
        let start = tokio::time::Instant::now();
        let (x, y) = (b.clone(), b.clone());
        let a = tokio::spawn(async move {
            for _ in 0..5 {
                x.take(100).await;
            }
        });
        let c = tokio::spawn(async move {
            for _ in 0..5 {
                y.take(100).await;
            }
        });
        a.await.unwrap();
        c.await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(900));
        assert!(start.elapsed() <= Duration::from_millis(1100));
    }

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

    #[test]
    fn failures_delay_grow_and_ban_after_the_limit() {
        let g = Guard::default();
        let policy = BanPolicy {
            max_failures: 5,
            window: Duration::from_secs(60),
            ban_for: Duration::from_secs(600),
            delay: Duration::from_millis(100),
        };
        let t = Instant::now();
        let mut delays = Vec::new();
        for _ in 0..5 {
            let (d, banned) = g.failed(A, &policy, t);
            assert!(!banned);
            delays.push(d);
        }
        assert!(delays.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(delays[1], Duration::from_millis(200));
        assert!(g.banned(A, t).is_none());
        let (_, banned) = g.failed(A, &policy, t);
        assert!(banned, "the 6th failure bans");
        assert!(g.banned(A, t).is_some());
        assert!(g.banned(B, t).is_none());
        assert_eq!(g.bans(t).len(), 1);
        assert!(g.banned(A, t + Duration::from_secs(601)).is_none());
        // Failures outside the window start over.
        for _ in 0..5 {
            g.failed(B, &policy, t);
        }
        let (_, banned) = g.failed(B, &policy, t + Duration::from_secs(61));
        assert!(!banned);
        assert!(g.unban(A) || g.bans(t).is_empty());
    }
}
