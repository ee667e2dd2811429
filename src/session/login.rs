//! USER/PASS and what guards them: bans checked at every PASS, the password check's turn,
//! failure counts (per node and across the cluster), session limits at login, the jail.

use super::*;

/// The 421 for a session or login the cluster refused.
fn cluster_refusal(denied: crate::cluster::Denied) -> Reply {
    match denied {
        crate::cluster::Denied::Limit(r) => crate::error::refused(r.0),
        crate::cluster::Denied::Unavailable => replies::SHARED_STATE_DOWN.reply(),
    }
}

impl Session {
    /// Counts this connection across the nodes (per-address limit); `false` (after a 421)
    /// when it is refused.
    pub(super) async fn join_cluster(&mut self) -> bool {
        let Some(c) = self.shared.cluster.clone() else {
            return true;
        };
        match c
            .admit(self.listed.view.id, self.peer, self.cfg.max_sessions_per_ip)
            .await
        {
            Ok(registered) => {
                if registered {
                    self.listed.view.registered.store(true, Ordering::Relaxed);
                }
                true
            }
            Err(denied) => {
                info!(reason = ?denied, "connection refused by the cluster");
                let _ = self.send(cluster_refusal(denied)).await;
                false
            }
        }
    }

    pub(super) fn address_banned(&self) -> bool {
        self.shared
            .guard
            .banned(self.peer, Instant::now())
            .is_some()
    }

    /// PASS. `Err` carries a 421 after which the session closes (ban, session limit).
    pub(super) async fn pass(&mut self, password: &[u8]) -> Result<Reply, Reply> {
        let Phase::NeedPass { user } = std::mem::replace(&mut self.phase, Phase::Fresh) else {
            return Ok(replies::USER_FIRST.reply());
        };
        self.cfg = self.shared.config();
        let name = lossy(&user);
        // Every PASS, not only every connection: a client connected before its address
        // was banned gets no more guesses.
        if self.address_banned() {
            info!(user = %name, "login refused: address banned");
            return Err(replies::BANNED.reply());
        }
        let locked = self.shared.guard.locked(&name, Instant::now());
        let granted = if locked {
            None
        } else {
            self.check_password(&user, password).await?
        };
        // The check may have waited its turn while another session got the address
        // banned: its answer, right or wrong, is not told.
        if self.address_banned() {
            return Err(replies::BANNED.reply());
        }
        let Some(grant) = granted else {
            return self.login_failed(&name, locked).await;
        };
        if !grant.anonymous {
            self.shared.guard.succeeded(self.peer, &name);
            if let Some(c) = self.shared.cluster.clone() {
                let (ip, user) = (self.peer, name.clone());
                self.shared
                    .tasks
                    .spawn(async move { c.forgive(ip, &user).await });
            }
        }
        self.admit_login(&grant).await?;
        let jail = match self.open_jail(&grant).await {
            Ok(j) => j,
            Err(r) => {
                self.slot.logout();
                return r;
            }
        };
        self.enter(grant, jail, password).await;
        Ok(replies::LOGGED_IN.reply())
    }

    /// The password check, in its turn; 421 when too many wait.
    async fn check_password(&self, user: &[u8], password: &[u8]) -> Result<Option<Grant>, Reply> {
        let auth = self.authenticator();
        match auth
            .login(user, password, self.peer, &self.shared.password_checks)
            .await
        {
            Ok(g) => Ok(g),
            Err(limits::Busy) => {
                warn!(user = %lossy(user), "login refused: too many password checks waiting");
                Err(replies::TOO_MANY_PASSWORD_CHECKS.reply())
            }
        }
    }

    /// A failed login: counted here and across the nodes, delayed, and past the limit a
    /// ban (421, and the address's other sessions end too).
    async fn login_failed(&mut self, name: &str, locked: bool) -> Result<Reply, Reply> {
        let policy = limits::BanPolicy::from_config(&self.cfg);
        let guard = &self.shared.guard;
        let (delay, mut banned) = guard.failed(self.peer, name, &policy, Instant::now());
        if !banned && let Some(c) = self.shared.cluster.clone() {
            // The count of every node: three nodes must not give three times the guesses.
            if let Some(n) = Box::pin(c.failed(self.peer, name, policy.window)).await
                && policy.bans(n)
            {
                guard.ban(self.peer, policy.ban_for, Instant::now());
                banned = true;
            }
        }
        let max = self.cfg.max_user_failures;
        if !locked && guard.user_failed(name, max, &policy, Instant::now()) {
            warn!(user = %name, lock_seconds = policy.ban_for.as_secs(), "user locked out after repeated login failures");
        }
        info!(user = %name, locked, "login failed");
        self.shared.metrics.login(false);
        // Slows password guessing; other sessions are not held up.
        tokio::time::sleep(delay).await;
        if !banned {
            return Ok(replies::LOGIN_INCORRECT.reply());
        }
        self.shared.metrics.bans.inc();
        if let Some(c) = self.shared.cluster.clone() {
            let (ip, ban_for) = (self.peer, policy.ban_for);
            self.shared
                .tasks
                .spawn(async move { c.publish_ban(ip, ban_for).await });
        }
        warn!(
            ban_seconds = policy.ban_for.as_secs(),
            "address banned after repeated login failures"
        );
        Err(replies::BANNED.reply())
    }

