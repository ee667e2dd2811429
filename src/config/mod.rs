//! Configuration: the TOML file and the command-line flags become one validated [`Config`].
//!
//! Owns every setting's name, type and default. `Config::default()` is the embedded default
//! (`./ftp` on `[::]:2121`, anonymous read-only). Errors name the file, line, key and what
//! is allowed; nothing here panics on bad input.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod explain;
mod validate;

pub use validate::{check_exposure, gid_of, is_phc, uid_of, validate_users};
pub use values::*;

mod messages;
pub use messages::locate;
mod accounts;
mod values;
pub use accounts::{HostConfig, UserConfig};

/// A listener with its own TLS policies (`[[listener]]`); unset keys follow the globals.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    pub address: SocketAddr,
    /// TLS from the first byte (implicit FTPS).
    #[serde(default)]
    pub implicit: bool,
    #[serde(default)]
    pub tls: Option<TlsMode>,
    #[serde(default)]
    pub tls_data: Option<TlsData>,
    #[serde(default)]
    pub tls_data_reuse: Option<TlsReuse>,
    /// PROXY protocol on this listener (and the passive connections of its sessions);
    /// unset: the global `proxy_protocol` / `proxy_trusted`.
    #[serde(default)]
    pub proxy_protocol: Option<ProxyProtocol>,
    #[serde(default)]
    pub proxy_trusted: Option<Vec<ipnet::IpNet>>,
}

impl ListenerConfig {
    /// A listener that follows the global policies.
    pub fn new(address: SocketAddr, implicit: bool) -> ListenerConfig {
        ListenerConfig {
            address,
            implicit,
            tls: None,
            tls_data: None,
            tls_data_reuse: None,
            proxy_protocol: None,
            proxy_trusted: None,
        }
    }
}

/// An `admin_token` shorter than this is warned about at start-up.
pub const ADMIN_TOKEN_MIN: usize = 16;

/// Sessions from one client address, unless configured otherwise.
pub const DEFAULT_SESSIONS_PER_IP: usize = 50;

