//! Who may log in: `[[user]]` entries and `[[host]]` virtual hosts, as configured.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::*;

/// One configured user.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    /// An argon2id PHC string from `wharf hash-password`.
    pub password: String,
    /// The user's jail; defaults to the global `root`.
    #[serde(default)]
    pub root: Option<PathBuf>,
    /// Initial directory inside the root (a virtual path such as `/incoming`).
    #[serde(default)]
    pub home: Option<String>,
    #[serde(default = "full_permissions")]
    pub permissions: Vec<Permission>,
    /// Per-directory permissions.
    #[serde(default, rename = "dir")]
    pub dirs: Vec<DirRule>,
    /// A disabled user cannot log in (same reply as a wrong password).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Client networks the user may log in from (CIDR); empty means anywhere.
    #[serde(default)]
    pub allow_from: Vec<ipnet::IpNet>,
    /// Sessions at once for this user (overrides `max_sessions_per_user`; 0 = no limit).
    #[serde(default)]
    pub max_sessions: Option<usize>,
    /// Overrides the global `atomic_uploads` for this user.
    #[serde(default)]
    pub atomic_uploads: Option<bool>,
    /// Bytes per second for this user's uploads / downloads (0 = unlimited).
    #[serde(default)]
    pub rate_up: Option<u64>,
    #[serde(default)]
    pub rate_down: Option<u64>,
    /// Overrides the global `tls` for this user.
    #[serde(default)]
    pub tls: Option<TlsMode>,
    /// Overrides the global `tls_data` for this user.
    #[serde(default)]
    pub tls_data: Option<TlsData>,
    /// Overrides the global `tls_data_reuse` for this user.
    #[serde(default)]
    pub tls_data_reuse: Option<TlsReuse>,
    /// Bytes this user's root may hold (files and interrupted uploads); unset: no limit.
    #[serde(default)]
    pub quota_bytes: Option<u64>,
    /// Files this user's root may hold; unset: no limit.
    #[serde(default)]
    pub quota_files: Option<u64>,
}

impl UserConfig {
    /// A user with full rights on the global root and no overrides.
    pub fn new(name: &str, password_hash: String) -> UserConfig {
        UserConfig {
            name: name.to_string(),
            password: password_hash,
            root: None,
            home: None,
            permissions: full_permissions(),
            dirs: Vec::new(),
            enabled: true,
            allow_from: Vec::new(),
            max_sessions: None,
            atomic_uploads: None,
            rate_up: None,
            rate_down: None,
            tls: None,
            tls_data: None,
            tls_data_reuse: None,
            quota_bytes: None,
            quota_files: None,
        }
    }

    /// The user's quota.
    pub fn quota(&self) -> Quota {
        Quota {
            bytes: self.quota_bytes,
            files: self.quota_files,
        }
    }
}

fn full_permissions() -> Vec<Permission> {
    vec![Permission::Read, Permission::Write]
}

fn yes() -> bool {
    true
}

/// A virtual host (`[[host]]`): its names, and what it has of its own. Unset keys follow
/// the globals, except users (a host has only its own) and `anonymous` (off unless set).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// The name `HOST` or SNI selects it by (case-insensitive).
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub root: Option<PathBuf>,
    #[serde(default)]
    pub anonymous: Option<AnonymousMode>,
    #[serde(default)]
    pub anonymous_root: Option<PathBuf>,
    #[serde(default)]
    pub anonymous_quota_bytes: Option<u64>,
    #[serde(default)]
    pub anonymous_quota_files: Option<u64>,
    /// The text of its 220 replies (to HOST, and the greeting of implicit FTPS by SNI).
    #[serde(default)]
    pub banner: Option<String>,
    /// Its certificate, presented to clients that name it by SNI.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    #[serde(default)]
    pub users_file: Option<PathBuf>,
    #[serde(default, rename = "user")]
    pub users: Vec<UserConfig>,
}

impl HostConfig {
    /// Every name it answers to, lower-cased.
    pub fn names(&self) -> Vec<String> {
        std::iter::once(&self.name)
            .chain(&self.aliases)
            .map(|n| n.to_ascii_lowercase())
            .collect()
    }
}
