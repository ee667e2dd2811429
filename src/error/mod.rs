//! Runtime errors and THE mapping from every failure to a reply: file and storage errors
//! ([`Error::reply`]), transfers ([`TransferError::reply`]), unparsable lines
//! ([`parse_failure`]), refusals by limits, bans or the cluster ([`refused`]); fixed
//! replies are named in [`replies`].
//!
//! No Rust debug text and no server path ever reaches the wire.

use std::io;

use wharf_proto::{Code, ParseError, Reply};

pub mod replies;
mod transfer;

pub use transfer::{DataError, TransferError};

/// What went wrong with a file operation, in the terms the reply table needs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no such file or directory")]
    NotFound,
    /// The login's permission set does not allow it.
    #[error("permission denied by policy")]
    Denied,
    /// The filesystem refused (EACCES, EPERM, or a path that would leave the root).
    #[error("access denied")]
    Access,
    #[error("already exists")]
    Exists,
    #[error("not a directory")]
    NotADirectory,
    #[error("is a directory")]
    IsADirectory,
    #[error("directory not empty")]
    NotEmpty,
    /// NUL byte, over-long path or name, or a name that cannot be created.
    #[error("name not allowed")]
    InvalidName,
    /// SITE CHMOD with bits beyond rwx (setuid, setgid, or sticky on a file).
    #[error("mode not allowed")]
    ModeNotAllowed,
    /// A FIFO, device or socket: never opened for a transfer.
    #[error("not a regular file")]
    NotRegular,
    #[error("no space left")]
    NoSpace,
    /// The object store failed or did not answer in time, after the retries.
    #[error("object storage unavailable")]
    Storage,
    /// The object store answered with a reply wharf cannot read (logged with its cause).
    #[error("unreadable object storage reply")]
    StorageReply,
    /// The storage cannot do this (SITE CHMOD on an S3 root).
    #[error("not supported by this storage")]
    Unsupported,
    /// Another session, on this node or another, is uploading this name.
    #[error("name being uploaded elsewhere")]
    Busy,
    /// The cluster's shared state (PostgreSQL) did not answer.
    #[error("shared state unavailable")]
    SharedState,
    /// REST + STOR at an offset an interrupted upload cannot go on from.
    #[error("resume possible only at offset {0}")]
    ResumeAt(u64),
    /// The login's quota (bytes or files) would be exceeded.
    #[error("quota exceeded")]
    OverQuota,
    #[error("io error: {0}")]
    Io(io::Error),
}

/// What kind of request failed: the RFC lists different codes per command family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// STOR, STOU, APPE, RNTO: RFC 959 uses 553 for refused names.
    Store,
    /// STAT with a path: RFC 959 lists 450, not 550, among its replies.
    Status,
    /// Everything else: RETR, LIST, CWD, MKD, DELE, SIZE, …
    Other,
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        match e.raw_os_error() {
            Some(libc_errno::ENOENT) => return Error::NotFound,
            Some(libc_errno::EACCES | libc_errno::EPERM | libc_errno::EROFS) => {
                return Error::Access;
            }
            Some(libc_errno::EEXIST) => return Error::Exists,
            Some(libc_errno::ENOTDIR) => return Error::NotADirectory,
            Some(libc_errno::EISDIR) => return Error::IsADirectory,
            Some(libc_errno::ENOTEMPTY) => return Error::NotEmpty,
            Some(libc_errno::ENAMETOOLONG | libc_errno::EINVAL | libc_errno::EILSEQ) => {
                return Error::InvalidName;
            }
            Some(libc_errno::ENOSPC | libc_errno::EDQUOT) => return Error::NoSpace,
            Some(libc_errno::ELOOP | libc_errno::EXDEV) => return Error::Access,
            // A FIFO with no reader, or a device without its driver.
            Some(libc_errno::ENXIO | libc_errno::ENODEV) => return Error::NotRegular,
            _ => {}
        }
        match e.kind() {
            io::ErrorKind::NotFound => Error::NotFound,
            io::ErrorKind::PermissionDenied => Error::Access,
            io::ErrorKind::AlreadyExists => Error::Exists,
            _ => Error::Io(e),
        }
    }
}

