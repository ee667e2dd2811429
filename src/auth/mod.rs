//! Who may log in and what they may do: anonymous policy, configured users, argon2id
//! password hashes, and the permission set each login carries.
//!
//! Password checks run on the blocking pool so a burst of logins never stalls sessions.
//! Secrets never reach a log.

use std::path::PathBuf;
use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use std::net::IpAddr;

use crate::config::{AnonymousMode, Collision, Config, Quota, UserConfig};
use crate::limits::{Busy, PasswordChecks};
pub use crate::vfs::{Perms, Rules};

mod cache;
pub use cache::CredentialCache;

/// A user as the server holds it.
#[derive(Debug, Clone)]
pub struct User {
    /// The user's entry as configured, for per-user settings.
    pub config: Arc<UserConfig>,
    pub name: String,
    /// The argon2id PHC string.
    hash: String,
    pub root: PathBuf,
    pub home: Vec<u8>,
    pub rules: Arc<Rules>,
    pub atomic: bool,
    pub rate_up: u64,
    pub rate_down: u64,
    pub enabled: bool,
    pub allow_from: Vec<ipnet::IpNet>,
}

/// The outcome of a successful login: where the session is jailed and what it may do.
#[derive(Debug, Clone)]
pub struct Grant {
    pub user: String,
    pub anonymous: bool,
    pub root: PathBuf,
    pub home: Vec<u8>,
    pub rules: Arc<Rules>,
    pub collision: Collision,
    /// Uploads land under their name only when complete.
    pub atomic: bool,
    /// Bytes per second, up and down (0 = unlimited).
    pub rate_up: u64,
    pub rate_down: u64,
    /// The user's configured entry (none for anonymous).
    pub config: Option<Arc<UserConfig>>,
    /// What the login's root may hold.
    pub quota: Quota,
}

/// Every login rule of one configuration.
#[derive(Debug)]
pub struct Authenticator {
    users: Vec<Arc<User>>,
    anonymous: AnonymousMode,
    anonymous_rules: Arc<Rules>,
    anonymous_atomic: bool,
    anonymous_rates: (u64, u64),
    anonymous_quota: Quota,
    deny: Vec<String>,
    /// The PAM service, when system accounts are on.
    system: Option<String>,
    anonymous_root: PathBuf,
    collision: Collision,
    /// A valid hash checked for unknown names, so a wrong name costs as much as a wrong
    /// password and timing does not reveal which names exist.
    decoy: String,
    /// Logins verified lately (shared with the next reload's authenticator) and for how long
    /// they count; zero turns the cache off.
    cache: Arc<CredentialCache>,
    cache_for: std::time::Duration,
}

/// Checks a system account with PAM; its jail is its home directory.
#[cfg(feature = "pam")]
async fn system_login(service: &str, name: &[u8], password: &[u8]) -> Option<Grant> {
    let name = String::from_utf8(name.to_vec()).ok()?;
    let password = String::from_utf8(password.to_vec()).ok()?;
    let service = service.to_string();
    let checked = name.clone();
    let ok = tokio::task::spawn_blocking(move || {
        let mut client = pam::Client::with_password(&service).ok()?;
        client
            .conversation_mut()
            .set_credentials(checked.as_str(), password.as_str());
        client.authenticate().ok()
    })
    .await
    .ok()
    .flatten()
    .is_some();
    if !ok {
        return None;
    }
    let account = nix::unistd::User::from_name(&name).ok().flatten()?;
    Some(Grant {
        user: name,
        anonymous: false,
        root: account.dir,
        home: b"/".to_vec(),
        rules: Arc::new(Rules::new(Perms::ALL, &[])),
        collision: Collision::Refuse,
        atomic: false,
        rate_up: 0,
        rate_down: 0,
        config: None,
        quota: Quota::default(),
    })
}

#[cfg(not(feature = "pam"))]
async fn system_login(_service: &str, _name: &[u8], _password: &[u8]) -> Option<Grant> {
    None
}