    /// Counts the login against the per-user limits, here and across the nodes.
    async fn admit_login(&mut self, grant: &Grant) -> Result<(), Reply> {
        let max = grant
            .config
            .as_ref()
            .and_then(|u| u.max_sessions)
            .unwrap_or(self.cfg.max_sessions_per_user);
        if let Err(refusal) = self.slot.login(&grant.user, max) {
            info!(user = %grant.user, reason = %refusal.0, "login refused");
            return Err(crate::error::refused(refusal.0));
        }
        if let Some(c) = self.shared.cluster.clone() {
            // Boxed, like every rare and big future here: the session's task stays small.
            match Box::pin(c.login(self.listed.view.id, self.peer, &grant.user, max)).await {
                Ok(registered) => {
                    if registered {
                        self.listed.view.registered.store(true, Ordering::Relaxed);
                    }
                }
                Err(denied) => {
                    info!(user = %grant.user, reason = ?denied, "login refused by the cluster");
                    self.slot.logout();
                    return Err(cluster_refusal(denied));
                }
            }
        }
        Ok(())
    }

    /// The user's jail. `Err` is the whole answer to PASS: 421 when the server is out of
    /// descriptors (its trouble, not the password's), else a plain 530.
    async fn open_jail(&self, grant: &Grant) -> Result<Jail, Result<Reply, Reply>> {
        match self.shared.jail(&grant.root).await {
            Ok(j) => Ok(j.with_ownership(self.shared.ownership())),
            Err(e) => {
                warn!(user = %grant.user, root = %grant.root.display(), error = %e, "cannot open the user's root");
                if matches!(
                    e.raw_os_error(),
                    Some(nix::libc::ENFILE | nix::libc::EMFILE)
                ) {
                    return Err(Err(replies::OUT_OF_RESOURCES.reply()));
                }
                Err(Ok(replies::LOGIN_INCORRECT.reply()))
            }
        }
    }

    /// Logged in: the home directory, the log line, the registries.
    async fn enter(&mut self, grant: Grant, jail: Jail, password: &[u8]) {
        let home = VPath::root().resolve(&grant.home).unwrap_or_default();
        // The root is a directory by construction: no trip to the blocking pool for the
        // common case (anonymous, and most users).
        self.cwd = if home == VPath::root() {
            home
        } else {
            match jail.stat(&home).await {
                Ok(e) if e.kind == Kind::Dir => home,
                _ => VPath::root(),
            }
        };
        // The password of an anonymous login is the client's claimed e-mail address.
        let email = grant
            .anonymous
            .then(|| lossy(password).chars().take(100).collect::<String>());
        match &email {
            Some(email) => info!(user = %grant.user, anonymous = true, email = %email, "login"),
            None => info!(user = %grant.user, anonymous = false, "login"),
        }
        // Only a TLS control connection can have TLS data connections to vouch for (and
        // AUTH after a login starts a new one).
        if self.ctrl.stream.is_tls() {
            self.shared
                .tls_owners
                .login(self.token, self.peer, &grant.user);
        }
        self.shared.metrics.login(true);
        if let Ok(mut u) = self.listed.view.user.lock() {
            *u = Some(grant.user.clone());
        }
        self.login = Some(Login { grant, jail, email });
        self.phase = Phase::LoggedIn;
    }

    /// USER: starts a new login (ending any current one), unless TLS is required first.
    pub(super) fn user(&mut self, name: Vec<u8>) -> Reply {
        self.logout();
        if !self.ctrl.stream.is_tls() && self.control_policy(&name) == TlsMode::Required {
            return replies::TLS_REQUIRED.reply();
        }
        let text = if crate::auth::is_anonymous_name(&name) {
            "Anonymous login okay, send your e-mail address as password."
        } else {
            "Password required."
        };
        self.phase = Phase::NeedPass { user: name };
        Reply::new(Code::NeedPassword, text)
    }
}
