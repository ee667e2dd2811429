//! Checks of a configuration that its types alone cannot make: listeners, users, storages,
//! modes, proxy trust, limits.

use super::*;

impl Config {
    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.listen.is_empty() && self.implicit_listen.is_empty() && self.listeners.is_empty() {
            return Err(ConfigError::Invalid(
                "listen: at least one ADDR:PORT is needed".into(),
            ));
        }
        validate_users(&self.users)?;
        self.validate_storages()?;
        self.validate_hosts()?;
        for l in self.all_listeners() {
            let p = self.proxy_policy(&l);
            if p.enabled() && p.trusted.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "listener {}: proxy_protocol needs proxy_trusted, the balancers' addresses",
                    l.address
                )));
            }
        }
        for d in &self.anonymous_dirs {
            check_dir_rule("anonymous_dir", d)?;
        }
        if self.system_accounts && !cfg!(feature = "pam") {
            return Err(ConfigError::Invalid(
                "system_accounts: this wharf was built without PAM (cargo feature `pam`)".into(),
            ));
        }
        // Modes of what clients create never carry setuid or setgid (wharf may run as
        // root); the sticky bit only on directories, where it means something.
        for (key, mode, allowed, example) in [
            ("upload_mode", self.upload_mode, 0o777, "0o644"),
            ("dir_mode", self.dir_mode, 0o1777, "0o755 or 0o1777"),
            ("umask", self.umask, 0o777, "0o022"),
        ] {
            if mode.is_some_and(|m| m & !allowed != 0) {
                return Err(ConfigError::Invalid(format!(
                    "{key}: {:#o} has bits beyond {allowed:#o}: setuid, setgid{} are not allowed (like {example})",
                    mode.unwrap_or(0),
                    if allowed == 0o777 { " and sticky" } else { "" },
                )));
            }
        }
        for (key, user) in [
            ("upload_owner", &self.upload_owner),
            ("run_as", &self.run_as),
        ] {
            if let Some(name) = user
                && uid_of(name).is_none()
            {
                return Err(ConfigError::Invalid(format!(
                    "{key}: no such user `{name}`"
                )));
            }
        }
        for (key, group) in [
            ("upload_group", &self.upload_group),
            ("run_as_group", &self.run_as_group),
        ] {
            if let Some(name) = group
                && gid_of(name).is_none()
            {
                return Err(ConfigError::Invalid(format!(
                    "{key}: no such group `{name}`"
                )));
            }
        }
        if let Some(addr) = self.admin_listen {
            check_exposure(addr, self.admin_token.as_deref()).map_err(ConfigError::Invalid)?;
        }
        if self.banner.contains(['\r', '\n']) {
            return Err(ConfigError::Invalid(
                "banner: one line, without CR or LF".into(),
            ));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError::Invalid(
                "tls_cert and tls_key go together: set both, or neither for a generated certificate".into(),
            ));
        }
        for (key, v) in [
            ("idle_timeout", self.idle_timeout),
            ("data_connect_timeout", self.data_connect_timeout),
            ("data_stall_timeout", self.data_stall_timeout),
            ("tls_handshake_timeout", self.tls_handshake_timeout),
            ("login_timeout", self.login_timeout),
            ("login_failure_window", self.login_failure_window),
        ] {
            if v == 0 {
                return Err(ConfigError::Invalid(format!(
                    "{key}: must be at least 1 second"
                )));
            }
        }
        Ok(())
    }
}