/// Linux errno values the mapping needs (stable ABI numbers; no libc dependency for six
/// constants).
mod libc_errno {
    pub const EPERM: i32 = 1;
    pub const ENXIO: i32 = 6;
    pub const ENODEV: i32 = 19;
    pub const ENOENT: i32 = 2;
    pub const EACCES: i32 = 13;
    pub const EEXIST: i32 = 17;
    pub const EXDEV: i32 = 18;
    pub const ENOTDIR: i32 = 20;
    pub const EISDIR: i32 = 21;
    pub const EINVAL: i32 = 22;
    pub const ENOSPC: i32 = 28;
    pub const EROFS: i32 = 30;
    pub const ENAMETOOLONG: i32 = 36;
    pub const ENOTEMPTY: i32 = 39;
    pub const ELOOP: i32 = 40;
    pub const EILSEQ: i32 = 84;
    pub const EDQUOT: i32 = 122;
}

impl Error {
    /// THE mapping from an error to a reply.
    pub fn reply(&self, op: Op) -> Reply {
        let refuse = match op {
            Op::Store => Code::NameNotAllowed,
            Op::Status => Code::FileBusy,
            Op::Other => Code::FileUnavailable,
        };
        if let Error::ResumeAt(at) = self {
            return Reply::new(
                Code::InvalidRestart,
                format!("Resume is possible only at offset {at}; send REST {at}."),
            );
        }
        let (code, text) = match self {
            Error::NotFound => (refuse, "No such file or directory."),
            Error::Denied | Error::Access => (refuse, "Permission denied."),
            Error::Exists => (refuse, "File exists."),
            Error::NotADirectory => (refuse, "Not a directory."),
            Error::IsADirectory => (refuse, "Is a directory."),
            Error::NotEmpty => (Code::FileUnavailable, "Directory not empty."),
            Error::InvalidName => (Code::NameNotAllowed, "File name not allowed."),
            Error::ModeNotAllowed => (
                Code::FileUnavailable,
                "Mode not allowed: only rwx bits (and sticky on directories) can be set.",
            ),
            Error::NotRegular => (refuse, "Not a regular file."),
            Error::NoSpace => (Code::InsufficientStorage, "Insufficient storage space."),
            Error::Storage => (
                Code::LocalError,
                "Storage unavailable or too slow; try again later.",
            ),
            Error::StorageReply => (
                Code::LocalError,
                "Local error in processing: unreadable reply from the storage.",
            ),
            Error::Unsupported => (Code::FileUnavailable, "Not supported by this storage."),
            Error::Busy => (
                Code::FileBusy,
                "File busy: another upload of this name is in progress.",
            ),
            Error::OverQuota => (
                Code::StorageExceeded,
                "Exceeded storage allocation (quota); SITE QUOTA shows it.",
            ),
            Error::SharedState => (
                Code::LocalError,
                "Shared state unavailable; try again later.",
            ),
            Error::ResumeAt(_) | Error::Io(_) => (Code::LocalError, "Local error in processing."),
        };
        Reply::new(code, text)
    }
}

/// The reply to a line that is not a command wharf can act on; `None` for an empty line,
/// which gets no reply (vsftpd and ProFTPD do the same, for NATs' keepalives).
pub fn parse_failure(e: &ParseError) -> Option<Reply> {
    Some(match e {
        ParseError::Empty => return None,
        ParseError::Unknown(_) => replies::UNKNOWN_COMMAND.reply(),
        ParseError::NotImplemented(why) => Reply::new(
            Code::NotImplemented,
            format!("Command not implemented; {why}."),
        ),
        ParseError::BadArgument(why) => Reply::new(
            Code::ArgumentError,
            format!("Syntax error in arguments: {why}."),
        ),
        ParseError::Unsupported(why) => {
            Reply::new(Code::ParameterNotImplemented, format!("{why}."))
        }
        ParseError::UnsupportedFamily => Reply::new(
            Code::NetworkProtocolNotSupported,
            "Network protocol not supported, use (1,2)",
        ),
    })
}

/// A refusal that closes the connection (421): a session limit, a full password queue,
/// the cluster's limits; the text says which.
pub fn refused(text: impl Into<Vec<u8>>) -> Reply {
    Reply::new(Code::ServiceNotAvailable, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping() {
        assert_eq!(
            Error::NotFound.reply(Op::Other).code(),
            Code::FileUnavailable
        );
        assert_eq!(Error::Denied.reply(Op::Store).code(), Code::NameNotAllowed);
        assert_eq!(
            Error::NoSpace.reply(Op::Store).code(),
            Code::InsufficientStorage
        );
        let e: Error = io::Error::from_raw_os_error(2).into();
        assert!(matches!(e, Error::NotFound));
        let e: Error = io::Error::new(io::ErrorKind::PermissionDenied, "a path led outside").into();
        assert!(matches!(e, Error::Access));
        let r = Error::Io(io::Error::other("/secret/path broke")).reply(Op::Other);
        assert!(!String::from_utf8_lossy(&r.to_bytes()).contains("secret"));
    }
}