/// The whole validated configuration.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Control listeners. `[::]:PORT` is dual-stack (IPv4 clients reach it too).
    pub listen: Vec<SocketAddr>,
    /// Default root for users without their own, and for anonymous.
    pub root: PathBuf,
    /// What anonymous logins may do; unset: `read` when no user is configured, else `off`
    /// (see [`Config::anonymous_mode`]).
    pub anonymous: Option<AnonymousMode>,
    /// Root for anonymous users; defaults to `root`.
    pub anonymous_root: Option<PathBuf>,
    /// Replaces the permission set the `anonymous` mode implies.
    pub anonymous_permissions: Option<Vec<Permission>>,
    /// Per-directory permissions for anonymous users.
    #[serde(rename = "anonymous_dir")]
    pub anonymous_dirs: Vec<DirRule>,
    /// Login names refused outright, with the reply a wrong password gets. Unset: none,
    /// or with `system_accounts` the usual system names (root, daemon, bin, …).
    pub deny_users: Option<Vec<String>>,
    /// Also accept the machine's own accounts, checked by PAM (cargo feature `pam`). Their
    /// root is their home directory; they may read and write there.
    pub system_accounts: bool,
    /// The PAM service name (`/etc/pam.d/<name>`, else PAM's `other`).
    pub pam_service: String,
    /// Drop box (`anonymous = "upload"`): what to do when an uploaded name exists.
    pub upload_collision: Collision,
    /// Uploads go to a hidden temporary name and appear under their own name only when
    /// complete; an interrupted binary upload stays hidden and resumable (SIZE, REST +
    /// STOR, APPE). Unset: on (false keeps in-place writes).
    pub atomic_uploads: Option<bool>,
    /// What an atomic upload that fails leaves behind.
    pub failed_uploads: FailedUploads,
    /// Seconds an interrupted upload to a local disk stays resumable; then the janitor
    /// removes it (checked at start and hourly).
    pub resumable_for: u64,
    /// sendfile(2) for plain binary downloads: auto or always (wherever the kernel can),
    /// never.
    pub sendfile: Sendfile,
    /// Permission bits of uploaded files and of made directories (e.g. 0o644, 0o755);
    /// unset: what the umask leaves of 0o666 / 0o777.
    pub upload_mode: Option<u32>,
    pub dir_mode: Option<u32>,
    /// The process umask, set at start.
    pub umask: Option<u32>,
    /// Owner and group of uploaded files and made directories (needs root).
    pub upload_owner: Option<String>,
    pub upload_group: Option<String>,
    /// After binding the listeners, drop root and run as this user (and its group, or
    /// `run_as_group`), so port 21 works without sessions running as root.
    pub run_as: Option<String>,
    pub run_as_group: Option<String>,
    /// A command (argv, no shell) run after each stored file, with WHARF_PATH, WHARF_FILE,
    /// WHARF_USER, WHARF_CLIENT and WHARF_SIZE in its environment.
    pub upload_hook: Vec<String>,
    /// A URL that receives a JSON POST after each stored file.
    pub upload_hook_url: Option<String>,
    /// Hooks running at once, and seconds each may take.
    pub hook_concurrency: usize,
    pub hook_timeout: u64,
    /// Passive ports; unset means any free port the kernel picks.
    pub passive_ports: Option<PortRange>,
    /// The address PASV announces to clients outside the local networks (for NAT), by
    /// address or host name; unset, or for clients on loopback, private and link-local
    /// networks, the address the client connected to.
    pub public_address: Option<HostAddr>,
    /// What PASV announces to clients of given networks, before the rule above.
    #[serde(rename = "passive_address")]
    pub passive_addresses: Vec<PassiveAddress>,
    /// Accept passive data connections only from the control connection's peer address.
    pub passive_peer_check: bool,
    /// PORT/EPRT only to the control connection's peer address and never below port 1024.
    pub active_peer_check: bool,
    pub log_format: LogFormat,
    /// The event log goes to this file instead of stderr (reopened on SIGUSR1).
    pub log_file: Option<PathBuf>,
    /// The xferlog (wu-ftpd format) transfer log (reopened on SIGUSR1).
    pub xferlog: Option<PathBuf>,
    /// Seconds running transfers may take to finish on SIGTERM/SIGINT before they are
    /// aborted.
    pub shutdown_grace: u64,
    /// The admin HTTP endpoint (health, metrics, sessions, bans); off when unset.
    pub admin_listen: Option<SocketAddr>,
    /// The admin endpoint on a Unix socket (mode 0600: only this user reaches it); off
    /// when unset. May be used with or instead of `admin_listen`.
    pub admin_socket: Option<PathBuf>,
    /// Bearer token the admin endpoint requires; mandatory off loopback.
    pub admin_token: Option<String>,
    /// Seconds a logged-in session may stay idle.
    pub idle_timeout: u64,
    /// Seconds to wait for the client to connect to a passive port (or for an active
    /// connection to be established) before replying 425.
    pub data_connect_timeout: u64,
    /// Seconds a data transfer may make no progress before it is aborted.
    pub data_stall_timeout: u64,
    /// Seconds a client may take from connecting to logging in.
    pub login_timeout: u64,
    /// Sessions at once in total (0 = no limit; unset: what the descriptor limit allows,
    /// derived from the descriptor limit by `limits::sessions_for_descriptors`).
    pub max_sessions: Option<usize>,
    /// Sessions at once from one client address / per user (0 = no limit).
    pub max_sessions_per_ip: usize,
    pub max_sessions_per_user: usize,
    /// Failed logins tolerated from one address within `login_failure_window` seconds;
    /// the next one bans the address for `ban_time` seconds (0 = never ban).
    pub max_login_failures: u32,
    /// Failed passwords tolerated for one login name within the window, from anywhere;
    /// the next locks the name for `ban_time` (0 = no per-user lockout).
    pub max_user_failures: u32,
    /// Seconds a verified login is remembered, so the same user and password skip the
    /// argon2 check (~20 ms of a core) meanwhile; 0 turns it off.
    pub credential_cache: u64,
    pub login_failure_window: u64,
    pub ban_time: u64,
    /// Milliseconds of delay after a failed login; doubles with each further failure from
    /// the same address, up to 5 s.
    pub login_failure_delay_ms: u64,
    /// Bandwidth per user in bytes per second, shared by all of a user's transfers
    /// (0 = unlimited); `[[user]]` can override. Anonymous logins share one allowance.
    pub rate_up: u64,
    pub rate_down: u64,
    pub anonymous_rate_up: u64,
    pub anonymous_rate_down: u64,
    /// Bytes and files the anonymous root may hold (shared by every anonymous login);
    /// unset: no limit.
    pub anonymous_quota_bytes: Option<u64>,
    pub anonymous_quota_files: Option<u64>,
    /// The text of the 220 greeting.
    pub banner: String,
    /// Append wharf's version to the greeting.
    pub banner_version: bool,
    /// TLS on the control connection: `off`, `optional` (AUTH TLS offered) or `required`.
    pub tls: TlsMode,
    /// Certificate chain (PEM). Unset with TLS on: a self-signed certificate is generated
    /// once in `tls_dir` and reused.
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Where the generated certificate is kept; defaults to `/var/lib/wharf` as root, else
    /// the XDG state directory (`~/.local/state/wharf`). Never inside a served root.
    pub tls_dir: Option<PathBuf>,
    /// Data connections: `optional` or `required` (PROT P before any transfer).
    pub tls_data: TlsData,
    /// Data-connection session reuse: `off`, `log` or `require`.
    pub tls_data_reuse: TlsReuse,
    /// Anonymous logins are exempt from `tls = "required"` and `tls_data = "required"`.
    pub tls_exempt_anonymous: bool,
    /// Implicit FTPS listeners (TLS from the first byte, PROT P by default).
    pub implicit_listen: Vec<SocketAddr>,
    /// Seconds a client may take to finish a control-connection TLS handshake.
    pub tls_handshake_timeout: u64,
    /// Listeners with their own policies, in addition to `listen` and `implicit_listen`.
    #[serde(rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
    /// A TOML file of further `[[user]]` entries, re-read on SIGHUP.
    pub users_file: Option<PathBuf>,
    #[serde(rename = "user")]
    pub users: Vec<UserConfig>,
    /// Name-based virtual hosts (`[[host]]`), chosen by `HOST` or the TLS SNI name; the
    /// settings above are the default host's.
    #[serde(rename = "host")]
    pub hosts: Vec<HostConfig>,
    /// PROXY protocol from a load balancer: `off`, `v1`, `v2` or `any`, on the control
    /// listeners and the passive connections of their sessions; `[[listener]]` can
    /// override. A header is accepted only from `proxy_trusted` (CIDRs); a missing or
    /// malformed one closes the connection.
    pub proxy_protocol: ProxyProtocol,
    pub proxy_trusted: Vec<ipnet::IpNet>,
    /// Shared state of several nodes in PostgreSQL (`database_url`); off when unset.
    pub cluster: ClusterConfig,
    /// Named storages; a root written `storage:NAME` (global, anonymous or per user) is
    /// served from the one of that name.
    #[serde(rename = "storage")]
    pub storages: Vec<StorageConfig>,
}

