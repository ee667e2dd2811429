//! Named bounds: every limit a peer can push against, in one place.
//!
//! Configurable timeouts live in [`crate::config::Config`]; the fixed caps are here.

/// The longest control line, CRLF excluded (re-exported from the protocol core).
pub const MAX_LINE: usize = wharf_proto::line::MAX_LINE;

/// Commands a client may pipeline while a transfer runs; more are refused.
pub const MAX_QUEUED_COMMANDS: usize = 16;

/// The buffer a transfer moves data through. One per running transfer, never per chunk;
/// idle sessions hold none.
pub const TRANSFER_BUFFER: usize = 256 * 1024;

/// How many unique-name candidates STOU and the drop box try before giving up.
pub const MAX_UNIQUE_TRIES: u32 = 1000;

/// Files bigger than this are not scanned to compute a TYPE A SIZE (550 instead).
pub const MAX_ASCII_SIZE_SCAN: u64 = 64 * 1024 * 1024;

/// Control-connection read buffer.
pub const CONTROL_READ_BUFFER: usize = 4096;

/// Seconds the greeting may wait for a client that sends nothing before logging in.
pub const LOGIN_TIMEOUT_SECS: u64 = 120;
