//! Where secrets live: the state directory that holds generated keys, and the start-up
//! check that no key, credential, users file or admin socket lies inside a served root,
//! where a client could download (or, with write access, replace) it.
//!
//! Paths are compared after resolving symlinks of the part that exists, so a root given
//! as `.` and a key under `$PWD` are seen to be the same place.

use std::path::{Component, Path, PathBuf};

use crate::config::{Config, ConfigError, StorageKind, UserConfig, storage_name};

/// Where generated certificates and keys go unless `tls_dir` says otherwise: never the
/// current directory (often the served one). systemd's `$STATE_DIRECTORY` (the unit's
/// `StateDirectory=`), else `$XDG_STATE_HOME/wharf`, else `/var/lib/wharf` as root, else
/// `~/.local/state/wharf`.
pub fn default_state_dir() -> PathBuf {
    let absolute = |v: Option<std::ffi::OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    // A unit with several state directories lists them separated by colons.
    let systemd = std::env::var_os("STATE_DIRECTORY")
        .and_then(|v| absolute(v.to_string_lossy().split(':').next().map(Into::into)));
    if let Some(state) = systemd {
        return state;
    }
    if let Some(state) = absolute(std::env::var_os("XDG_STATE_HOME")) {
        return state.join("wharf");
    }
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib/wharf");
    }
    if let Some(home) = absolute(std::env::var_os("HOME")) {
        return home.join(".local/state/wharf");
    }
    std::env::temp_dir().join(format!("wharf-{}", nix::unistd::geteuid()))
}

/// The directory generated keys are kept in for `config`.
pub fn state_dir(config: &Config) -> PathBuf {
    config.tls_dir.clone().unwrap_or_else(default_state_dir)
}

/// Refuses a configuration that puts a secret inside a served local root, naming both.
pub fn check(config: &Config, users: &[UserConfig]) -> Result<(), ConfigError> {
    let mut secrets: Vec<(&str, PathBuf)> = Vec::new();
    if config.tls_enabled() && (config.tls_cert.is_none() || config.tls_key.is_none()) {
        secrets.push(("tls_dir (the generated key)", state_dir(config)));
    }
    if let Some(k) = &config.tls_key {
        secrets.push(("tls_key", k.clone()));
    }
    if let Some(s) = &config.admin_socket {
        secrets.push(("admin_socket", s.clone()));
    }
    if let Some(f) = &config.users_file {
        secrets.push(("users_file", f.clone()));
    }
    for s in &config.storages {
        if let Some(f) = &s.credentials_file {
            secrets.push(("credentials_file", f.clone()));
        }
    }
    let mut roots: Vec<(String, PathBuf)> = vec![
        ("root".into(), config.root.clone()),
        (
            "anonymous_root".into(),
            config.anonymous_root().to_path_buf(),
        ),
    ];
    for u in users {
        if let Some(r) = &u.root {
            roots.push((format!("root of user `{}`", u.name), r.clone()));
        }
    }
    for s in &config.storages {
        if let (StorageKind::Local, Some(p)) = (&s.kind, &s.path) {
            roots.push((format!("storage `{}`", s.name), p.clone()));
        }
    }
    roots.retain(|(_, r)| storage_name(r).is_none());
    let roots: Vec<(String, PathBuf)> = roots.into_iter().map(|(n, r)| (n, real(&r))).collect();
    for (what, path) in secrets {
        let at = real(&path);
        if let Some((root_name, root)) = roots.iter().find(|(_, r)| at.starts_with(r)) {
            return Err(ConfigError::Invalid(format!(
                "{what} {} lies inside the served {root_name} {}: clients could download it; \
                 put it outside every root",
                path.display(),
                root.display()
            )));
        }
    }
    Ok(())
}

/// `p` made absolute, with the longest existing ancestor's symlinks resolved and `.` and
/// `..` of the rest applied.
fn real(p: &Path) -> PathBuf {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    let base = loop {
        if let Ok(c) = existing.canonicalize() {
            break c;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => break abs.clone(),
        }
    };
    let mut out = base;
    for name in rest.iter().rev() {
        match Path::new(name).components().next() {
            Some(Component::ParentDir) => {
                out.pop();
            }
            Some(Component::CurDir) | None => {}
            _ => out.push(name),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls_config(root: &Path, state: &Path) -> Config {
        Config {
            root: root.to_path_buf(),
            tls: crate::config::TlsMode::Optional,
            tls_dir: Some(state.to_path_buf()),
            ..Config::default()
        }
    }

    #[test]
    fn keys_inside_a_root_are_refused_and_named() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("srv");
        std::fs::create_dir(&root).unwrap();
        // The generated key's directory, written through a path that climbs and returns.
        let c = tls_config(&root, &d.path().join("srv/../srv/keys"));
        let e = check(&c, &[]).unwrap_err().to_string();
        assert!(e.contains("tls_dir") && e.contains("root"), "{e}");
        // Outside the root: fine.
        let c = tls_config(&root, &d.path().join("state"));
        check(&c, &[]).unwrap();
        // A user's root holding the admin socket.
        let c = Config {
            admin_socket: Some(d.path().join("home/alice/admin.sock")),
            ..tls_config(&root, &d.path().join("state"))
        };
        let alice = UserConfig {
            root: Some(d.path().join("home/alice")),
            ..UserConfig::new("alice", String::new())
        };
        let e = check(&c, &[alice]).unwrap_err().to_string();
        assert!(e.contains("admin_socket") && e.contains("alice"), "{e}");
        // Configured key files are checked too, and the symlinked spelling of a root.
        std::os::unix::fs::symlink(&root, d.path().join("link")).unwrap();
        let c = Config {
            tls_cert: Some(d.path().join("cert.pem")),
            tls_key: Some(root.join("key.pem")),
            ..tls_config(&d.path().join("link"), &d.path().join("state"))
        };
        let e = check(&c, &[]).unwrap_err().to_string();
        assert!(e.contains("tls_key"), "{e}");
    }

    #[test]
    fn the_default_state_dir_is_never_relative() {
        assert!(default_state_dir().is_absolute());
    }
}
