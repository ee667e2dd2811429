//! Failed logins per client address, and the delays and bans they lead to.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::*;

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

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