/// Where a storage keeps its files.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    #[default]
    Local,
    S3,
}

/// One `[[storage]]` block: a local directory, or an S3 bucket and key prefix.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub name: String,
    pub kind: StorageKind,
    /// `kind = "local"`: the directory.
    pub path: Option<PathBuf>,
    /// `kind = "s3"`: bucket, key prefix, endpoint URL (unset: AWS for `region`), region,
    /// and path-style URLs (`http://host/bucket/key`, what most self-hosted stores want).
    pub bucket: Option<String>,
    pub prefix: Option<String>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub path_style: bool,
    /// A file with `access_key_id = ...` and `secret_access_key = ...`; unset:
    /// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from the environment. Never logged.
    pub credentials_file: Option<PathBuf>,
    /// Bytes per multipart part (at least 5 MiB) and parts of one upload in flight: an
    /// upload holds at most `part_size × (parts_in_flight + 1)` bytes.
    pub part_size: usize,
    pub parts_in_flight: usize,
    /// Seconds one S3 request may take, and retries (with backoff) before a 451.
    pub timeout: u64,
    pub retries: u32,
    /// Interrupted uploads stay resumable this many seconds; then the janitor aborts them
    /// (checked at start and hourly).
    pub resumable_for: u64,
    /// RNFR/RNTO of a non-empty directory moves at most this many objects (0: refused).
    pub rename_dir_limit: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            name: String::new(),
            kind: StorageKind::Local,
            path: None,
            bucket: None,
            prefix: None,
            endpoint: None,
            region: None,
            path_style: false,
            credentials_file: None,
            part_size: 8 << 20,
            parts_in_flight: 2,
            timeout: 30,
            retries: 3,
            resumable_for: 86_400,
            rename_dir_limit: 0,
        }
    }
}