impl Config {
    /// Storage blocks are complete and unique, and every `storage:NAME` root names one.
    fn validate_storages(&self) -> Result<(), ConfigError> {
        let mut names = std::collections::HashSet::new();
        for st in &self.storages {
            let bad = |m: &str| ConfigError::Invalid(format!("storage `{}`: {m}", st.name));
            if st.name.is_empty() || !names.insert(st.name.as_str()) {
                return Err(bad("needs a unique `name`"));
            }
            match st.kind {
                StorageKind::Local if st.path.is_none() => return Err(bad("needs `path`")),
                StorageKind::S3 if st.bucket.is_none() => return Err(bad("needs `bucket`")),
                StorageKind::S3 if st.part_size < 5 << 20 => {
                    return Err(bad("part_size must be at least 5 MiB (5242880)"));
                }
                _ => {}
            }
        }
        let roots = [Some(&self.root), self.anonymous_root.as_ref()]
            .into_iter()
            .flatten()
            .chain(self.users.iter().filter_map(|u| u.root.as_ref()));
        for root in roots {
            if let Some(name) = storage_name(root)
                && !names.contains(name)
            {
                return Err(ConfigError::Invalid(format!(
                    "root `{}`: no [[storage]] named `{name}`",
                    root.display()
                )));
            }
        }
        Ok(())
    }
}

impl Config {
    /// Host names are unique, and a host's own certificate has both halves.
    fn validate_hosts(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for h in &self.hosts {
            for n in h.names() {
                if n.is_empty() || n.contains([' ', '\r', '\n', '\0', '/']) {
                    return Err(ConfigError::Invalid(format!(
                        "host `{n}`: a name must be a DNS name or an address"
                    )));
                }
                if !seen.insert(n.clone()) {
                    return Err(ConfigError::Invalid(format!("host `{n}` is named twice")));
                }
            }
            if h.tls_cert.is_some() != h.tls_key.is_some() {
                return Err(ConfigError::Invalid(format!(
                    "host `{}`: tls_cert and tls_key go together",
                    h.name
                )));
            }
            validate_users(&h.users)
                .map_err(|e| ConfigError::Invalid(format!("host `{}`: {e}", h.name)))?;
        }
        Ok(())
    }
}

pub fn validate_users(users: &[UserConfig]) -> Result<(), ConfigError> {
    let mut seen = std::collections::HashSet::new();
    for u in users {
        if u.name.is_empty() || u.name.contains([' ', '\r', '\n', '\0']) {
            return Err(ConfigError::Invalid(format!(
                "user `{}`: a name must be non-empty, with no spaces or control characters",
                u.name
            )));
        }
        if !seen.insert(u.name.as_str()) {
            return Err(ConfigError::Invalid(format!(
                "user `{}` is defined twice",
                u.name
            )));
        }
        if !is_phc(&u.password) {
            return Err(ConfigError::Invalid(format!(
                "user `{}`: password must be an argon2id PHC string ($argon2id$...); make one with `wharf hash-password`",
                u.name
            )));
        }
        for d in &u.dirs {
            check_dir_rule(&format!("user `{}`", u.name), d)?;
        }
        if let Some(home) = &u.home
            && !home.starts_with('/')
        {
            return Err(ConfigError::Invalid(format!(
                "user `{}`: home `{home}` must be an absolute path inside the user's root, like /incoming",
                u.name
            )));
        }
    }
    Ok(())
}

fn check_dir_rule(owner: &str, d: &DirRule) -> Result<(), ConfigError> {
    if !d.path.starts_with('/') || d.path.contains('\0') {
        return Err(ConfigError::Invalid(format!(
            "{owner}: dir path `{}` must be an absolute path inside the root, like /incoming",
            d.path
        )));
    }
    Ok(())
}

/// Refuses an admin listener that strangers could reach without a token.
pub fn check_exposure(addr: std::net::SocketAddr, token: Option<&str>) -> Result<(), String> {
    if !addr.ip().is_loopback() && token.is_none() {
        return Err(format!(
            "admin_listen {addr} is not a loopback address: set admin_token, or listen on 127.0.0.1 or [::1]"
        ));
    }
    Ok(())
}

/// Whether `s` is a PHC string wharf can verify (argon2id).
pub fn is_phc(s: &str) -> bool {
    argon2::password_hash::PasswordHash::new(s).is_ok_and(|h| h.algorithm.as_str() == "argon2id")
}

/// A user name (or a number) to a uid.
pub fn uid_of(name: &str) -> Option<u32> {
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    nix::unistd::User::from_name(name)
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw())
}

/// A group name (or a number) to a gid.
pub fn gid_of(name: &str) -> Option<u32> {
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    nix::unistd::Group::from_name(name)
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw())
}