/// Whether `name` is one of the anonymous login names.
pub fn is_anonymous_name(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"anonymous") || name.eq_ignore_ascii_case(b"ftp")
}

pub use crate::config::is_phc;

/// Hashes a password as an argon2id PHC string (used by `wharf hash-password` and
/// `--user NAME:PASSWORD`).
pub fn hash_password(password: &[u8]) -> String {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        // Hashing with default parameters and a fresh salt does not fail.
        .unwrap_or_default()
}

impl Authenticator {
    /// The rules of `config`, with `users` (the config's own and a users file's).
    pub fn new(config: &Config, users: &[UserConfig]) -> Authenticator {
        let users = users
            .iter()
            .map(|u| {
                Arc::new(User {
                    config: Arc::new(u.clone()),
                    name: u.name.clone(),
                    hash: u.password.clone(),
                    root: u.root.clone().unwrap_or_else(|| config.root.clone()),
                    home: u.home.clone().unwrap_or_else(|| "/".into()).into_bytes(),
                    rules: Arc::new(Rules::new(Perms::from_list(&u.permissions), &u.dirs)),
                    atomic: u.atomic_uploads.or(config.atomic_uploads).unwrap_or(true),
                    rate_up: u.rate_up.unwrap_or(config.rate_up),
                    rate_down: u.rate_down.unwrap_or(config.rate_down),
                    enabled: u.enabled,
                    allow_from: u.allow_from.clone(),
                })
            })
            .collect();
        let anonymous_base = match &config.anonymous_permissions {
            Some(list) => Perms::from_list(list),
            None => Perms::for_anonymous(config.anonymous_mode()),
        };
        Authenticator {
            users,
            anonymous: config.anonymous_mode(),
            anonymous_rules: Arc::new(Rules::new(anonymous_base, &config.anonymous_dirs)),
            anonymous_atomic: config.atomic_uploads.unwrap_or(true),
            anonymous_rates: (config.anonymous_rate_up, config.anonymous_rate_down),
            anonymous_quota: config.anonymous_quota(),
            deny: config.denied_names(),
            system: config.system_accounts.then(|| config.pam_service.clone()),
            anonymous_root: config.anonymous_root().to_path_buf(),
            collision: config.upload_collision,
            decoy: hash_password(b"decoy"),
            cache: Arc::default(),
            cache_for: std::time::Duration::from_secs(config.credential_cache),
        }
    }

    /// Keeps the logins `previous` remembered (a reload does not make every user pay the
    /// full check again; a changed password no longer matches anyway).
    pub fn sharing_cache_of(mut self, previous: &Authenticator) -> Authenticator {
        self.cache = previous.cache.clone();
        self
    }