/// What a root names: a directory, or a `[[storage]]` block (`storage:NAME`).
pub fn storage_name(root: &Path) -> Option<&str> {
    root.to_str()?.strip_prefix("storage:")
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec![SocketAddr::from(([0u16; 8], 2121))],
            root: PathBuf::from("./ftp"),
            anonymous: None,
            anonymous_root: None,
            anonymous_permissions: None,
            anonymous_dirs: Vec::new(),
            deny_users: None,
            system_accounts: false,
            pam_service: "wharf".into(),
            upload_collision: Collision::Refuse,
            atomic_uploads: None,
            failed_uploads: FailedUploads::Delete,
            resumable_for: 86_400,
            sendfile: Sendfile::Auto,
            upload_mode: None,
            dir_mode: None,
            umask: None,
            upload_owner: None,
            upload_group: None,
            run_as: None,
            run_as_group: None,
            upload_hook: Vec::new(),
            upload_hook_url: None,
            hook_concurrency: 4,
            hook_timeout: 30,
            passive_ports: None,
            public_address: None,
            passive_addresses: Vec::new(),
            passive_peer_check: true,
            active_peer_check: true,
            log_format: LogFormat::Text,
            log_file: None,
            xferlog: None,
            shutdown_grace: 30,
            admin_listen: None,
            admin_socket: None,
            admin_token: None,
            idle_timeout: 600,
            data_connect_timeout: 20,
            data_stall_timeout: 300,
            login_timeout: 60,
            max_sessions: None,
            // vsftpd's sample config says 50 too: room for a NAT'd office running
            // multi-connection clients, far below what one address needs to crowd out
            // the others.
            max_sessions_per_ip: DEFAULT_SESSIONS_PER_IP,
            max_sessions_per_user: 0,
            max_login_failures: 5,
            max_user_failures: 0,
            credential_cache: 300,
            login_failure_window: 300,
            ban_time: 900,
            login_failure_delay_ms: 500,
            rate_up: 0,
            rate_down: 0,
            anonymous_rate_up: 0,
            anonymous_rate_down: 0,
            anonymous_quota_bytes: None,
            anonymous_quota_files: None,
            banner: "wharf FTP server ready.".into(),
            banner_version: false,
            tls: TlsMode::Off,
            tls_cert: None,
            tls_key: None,
            tls_dir: None,
            tls_data: TlsData::Optional,
            tls_data_reuse: TlsReuse::Log,
            tls_exempt_anonymous: false,
            implicit_listen: Vec::new(),
            tls_handshake_timeout: 10,
            listeners: Vec::new(),
            users_file: None,
            users: Vec::new(),
            hosts: Vec::new(),
            storages: Vec::new(),
            proxy_protocol: ProxyProtocol::Off,
            proxy_trusted: Vec::new(),
            cluster: ClusterConfig::default(),
        }
    }
}

