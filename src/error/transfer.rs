//! How a transfer fails, and the reply that ends it.

use std::io;
use std::time::Duration;

use wharf_proto::{Code, Reply};

use super::{Error, Op};

/// Why a data connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("the client did not connect in time")]
    Timeout,
    #[error("cannot connect: {0}")]
    Connect(io::Error),
    #[error("TLS handshake on the data connection failed: {0}")]
    Tls(io::Error),
    #[error("the data connection did not resume the control connection's TLS session")]
    NotResumed,
}

/// How a transfer ended.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("{0}")]
    Data(#[from] DataError),
    #[error("no progress for {0:?}")]
    Stalled(Duration),
    #[error("data connection lost: {0}")]
    Network(std::io::Error),
    #[error("file error: {0}")]
    File(Error),
    /// The session asked the transfer to stop (ABOR, kick, shutdown).
    #[error("cancelled")]
    Cancelled,
}

impl TransferError {
    /// The reply that ends a failed transfer (the mapping of the error table for transfers).
    pub fn reply(&self, upload: bool) -> Reply {
        let (code, text) = match self {
            TransferError::Data(DataError::Timeout | DataError::Connect(_)) => {
                (Code::CantOpenData, "Can't open data connection.")
            }
            TransferError::Data(DataError::Tls(_)) => (
                Code::TlsDataFailed,
                "TLS negotiation on the data connection failed.",
            ),
            TransferError::Data(DataError::NotResumed) => (
                Code::CantOpenData,
                "Data connection refused: it must resume a TLS session of this login (tls_data_reuse = \"require\").",
            ),
            TransferError::Stalled(_) => (
                Code::TransferAborted,
                "Transfer aborted: no progress on the data connection.",
            ),
            TransferError::Network(_) | TransferError::Cancelled => (
                Code::TransferAborted,
                "Connection closed; transfer aborted.",
            ),
            TransferError::File(e) if upload => return e.reply(Op::Store),
            // A storage failure reads the same whatever the command (RETR, LIST, SIZE, …).
            TransferError::File(e @ (Error::Storage | Error::StorageReply)) => {
                return e.reply(Op::Other);
            }
            TransferError::File(_) => (Code::LocalError, "Local error reading the file."),
        };
        Reply::new(code, text)
    }
}