    /// Checks a login from `client`. Runs argon2 on the blocking pool, when `checks`
    /// gives this client a turn; `Busy` when their queue is full.
    pub async fn login(
        &self,
        name: &[u8],
        password: &[u8],
        client: IpAddr,
        checks: &PasswordChecks,
    ) -> Result<Option<Grant>, Busy> {
        if self.deny.iter().any(|d| d.as_bytes() == name) {
            // Same cost and reply as a wrong password.
            let _turn = checks.turn(client).await?;
            let _ = self.verify(self.decoy.clone(), password).await;
            return Ok(None);
        }
        let user = self
            .users
            .iter()
            .find(|u| u.name.as_bytes() == name)
            .cloned();
        if user.is_none() && is_anonymous_name(name) {
            if self.anonymous == AnonymousMode::Off {
                return Ok(None);
            }
            return Ok(Some(Grant {
                user: "anonymous".into(),
                anonymous: true,
                root: self.anonymous_root.clone(),
                home: b"/".to_vec(),
                rules: self.anonymous_rules.clone(),
                collision: self.collision,
                atomic: self.anonymous_atomic,
                rate_up: self.anonymous_rates.0,
                rate_down: self.anonymous_rates.1,
                config: None,
                quota: self.anonymous_quota,
            }));
        }
        let remembered = !self.cache_for.is_zero()
            && user.as_ref().is_some_and(|u| {
                self.cache
                    .remembers(&u.name, password, &u.hash, self.cache_for)
            });
        // Identical credentials that arrive together are verified once.
        let flight = match (&user, remembered || self.cache_for.is_zero()) {
            (Some(u), false) => Some(self.cache.flight(&u.name, password, &u.hash).await),
            _ => None,
        };
        let remembered = remembered
            || flight.is_some()
                && user.as_ref().is_some_and(|u| {
                    self.cache
                        .remembers(&u.name, password, &u.hash, self.cache_for)
                });
        let ok = if remembered {
            true
        } else {
            let _turn = checks.turn(client).await?;
            if user.is_none()
                && let Some(service) = &self.system
            {
                return Ok(system_login(service, name, password).await);
            }
            let hash = user
                .as_ref()
                .map_or_else(|| self.decoy.clone(), |u| u.hash.clone());
            let ok = self.verify(hash, password).await;
            if let (true, Some(u), false) = (ok, &user, self.cache_for.is_zero()) {
                self.cache
                    .remember(&u.name, password, &u.hash, self.cache_for);
            }
            ok
        };
        drop(flight);
        let Some(user) = user.filter(|_| ok) else {
            return Ok(None);
        };
        let allowed =
            user.allow_from.is_empty() || user.allow_from.iter().any(|net| net.contains(&client));
        if !user.enabled || !allowed {
            return Ok(None);
        }
        Ok(Some(Grant {
            user: user.name.clone(),
            anonymous: false,
            root: user.root.clone(),
            home: user.home.clone(),
            rules: user.rules.clone(),
            collision: Collision::Refuse,
            atomic: user.atomic,
            rate_up: user.rate_up,
            rate_down: user.rate_down,
            config: Some(user.config.clone()),
            quota: user.config.quota(),
        }))
    }

    /// A configured user's entry.
    pub fn user(&self, name: &[u8]) -> Option<Arc<UserConfig>> {
        self.users
            .iter()
            .find(|u| u.name.as_bytes() == name)
            .map(|u| u.config.clone())
    }

    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Whether some login has a quota (then changes are counted).
    pub fn has_quota(&self) -> bool {
        self.anonymous_quota.is_set() || self.users.iter().any(|u| u.config.quota().is_set())
    }

    /// Each configured user, and anonymous when it may log in: name, root and quota.
    pub fn quotas(&self) -> Vec<(String, PathBuf, Quota)> {
        let mut out: Vec<_> = self
            .users
            .iter()
            .map(|u| (u.name.clone(), u.root.clone(), u.config.quota()))
            .collect();
        if self.anonymous != AnonymousMode::Off {
            out.push((
                "anonymous".into(),
                self.anonymous_root.clone(),
                self.anonymous_quota,
            ));
        }
        out
    }