/// A configuration error, worded for the operator.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Parse {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Loads and validates a TOML file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.display().to_string(),
            source,
        })?;
        let config = Config::from_toml(&text, &path.display().to_string())?;
        Ok(config)
    }

    /// Parses TOML text; `file` names it in errors.
    pub fn from_toml(text: &str, file: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
            let snippet = e.span().and_then(|s| text.get(s)).unwrap_or("");
            ConfigError::Parse {
                file: file.to_string(),
                line,
                column,
                message: messages::humanize(e.message().trim(), snippet),
            }
        })?;
        config.validate().map_err(|e| match e {
            ConfigError::Invalid(message) => match messages::locate(text, &message) {
                Some((line, column)) => ConfigError::Parse {
                    file: file.to_string(),
                    line,
                    column,
                    message,
                },
                None => ConfigError::Invalid(format!("{file}: {message}")),
            },
            other => other,
        })?;
        Ok(config)
    }

    /// The names refused outright.
    pub fn denied_names(&self) -> Vec<String> {
        match &self.deny_users {
            Some(list) => list.clone(),
            None if self.system_accounts => [
                "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news",
                "uucp", "proxy", "www-data", "backup", "list", "irc", "nobody",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            None => Vec::new(),
        }
    }

    /// Every user: the config's own and those of `users_file` (read now), validated
    /// together.
    pub fn all_users(&self) -> Result<Vec<UserConfig>, ConfigError> {
        let mut users = self.users.clone();
        if let Some(path) = &self.users_file {
            let file = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                file: file.clone(),
                source,
            })?;
            let parsed: UsersFile = toml::from_str(&text).map_err(|e| {
                let (line, column) = e.span().map(|s| line_col(&text, s.start)).unwrap_or((0, 0));
                ConfigError::Parse {
                    file,
                    line,
                    column,
                    message: e.message().trim().to_string(),
                }
            })?;
            users.extend(parsed.users);
        }
        validate_users(&users)?;
        Ok(users)
    }

    /// What anonymous logins may do: as configured, else `read` when the server has no
    /// users (a public folder) and `off` when it has some (users do not expect strangers).
    pub fn anonymous_mode(&self) -> AnonymousMode {
        self.anonymous.unwrap_or(
            if self.users.is_empty() && self.users_file.is_none() && !self.system_accounts {
                AnonymousMode::Read
            } else {
                AnonymousMode::Off
            },
        )
    }

    /// Whether any listener or policy needs a certificate.
    pub fn tls_enabled(&self) -> bool {
        self.tls != TlsMode::Off
            || !self.implicit_listen.is_empty()
            || self
                .listeners
                .iter()
                .any(|l| l.implicit || l.tls.is_some_and(|t| t != TlsMode::Off))
    }

    /// Every control listener: `listen` and `implicit_listen` with the global policies,
    /// then the `[[listener]]` blocks.
    pub fn all_listeners(&self) -> Vec<ListenerConfig> {
        let plain = self.listen.iter().map(|&a| ListenerConfig::new(a, false));
        let implicit = self
            .implicit_listen
            .iter()
            .map(|&a| ListenerConfig::new(a, true));
        plain
            .chain(implicit)
            .chain(self.listeners.iter().cloned())
            .collect()
    }

    /// The PROXY protocol policy of a listener.
    pub fn proxy_policy(&self, l: &ListenerConfig) -> ProxyPolicy {
        ProxyPolicy {
            mode: l.proxy_protocol.unwrap_or(self.proxy_protocol),
            trusted: l
                .proxy_trusted
                .clone()
                .unwrap_or_else(|| self.proxy_trusted.clone()),
        }
    }

    /// The root anonymous users see.
    pub fn anonymous_root(&self) -> &Path {
        self.anonymous_root.as_deref().unwrap_or(&self.root)
    }

    /// The configuration a virtual host runs with: these globals, with the host's own
    /// root, anonymous policy, banner, certificate and users.
    pub fn for_host(&self, h: &HostConfig) -> Config {
        let mut c = self.clone();
        c.hosts = Vec::new();
        if let Some(root) = &h.root {
            c.root = root.clone();
        }
        c.anonymous = Some(h.anonymous.unwrap_or(AnonymousMode::Off));
        c.anonymous_root = h.anonymous_root.clone().or_else(|| h.root.clone());
        c.anonymous_dirs = Vec::new();
        c.anonymous_permissions = None;
        c.anonymous_quota_bytes = h.anonymous_quota_bytes;
        c.anonymous_quota_files = h.anonymous_quota_files;
        if let Some(b) = &h.banner {
            c.banner = b.clone();
        }
        if h.tls_cert.is_some() {
            c.tls_cert = h.tls_cert.clone();
            c.tls_key = h.tls_key.clone();
        }
        c.users = h.users.clone();
        c.users_file = h.users_file.clone();
        c
    }

    /// The quota every anonymous login shares.
    pub fn anonymous_quota(&self) -> Quota {
        Quota {
            bytes: self.anonymous_quota_bytes,
            files: self.anonymous_quota_files,
        }
    }
}

