//! Virtual hosts (RFC 7151): `HOST name` before USER, or the TLS SNI name, picks the
//! `[[host]]` whose users, root and banner the session gets; without either, the default
//! host answers.

use super::*;

impl Session {
    /// The 220 text: the chosen host's banner, else the global one.
    pub(super) fn banner(&self) -> String {
        let cfg = match &self.host {
            Some(h) => &h.config,
            None => &self.cfg,
        };
        if cfg.banner_version {
            format!("{} (wharf {})", cfg.banner, env!("CARGO_PKG_VERSION"))
        } else {
            cfg.banner.clone()
        }
    }

    /// Chooses `host` (none: the default host), as the admin interface shows it too.
    pub(super) fn set_host(&mut self, host: Option<Arc<crate::shared::Host>>) {
        if let Ok(mut h) = self.listed.view.host.lock() {
            *h = host.as_ref().map(|h| h.name.clone());
        }
        self.host = host;
    }

    /// Whose users and anonymous policy a login here is checked against.
    pub(super) fn authenticator(&self) -> Arc<crate::auth::Authenticator> {
        match &self.host {
            Some(h) => h.auth.clone(),
            None => self.shared.auth(),
        }
    }

    /// After a TLS handshake: the host the client named by SNI, if it is one of ours and
    /// HOST chose none yet.
    pub(super) fn host_from_sni(&mut self) {
        if self.host.is_some() {
            return;
        }
        if let Some(h) = self.ctrl.stream.sni().and_then(|n| self.shared.host(&n)) {
            info!(host = %h.name, "virtual host chosen by TLS name");
            self.set_host(Some(h));
            self.host_by_sni = true;
        }
    }

    /// HOST (RFC 7151), gated to before USER: 220 with the host's banner, 504 for a name
    /// this server does not serve. Without `[[host]]` blocks every name reaches the one
    /// host there is.
    pub(super) fn host_command(&mut self, arg: &[u8]) -> Reply {
        let hosts = self.shared.hosts();
        if hosts.is_empty() {
            return replies::HOST_ACCEPTED.reply();
        }
        let Ok(name) = std::str::from_utf8(arg.trim_ascii()) else {
            return replies::UNKNOWN_HOST.reply();
        };
        // An address literal ([v6] or v4) of this connection names the default host.
        let literal = name.trim_start_matches('[').trim_end_matches(']');
        let chosen = match self.shared.host(name) {
            Some(h) => Some(h),
            None if literal
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| datachan::canonical(ip) == self.local) =>
            {
                None
            }
            None => return replies::UNKNOWN_HOST.reply(),
        };
        let same = match (&chosen, &self.host) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if self.host_by_sni && !same {
            return replies::HOST_NOT_TLS_NAME.reply();
        }
        if let Some(h) = &chosen {
            info!(host = %h.name, "virtual host chosen by HOST");
        }
        self.set_host(chosen);
        Reply::new(Code::ServiceReady, self.banner())
    }
}
