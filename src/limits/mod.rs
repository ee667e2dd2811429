//! Named bounds: every limit a peer can push against, in one place — the fixed caps and
//! times, the session admission counters (`sessions`), password checks (`passwords`), the
//! failed-login bookkeeping behind delays and bans (`bans`) and bandwidth (`bandwidth`).
//!
//! Configurable values live in [`crate::config::Config`]; every fixed duration wharf
//! waits is named here. Counters sit behind short-lived mutexes never held across IO.

use std::time::Duration;

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

/// Verified credentials remembered at most (`auth::CredentialCache`); past it the expired
/// go, then all.
pub const MAX_CACHED_CREDENTIALS: usize = 10_000;

/// Event-log lines queued for the log thread at most (~3 MB); past it sessions wait.
pub const LOG_QUEUE_LINES: usize = 16_384;

/// The longest delay after a failed login.
pub const MAX_LOGIN_DELAY: Duration = Duration::from_secs(5);

/// Password checks (argon2id, ~19 MiB and ~20 ms of a core each) waiting at most, on
/// top of the one per core that run; more get 421 at once rather than memory and threads.
pub const MAX_QUEUED_PASSWORD_CHECKS: usize = 1024;

/// Password checks one client address may have waiting: a quarter of the queue, so a
/// flood from one address never fills it for everyone (a NAT'd fleet logging in at once
/// still fits).
pub const QUEUED_PASSWORD_CHECKS_PER_ADDRESS: usize = MAX_QUEUED_PASSWORD_CHECKS / 4;

mod bandwidth;
mod bans;
mod passwords;
mod sessions;

pub use bandwidth::{Bucket, Buckets};
pub use bans::{Ban, BanPolicy, Guard};
pub use passwords::{Busy, PasswordChecks, Turn};
pub use sessions::{Refusal, SessionSlot, Sessions};

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

// Fixed times. Everything a client or an operator may want to change is in the config.

/// A PROXY protocol header must arrive this soon after the connection opens.
pub const PROXY_HEADER_WITHIN: Duration = Duration::from_secs(5);

/// A refusal (421 at admission) is written within this, or dropped.
pub const REFUSAL_WRITE_WITHIN: Duration = Duration::from_secs(5);

/// A closing session's TLS close_notify and TCP shutdown, at most.
pub const CONTROL_CLOSE_WITHIN: Duration = Duration::from_secs(2);

/// An aborted upload may write out what it received (bounded) within this.
pub const UPLOAD_STOP_WITHIN: Duration = Duration::from_secs(2);

/// After accept fails for lack of descriptors: wait before the next try, and warn at most
/// this often.
pub const ACCEPT_RETRY_AFTER: Duration = Duration::from_millis(20);
pub const ACCEPT_WARN_EVERY: Duration = Duration::from_secs(1);

/// After the shutdown grace, sessions and background tasks get this long to end.
pub const STOP_WITHIN: Duration = Duration::from_secs(5);

/// How often interrupted S3 uploads nobody resumed are looked for.
pub const JANITOR_EVERY: Duration = Duration::from_secs(3600);

/// Cluster: one PostgreSQL operation, joining at start, and polling the shared bans.
pub const CLUSTER_OP_WITHIN: Duration = Duration::from_secs(2);
pub const CLUSTER_JOIN_WITHIN: Duration = Duration::from_secs(10);
pub const CLUSTER_BAN_POLL: Duration = Duration::from_millis(500);

/// S3: how long a presigned multipart request stays valid; the first retry's wait (each
/// next one twice as long, up to `S3_MAX_BACKOFF`, plus jitter); connecting to the
/// endpoint; keeping an idle connection for the next request.
pub const S3_SIGNED_FOR: Duration = Duration::from_secs(3600);
pub const S3_FIRST_BACKOFF: Duration = Duration::from_millis(100);
pub const S3_MAX_BACKOFF: Duration = Duration::from_secs(5);
pub const S3_CONNECT_WITHIN: Duration = Duration::from_secs(5);
pub const S3_POOL_IDLE: Duration = Duration::from_secs(30);

/// The `wharf who|kick|ban|reload` commands wait this long for the admin endpoint.
pub const ADMIN_CLIENT_WITHIN: Duration = Duration::from_secs(10);
