//! The small value types of the configuration: modes, policies, permissions, directory
//! rules and port ranges, each with how it is written in TOML and on the command line.

use std::fmt;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize};

/// What anonymous users (`anonymous` or `ftp`) may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AnonymousMode {
    /// No anonymous login.
    Off,
    /// List and download.
    #[default]
    Read,
    /// The drop box: store new files and make directories; no list, download, overwrite,
    /// delete or rename.
    Upload,
    /// Everything a full user may do.
    Write,
}

impl FromStr for AnonymousMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(Self::Off),
            "read" => Ok(Self::Read),
            "upload" => Ok(Self::Upload),
            "write" => Ok(Self::Write),
            _ => Err(format!("`{s}` is not one of off, read, upload, write")),
        }
    }
}

impl fmt::Display for AnonymousMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Off => "off",
            Self::Read => "read",
            Self::Upload => "upload",
            Self::Write => "write",
        })
    }
}

/// What a drop-box upload does when the name is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Collision {
    /// Refuse with 553; the existing file stays.
    #[default]
    Refuse,
    /// Store under a new name (`name.1`, `name.2`, …) and say so in the 226 reply.
    Unique,
}

/// What happens to the data of an atomic upload that fails or is aborted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FailedUploads {
    /// Removed: nothing appears under the final name.
    #[default]
    Delete,
    /// Stored under the final name as far as it got, so the client can resume with REST.
    Keep,
}

/// When plain TYPE I downloads use sendfile(2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Sendfile {
    /// Wherever the kernel can sendfile the file (the same as `Always` since sendfile runs
    /// on a thread of its own, which measured best on loopback and veth alike).
    #[default]
    Auto,
    Always,
    Never,
}

/// Event log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err(format!("`{s}` is not one of text, json")),
        }
    }
}

/// TLS on the control connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// No AUTH TLS (implicit listeners still work when configured).
    #[default]
    Off,
    /// AUTH TLS offered; plain logins allowed.
    Optional,
    /// Logins only after AUTH TLS (or on an implicit listener).
    Required,
}

/// TLS on data connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TlsData {
    /// PROT C and PROT P both allowed.
    #[default]
    Optional,
    /// Transfers need PROT P.
    Required,
}

/// Whether a data connection must resume the control connection's TLS session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TlsReuse {
    /// Not checked.
    Off,
    /// Checked and written on the transfer log line.
    #[default]
    Log,
    /// A data connection that did not resume is refused (locks out clients that cannot
    /// resume, such as Python ftplib and Java's Commons Net).
    Require,
}

/// A permission name in a `permissions` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// `list` + `read`.
    Read,
    /// Every permission below except `list` and `read`.
    Write,
    /// LIST, NLST, MLSD, MLST, STAT with a path, SIZE, MDTM.
    List,
    /// RETR (download).
    Download,
    /// STOR/STOU of a new file.
    Upload,
    /// STOR over an existing file.
    Overwrite,
    /// APPE.
    Append,
    /// REST before STOR.
    Resume,
    Mkdir,
    /// RNFR/RNTO.
    Rename,
    /// DELE.
    Delete,
    Rmdir,
    /// SITE CHMOD.
    Chmod,
    /// MFMT, SITE UTIME, MDTM with a time.
    Mtime,
}

/// Permissions that replace the user's own below one directory (`[[user.dir]]`,
/// `[[anonymous_dir]]`). The longest matching path wins.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DirRule {
    /// A virtual path inside the root, like `/incoming`.
    pub path: String,
    pub permissions: Vec<Permission>,
}

/// An inclusive passive port range, written `LOW-HIGH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub low: u16,
    pub high: u16,
}

impl FromStr for PortRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            || format!("`{s}` is not a port range LOW-HIGH with 1024 <= LOW <= HIGH <= 65535");
        let (l, h) = s.split_once('-').ok_or_else(bad)?;
        let low: u16 = l.trim().parse().map_err(|_| bad())?;
        let high: u16 = h.trim().parse().map_err(|_| bad())?;
        if low < 1024 || low > high {
            return Err(bad());
        }
        Ok(PortRange { low, high })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.low, self.high)
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for PortRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// A host given by address or by name (`ftp.example.com`), resolved when the
/// configuration is loaded and on reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAddr(String);

impl HostAddr {
    /// Its IPv4 address (PASV can announce no other): the address itself, or the first
    /// IPv4 address the name resolves to.
    pub fn resolve_v4(&self) -> Result<std::net::Ipv4Addr, String> {
        use std::net::ToSocketAddrs;
        if let Ok(ip) = self.0.parse::<std::net::IpAddr>() {
            return match ip.to_canonical() {
                std::net::IpAddr::V4(v4) => Ok(v4),
                std::net::IpAddr::V6(_) => Err(format!(
                    "`{}` is IPv6; PASV announces IPv4 (EPSV needs no address)",
                    self.0
                )),
            };
        }
        let found = (self.0.as_str(), 0)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve `{}`: {e}", self.0))?;
        found
            .filter_map(|a| match a.ip().to_canonical() {
                std::net::IpAddr::V4(v4) => Some(v4),
                std::net::IpAddr::V6(_) => None,
            })
            .next()
            .ok_or_else(|| format!("`{}` has no IPv4 address", self.0))
    }
}

impl FromStr for HostAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let name_ok = !s.is_empty()
            && s.len() <= 253
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if s.parse::<std::net::IpAddr>().is_ok() || name_ok {
            Ok(HostAddr(s.to_string()))
        } else {
            Err(format!(
                "`{s}` is neither an IP address nor a host name (no port, no brackets)"
            ))
        }
    }
}

impl fmt::Display for HostAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for HostAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for HostAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// `[[passive_address]]`: what PASV announces to clients of one network.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PassiveAddress {
    pub network: IpNet,
    pub address: HostAddr,
}

/// `[cluster]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// `postgres://user:password@host:port/database`; never logged.
    pub database_url: Option<String>,
    /// This node's name in the registry (unset: the host name).
    pub node: Option<String>,
    /// Seconds between heartbeats, and after which a silent node counts as dead.
    pub heartbeat: u64,
    pub node_timeout: u64,
    /// Logins while the database is unreachable: `refuse` (421), or `local` (allowed, with
    /// this node's own limits and no upload locks).
    pub when_unavailable: Unavailable,
    /// Database connections this node keeps at most (each upload holds one for its lock).
    pub pool_size: usize,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            database_url: None,
            node: None,
            heartbeat: 2,
            node_timeout: 10,
            when_unavailable: Unavailable::Local,
            pool_size: 64,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Unavailable {
    Refuse,
    #[default]
    Local,
}

/// Which PROXY header a listener requires.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ProxyProtocol {
    /// No header: the TCP peer is the client.
    #[default]
    Off,
    V1,
    V2,
    /// Either version.
    Any,
}

/// A listener's PROXY policy: which header, and from which balancers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProxyPolicy {
    pub mode: ProxyProtocol,
    /// Sources allowed to send a header (an empty list trusts nobody).
    pub trusted: Vec<IpNet>,
}

/// What a login's root may hold (`quota_bytes`, `quota_files`); `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quota {
    pub bytes: Option<u64>,
    pub files: Option<u64>,
}

impl Quota {
    /// Whether any limit is set.
    pub fn is_set(&self) -> bool {
        self.bytes.is_some() || self.files.is_some()
    }
}