    async fn verify(&self, hash: String, password: &[u8]) -> bool {
        let password = password.to_vec();
        tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|h| Argon2::default().verify_password(&password, &h).is_ok())
                .unwrap_or(false)
        })
        .await
        .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Permission;

    fn config() -> Config {
        Config {
            users: vec![UserConfig {
                root: Some("/srv/a".into()),
                home: Some("/in".into()),
                permissions: vec![Permission::Read],
                ..UserConfig::new("alice", hash_password(b"pw"))
            }],
            ..Config::default()
        }
    }

    const LO: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    static CHECKS: std::sync::LazyLock<PasswordChecks> =
        std::sync::LazyLock::new(|| PasswordChecks::new(2));

    #[tokio::test]
    async fn a_verified_login_is_remembered_and_skips_the_check_queue() {
        let a = Authenticator::new(&config(), &config().users);
        let checks = PasswordChecks::new(1);
        assert!(
            a.login(b"alice", b"pw", LO, &checks)
                .await
                .unwrap()
                .is_some()
        );
        // Every check slot taken: only a remembered login can finish now.
        let _held = checks.turn(LO).await.unwrap();
        let fast = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            a.login(b"alice", b"pw", LO, &checks),
        )
        .await;
        assert!(
            fast.expect("no wait for a remembered login")
                .unwrap()
                .is_some()
        );
        // A wrong password is checked in full (it waits for a slot), and is not remembered.
        let wrong = tokio::time::timeout(
            std::time::Duration::from_millis(300),
            a.login(b"alice", b"nope", LO, &checks),
        )
        .await;
        assert!(wrong.is_err(), "a wrong password waits for its check");
        // Off when configured so.
        let c = Config {
            credential_cache: 0,
            ..config()
        };
        let off = Authenticator::new(&c, &c.users);
        let checks = PasswordChecks::new(1);
        assert!(
            off.login(b"alice", b"pw", LO, &checks)
                .await
                .unwrap()
                .is_some()
        );
        let _held = checks.turn(LO).await.unwrap();
        let slow = tokio::time::timeout(
            std::time::Duration::from_millis(300),
            off.login(b"alice", b"pw", LO, &checks),
        )
        .await;
        assert!(slow.is_err(), "with the cache off every login is checked");
    }

    #[tokio::test]
    async fn users_and_anonymous() {
        let a = Authenticator::new(&config(), &config().users);
        let g = a
            .login(b"alice", b"pw", LO, &CHECKS)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (g.user.as_str(), g.rules.base, g.home.as_slice()),
            ("alice", Perms::READ, &b"/in"[..])
        );
        assert!(
            a.login(b"alice", b"nope", LO, &CHECKS)
                .await
                .unwrap()
                .is_none()
        );
        assert!(a.login(b"bob", b"pw", LO, &CHECKS).await.unwrap().is_none());
        // With users configured, anonymous is off unless asked for.
        let anon = a.login(b"FTP", b"me@example.com", LO, &CHECKS).await;
        assert!(
            anon.unwrap().is_none(),
            "anonymous is off by default beside users"
        );
        let c = Config {
            anonymous: Some(AnonymousMode::Read),
            ..config()
        };
        let a = Authenticator::new(&c, &c.users);
        let g = a
            .login(b"FTP", b"me@example.com", LO, &CHECKS)
            .await
            .unwrap()
            .unwrap();
        assert!(g.anonymous);
        assert_eq!(g.rules.base, Perms::READ);
    }

    #[tokio::test]
    async fn anonymous_off() {
        let mut c = config();
        c.anonymous = Some(AnonymousMode::Off);
        let a = Authenticator::new(&c, &c.users);
        assert!(
            a.login(b"anonymous", b"x", LO, &CHECKS)
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn disabled_denied_and_networks() {
        let mut c = config();
        c.users[0].allow_from = vec!["10.0.0.0/8".parse().unwrap()];
        c.users.push(UserConfig {
            enabled: false,
            ..UserConfig::new("off", hash_password(b"pw"))
        });
        c.users.push(UserConfig::new("root", hash_password(b"pw")));
        c.deny_users = Some(vec!["root".into()]);
        let a = Authenticator::new(&c, &c.users);
        assert!(
            a.login(b"alice", b"pw", LO, &CHECKS)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            a.login(b"alice", b"pw", "10.1.2.3".parse().unwrap(), &CHECKS)
                .await
                .unwrap()
                .is_some()
        );
        assert!(a.login(b"off", b"pw", LO, &CHECKS).await.unwrap().is_none());
        assert!(
            a.login(b"root", b"pw", LO, &CHECKS)
                .await
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn password_hashes() {
        assert!(is_phc(&hash_password(b"x")));
        assert!(!is_phc("plain"));
    }
}
