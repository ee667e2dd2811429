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

/// Password checks (argon2id, ~19 MiB and ~20 ms of a core each) waiting at most, on
/// top of the one per core that run; more get 421 at once rather than memory and threads.
pub const MAX_QUEUED_PASSWORD_CHECKS: usize = 1024;

/// Password checks one client address may have waiting: a quarter of the queue, so a
/// flood from one address never fills it for everyone (a NAT'd fleet logging in at once
/// still fits).
pub const QUEUED_PASSWORD_CHECKS_PER_ADDRESS: usize = MAX_QUEUED_PASSWORD_CHECKS / 4;

/// The password checks running and waiting: at most one per core runs; the others wait
/// in a bounded queue served round-robin across client addresses, so an address with
/// hundreds waiting delays another address's check by one turn, not by hundreds.
#[derive(Debug, Clone)]
pub struct PasswordChecks {
    inner: Arc<Mutex<Checks>>,
}

#[derive(Debug)]
struct Checks {
    /// Turns free now (none while anyone waits).
    free: usize,
    waiting: usize,
    queues: HashMap<IpAddr, std::collections::VecDeque<tokio::sync::oneshot::Sender<Turn>>>,
    /// Addresses with waiters, in serving order.
    order: std::collections::VecDeque<IpAddr>,
}

/// The queue (or an address's share of it) is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// A turn to check a password; the next waiter goes when it is dropped (also when it is
/// dropped unseen, by a waiter that left).
#[derive(Debug)]
pub struct Turn {
    checks: Option<Arc<Mutex<Checks>>>,
}

impl PasswordChecks {
    /// `parallel` checks at once (the number of cores).
    pub fn new(parallel: usize) -> PasswordChecks {
        PasswordChecks {
            inner: Arc::new(Mutex::new(Checks {
                free: parallel.max(1),
                waiting: 0,
                queues: HashMap::new(),
                order: Default::default(),
            })),
        }
    }

    /// One per core.
    pub fn per_core() -> PasswordChecks {
        PasswordChecks::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    /// Waits for a turn, or `Busy` at once when the queue or `ip`'s share of it is full.
    pub async fn turn(&self, ip: IpAddr) -> Result<Turn, Busy> {
        let rx = {
            let mut c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            if c.free > 0 {
                c.free -= 1;
                return Ok(Turn {
                    checks: Some(self.inner.clone()),
                });
            }
            let mine = c.queues.get(&ip).map_or(0, |q| q.len());
            if mine >= QUEUED_PASSWORD_CHECKS_PER_ADDRESS || c.waiting >= MAX_QUEUED_PASSWORD_CHECKS
            {
                return Err(Busy);
            }
            let (tx, rx) = tokio::sync::oneshot::channel();
            c.waiting += 1;
            let q = c.queues.entry(ip).or_default();
            q.push_back(tx);
            if q.len() == 1 {
                c.order.push_back(ip);
            }
            rx
        };
        // The sender is dropped only with a turn in it, never empty.
        rx.await.map_err(|_| Busy)
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let Some(inner) = self.checks.take() else {
            return;
        };
        let mut c = inner.lock().unwrap_or_else(|e| e.into_inner());
        // Hand the turn to the next address in rotation; waiters that left are skipped.
        while let Some(ip) = c.order.pop_front() {
            let Some(q) = c.queues.get_mut(&ip) else {
                continue;
            };
            let next = q.pop_front();
            if q.is_empty() {
                c.queues.remove(&ip);
            } else {
                c.order.push_back(ip);
            }
            let Some(tx) = next else { continue };
            c.waiting -= 1;
            match tx.send(Turn {
                checks: Some(inner.clone()),
            }) {
                Ok(()) => return,
                // Disarmed: it would take this lock again.
                Err(mut unseen) => unseen.checks = None,
            }
        }
        c.free += 1;
    }
}

/// Descriptors kept back from sessions: listeners, logs, the admin endpoint, roots.
const RESERVED_DESCRIPTORS: u64 = 64;

/// Descriptors one busy session may hold: control, data connection, file.
const DESCRIPTORS_PER_SESSION: u64 = 3;

/// Raises the soft limit on open descriptors to the hard limit; returns the soft limit
/// in force.
pub fn raise_descriptor_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024;
    };
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}

/// The default total session limit for `descriptors` open files: every session may be
/// busy at once without the server running out (and failing accepts for everyone).
pub fn sessions_for_descriptors(descriptors: u64) -> usize {
    let n = descriptors.saturating_sub(RESERVED_DESCRIPTORS) / DESCRIPTORS_PER_SESSION;
    usize::try_from(n).unwrap_or(usize::MAX).max(1)
}

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
    /// Told of every ban, whatever made it (failures, the administrator, another node),
    /// so that the address's open sessions end too.
    on_ban: OnBan,
}