/// A separate users file: `[[user]]` entries only, re-read on SIGHUP.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default, rename = "user")]
    users: Vec<UserConfig>,
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_embedded_default() {
        let c = Config::default();
        assert_eq!(c.listen, vec!["[::]:2121".parse().unwrap()]);
        assert_eq!(c.root, PathBuf::from("./ftp"));
        assert_eq!(c.anonymous_mode(), AnonymousMode::Read);
        assert!(c.validate().is_ok());
        // An empty file is the default too.
        assert_eq!(Config::from_toml("", "x").unwrap(), c);
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let err = Config::from_toml("anonymous = \"read\"\nbogus = 1\n", "w.toml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("w.toml:2:"), "{msg}");
        assert!(msg.contains("bogus"), "{msg}");
    }

    #[test]
    fn bad_value_says_what_is_allowed() {
        let err = Config::from_toml("anonymous = \"maybe\"\n", "w.toml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("w.toml:1:"), "{msg}");
        assert!(msg.contains("off") && msg.contains("upload"), "{msg}");
        let err = Config::from_toml("passive_ports = \"10-5\"\n", "w.toml").unwrap_err();
        assert!(err.to_string().contains("LOW-HIGH"), "{err}");
    }

    #[test]
    fn plaintext_password_refused() {
        let err =
            Config::from_toml("[[user]]\nname = \"a\"\npassword = \"pw\"\n", "w.toml").unwrap_err();
        assert!(err.to_string().contains("hash-password"), "{err}");
    }

    #[test]
    fn example_config_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("wharf.example.toml");
        let c = Config::load(&path).unwrap();
        assert_eq!(c.users.len(), 3);
        assert_eq!(c.storages[0].kind, StorageKind::S3);
        assert_eq!(
            c.passive_ports,
            Some(PortRange {
                low: 50000,
                high: 50999
            })
        );
    }

    #[test]
    fn warnings_for_a_short_token_and_trusting_everyone() {
        assert!(Config::default().warnings().is_empty());
        let c = Config::from_toml(
            "admin_token = \"0123456789abcdef\"\nproxy_trusted = [\"10.0.0.0/8\"]\n",
            "w.toml",
        )
        .unwrap();
        assert!(c.warnings().is_empty(), "{:?}", c.warnings());
        let c = Config::from_toml(
            "admin_token = \"short\"\nproxy_trusted = [\"10.0.0.0/8\", \"0.0.0.0/0\"]\n\
             [[listener]]\naddress = \"127.0.0.1:2121\"\nproxy_trusted = [\"::/0\"]\n\
             [[listener]]\naddress = \"127.0.0.1:2122\"\nproxy_trusted = [\"::1/128\"]\n",
            "w.toml",
        )
        .unwrap();
        let w = c.warnings();
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].contains("admin_token has 5 characters"), "{w:?}");
        assert!(
            !w[0].contains("short"),
            "the token itself is not shown: {w:?}"
        );
        assert!(w[1].starts_with("proxy_trusted 0.0.0.0/0"), "{w:?}");
        assert!(
            w[2].starts_with("listener 127.0.0.1:2121: proxy_trusted ::/0"),
            "{w:?}"
        );
    }

    #[test]
    fn port_range() {
        assert_eq!(
            "2000-2010".parse(),
            Ok(PortRange {
                low: 2000,
                high: 2010
            })
        );
        assert!("80-90".parse::<PortRange>().is_err());
        assert!("x".parse::<PortRange>().is_err());
    }
}

#[cfg(test)]
mod example_tests {
    use super::*;

    /// The example config mentions every key (set or commented out).
    #[test]
    fn example_shows_every_key() {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("wharf.example.toml"),
        )
        .unwrap();
        let full = Config {
            anonymous_root: Some("/x".into()),
            public_address: Some("127.0.0.1".parse().unwrap()),
            tls_cert: Some("/c".into()),
            tls_key: Some("/k".into()),
            tls_dir: Some("/d".into()),
            users_file: Some("/u".into()),
            log_file: Some("/l".into()),
            xferlog: Some("/x".into()),
            atomic_uploads: Some(true),
            upload_hook_url: Some("http://x".into()),
            upload_mode: Some(0o644),
            dir_mode: Some(0o755),
            umask: Some(0o22),
            upload_owner: Some("x".into()),
            upload_group: Some("x".into()),
            run_as: Some("x".into()),
            run_as_group: Some("x".into()),
            anonymous_permissions: Some(vec![]),
            deny_users: Some(vec![]),
            ..Config::default()
        };
        let storage = StorageConfig {
            path: Some("/p".into()),
            bucket: Some("b".into()),
            prefix: Some("p".into()),
            endpoint: Some("e".into()),
            region: Some("r".into()),
            credentials_file: Some("/c".into()),
            ..StorageConfig::default()
        };
        let cluster = ClusterConfig {
            database_url: Some("postgres://x".into()),
            node: Some("n".into()),
            ..Default::default()
        };
        let value = toml::Value::try_from(&full).unwrap();
        let storage = toml::Value::try_from(&storage).unwrap();
        let cluster = toml::Value::try_from(&cluster).unwrap();
        let mut missing = Vec::new();
        let keys = value.as_table().unwrap().keys();
        let keys = keys
            .chain(storage.as_table().unwrap().keys())
            .chain(cluster.as_table().unwrap().keys());
        for key in keys {
            if !text.contains(&format!("{key} ="))
                && !text.contains(&format!("[[{key}]]"))
                && !text.contains(&format!("[{key}]"))
            {
                missing.push(key.clone());
            }
        }
        assert!(missing.is_empty(), "wharf.example.toml lacks: {missing:?}");
    }
}
