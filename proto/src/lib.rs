//! wharf-proto: FTP as bytes and values. Framing, commands, the reply-code table, reply
//! encoding and listing formats. No IO and no async runtime: everything here is pure and
//! unit-tested byte for byte, and fuzzed.

pub mod ascii;
pub mod code;
pub mod command;
pub mod glob;
pub mod line;
pub mod listing;
pub mod reply;
pub mod verbs;

pub use code::Code;
pub use command::{Command, ParseError};
pub use line::{Frame, LineFramer};
pub use reply::Reply;