/// The ban callback (set once at start).
#[derive(Default)]
struct OnBan(std::sync::OnceLock<Box<dyn Fn(IpAddr) + Send + Sync>>);

impl std::fmt::Debug for OnBan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnBan")
    }
}

#[derive(Debug, Default)]
struct GuardState {
    failures: HashMap<IpAddr, Failures>,
    bans: HashMap<IpAddr, Instant>,
    /// Failures per login name (for the optional per-user lockout) and locked names.
    user_failures: HashMap<String, Failures>,
    locked: HashMap<String, Instant>,
}

/// Login names whose failures an address's record tells apart; failures for further
/// names are counted but can never be forgiven.
const NAMED_FAILURES: usize = 8;

#[derive(Debug, Clone)]
struct Failures {
    count: u32,
    first: Instant,
    /// The failures of each name, so that a success forgives only its own name's.
    by_name: Vec<(String, u32)>,
}

impl Failures {
    fn new(now: Instant) -> Failures {
        Failures {
            count: 0,
            first: now,
            by_name: Vec::new(),
        }
    }
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

impl BanPolicy {
    /// The policy `config` sets.
    pub fn from_config(config: &crate::config::Config) -> BanPolicy {
        BanPolicy {
            max_failures: config.max_login_failures,
            window: Duration::from_secs(config.login_failure_window),
            ban_for: Duration::from_secs(config.ban_time),
            delay: Duration::from_millis(config.login_failure_delay_ms),
        }
    }

    /// Whether `count` failures within the window ban.
    pub fn bans(&self, count: u32) -> bool {
        self.max_failures > 0 && count > self.max_failures
    }
}

/// A ban as listed to operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    pub ip: IpAddr,
    pub remaining: Duration,
}

impl Guard {
    /// Sets what every ban also does (ending the address's sessions); once.
    pub fn on_ban(&self, f: impl Fn(IpAddr) + Send + Sync + 'static) {
        let _ = self.on_ban.0.set(Box::new(f));
    }

    fn banned_now(&self, ip: IpAddr) {
        if let Some(f) = self.on_ban.0.get() {
            f(ip);
        }
    }

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

    /// Records a failed login of `user` from `ip`. Returns the delay to apply before
    /// replying, and whether this failure banned the address.
    pub fn failed(
        &self,
        ip: IpAddr,
        user: &str,
        policy: &BanPolicy,
        now: Instant,
    ) -> (Duration, bool) {
        let (delay, ban) = {
            let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            if g.failures.len() >= MAX_TRACKED_ADDRESSES && !g.failures.contains_key(&ip) {
                // Forget expired records first, then anything, to stay bounded.
                g.failures
                    .retain(|_, f| now.duration_since(f.first) < policy.window);
                if g.failures.len() >= MAX_TRACKED_ADDRESSES {
                    g.failures.clear();
                }
            }
            let f = g.failures.entry(ip).or_insert_with(|| Failures::new(now));
            if now.duration_since(f.first) >= policy.window {
                *f = Failures::new(now);
            }
            f.count += 1;
            match f.by_name.iter().position(|(n, _)| n == user) {
                Some(i) => f.by_name[i].1 += 1,
                None if f.by_name.len() < NAMED_FAILURES => f.by_name.push((user.into(), 1)),
                None => {}
            }
            let count = f.count;
            let delay = policy
                .delay
                .saturating_mul(1u32 << (count - 1).min(16))
                .min(MAX_LOGIN_DELAY);
            let ban = policy.bans(count);
            if ban {
                g.failures.remove(&ip);
                g.bans.insert(ip, now + policy.ban_for);
            }
            (delay, ban)
        };
        if ban {
            self.banned_now(ip);
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
        let f = g
            .user_failures
            .entry(user.to_string())
            .or_insert_with(|| Failures::new(now));
        if now.duration_since(f.first) >= policy.window {
            *f = Failures::new(now);
        }
        f.count += 1;
        if f.count > max {
            g.user_failures.remove(user);
            g.locked.insert(user.to_string(), now + policy.ban_for);
            return true;
        }
        false
    }

    /// A configured user's successful login forgives that name's failures from the
    /// address (and the name's own count); anonymous logins forgive nothing, or any
    /// guesser could reset its count with one.
    pub fn succeeded(&self, ip: IpAddr, user: &str) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = g.failures.get_mut(&ip)
            && let Some(i) = f.by_name.iter().position(|(n, _)| n == user)
        {
            let (_, n) = f.by_name.swap_remove(i);
            f.count = f.count.saturating_sub(n);
            if f.count == 0 {
                g.failures.remove(&ip);
            }
        }
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

    /// Bans `ip` for `dur` (by the administrator, another node, or the shared failure
    /// count); its open sessions end.
    pub fn ban(&self, ip: IpAddr, dur: Duration, now: Instant) {
        {
            let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            g.bans.insert(ip, now + dur);
        }
        self.banned_now(ip);
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
            let (d, banned) = g.failed(A, "u", &policy, t);
            assert!(!banned);
            delays.push(d);
        }
        assert!(delays.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(delays[1], Duration::from_millis(200));
        assert!(g.banned(A, t).is_none());
        let (_, banned) = g.failed(A, "u", &policy, t);
        assert!(banned, "the 6th failure bans");
        assert!(g.banned(A, t).is_some());
        assert!(g.banned(B, t).is_none());
        assert_eq!(g.bans(t).len(), 1);
        assert!(g.banned(A, t + Duration::from_secs(601)).is_none());
        // Failures outside the window start over.
        for _ in 0..5 {
            g.failed(B, "u", &policy, t);
        }
        let (_, banned) = g.failed(B, "u", &policy, t + Duration::from_secs(61));
        assert!(!banned);
        assert!(g.unban(A) || g.bans(t).is_empty());
    }

    #[tokio::test]
    async fn password_checks_run_one_per_core_and_take_turns_across_addresses() {
        let checks = PasswordChecks::new(1);
        let first = checks.turn(A).await.unwrap();
        // A floods: its share waits, the rest is refused at once.
        let mut flood: Vec<_> = (0..QUEUED_PASSWORD_CHECKS_PER_ADDRESS)
            .map(|_| Box::pin(checks.turn(A)))
            .collect();
        for w in &mut flood {
            assert!(futures_poll(w).is_none(), "one check at a time");
        }
        assert_eq!(checks.turn(A).await.unwrap_err(), Busy);
        // B queues behind all of A's, but is served after one of them.
        let mut b = Box::pin(checks.turn(B));
        assert!(futures_poll(&mut b).is_none());
        drop(first);
        let a1 = flood.remove(0).await.unwrap();
        assert!(futures_poll(&mut b).is_none());
        drop(a1);
        let turn_b = futures_poll(&mut b).expect("B's turn came second").unwrap();
        // A waiter that leaves is skipped; one given a turn it never saw gives it back.
        flood.truncate(1);
        drop(turn_b);
        drop(flood);
        assert!(futures_poll(&mut Box::pin(checks.turn(B))).is_some());
    }

    /// Polls a future once without a runtime waker of its own.
    fn futures_poll<F: std::future::Future + Unpin>(f: &mut F) -> Option<F::Output> {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        match std::pin::Pin::new(f).poll(&mut cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        }
    }

    #[test]
    fn only_the_same_users_success_forgives_and_every_ban_is_told() {
        let g = Guard::default();
        let told = Arc::new(Mutex::new(Vec::new()));
        let seen = told.clone();
        g.on_ban(move |ip| seen.lock().unwrap().push(ip));
        let policy = BanPolicy {
            max_failures: 5,
            window: Duration::from_secs(60),
            ban_for: Duration::from_secs(600),
            delay: Duration::ZERO,
        };
        let t = Instant::now();
        // Three guesses at bob, then the guesser's own (or anonymous) success: bob's
        // failures stay.
        for _ in 0..3 {
            g.failed(A, "bob", &policy, t);
        }
        g.succeeded(A, "alice");
        g.succeeded(A, "anonymous");
        g.failed(A, "bob", &policy, t);
        g.failed(A, "bob", &policy, t);
        assert!(told.lock().unwrap().is_empty());
        assert!(g.failed(A, "bob", &policy, t).1, "the 6th failure bans");
        assert_eq!(*told.lock().unwrap(), vec![A]);
        // alice mistyping twice, then logging in, forgives only alice's two.
        for _ in 0..2 {
            g.failed(B, "alice", &policy, t);
        }
        for _ in 0..3 {
            g.failed(B, "bob", &policy, t);
        }
        g.succeeded(B, "alice");
        assert!(!g.failed(B, "bob", &policy, t).1);
        assert!(!g.failed(B, "bob", &policy, t).1);
        assert!(g.failed(B, "bob", &policy, t).1);
        // An administrator's ban is told too.
        let c: IpAddr = "192.0.2.9".parse().unwrap();
        g.ban(c, Duration::from_secs(5), t);
        assert_eq!(told.lock().unwrap().last(), Some(&c));
    }
}
