//! Every reply whose text never changes, by name: handlers answer with these, so one text
//! has one place and a test can name the reply it expects.

use wharf_proto::{Code, Reply};

/// A fixed reply: its code and text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fixed(pub Code, pub &'static str);

impl Fixed {
    pub fn reply(self) -> Reply {
        Reply::new(self.0, self.1)
    }
}

pub const HELP_UNKNOWN: Fixed = Fixed(Code::ArgumentError, "Unknown command.");
pub const MLSD_NOT_A_DIRECTORY: Fixed = Fixed(Code::ArgumentError, "Not a directory; use MLST.");
pub const ALREADY_LOGGED_IN: Fixed = Fixed(Code::BadSequence, "Already logged in.");
pub const AUTH_TLS_FIRST: Fixed = Fixed(Code::BadSequence, "Use AUTH TLS first.");
pub const EPSV_ALL_IN_EFFECT: Fixed = Fixed(Code::BadSequence, "EPSV ALL in effect; use EPSV.");
pub const HOST_BEFORE_USER: Fixed = Fixed(Code::BadSequence, "HOST must come before USER.");
pub const UNKNOWN_HOST: Fixed = Fixed(Code::ParameterNotImplemented, "Unknown host.");
pub const HOST_NOT_TLS_NAME: Fixed = Fixed(
    Code::ParameterNotImplemented,
    "Host differs from the name given at the TLS handshake.",
);
pub const PBSZ_FIRST: Fixed = Fixed(Code::BadSequence, "Send PBSZ 0 before PROT.");
pub const RNFR_FIRST: Fixed = Fixed(Code::BadSequence, "RNFR required first.");
pub const TLS_ALREADY_ACTIVE: Fixed = Fixed(Code::BadSequence, "TLS is already active.");
pub const USER_FIRST: Fixed = Fixed(Code::BadSequence, "Login with USER first.");
pub const NO_PASSIVE_PORT: Fixed =
    Fixed(Code::CantOpenData, "Cannot open a passive port; try again.");
pub const GOODBYE: Fixed = Fixed(Code::Closing, "Goodbye.");
pub const ABORTED: Fixed = Fixed(Code::ClosingData, "ABOR successful.");
pub const LISTING_SENT: Fixed = Fixed(Code::ClosingData, "Directory send OK.");
pub const NO_TRANSFER_TO_ABORT: Fixed = Fixed(Code::ClosingData, "No transfer to abort.");
pub const TRANSFER_COMPLETE: Fixed = Fixed(Code::ClosingData, "Transfer complete.");
pub const DELETED: Fixed = Fixed(Code::FileActionOk, "File deleted.");
pub const DIRECTORY_CHANGED: Fixed = Fixed(Code::FileActionOk, "Directory successfully changed.");
pub const DIRECTORY_REMOVED: Fixed = Fixed(Code::FileActionOk, "Directory removed.");
pub const RENAMED: Fixed = Fixed(Code::FileActionOk, "Rename successful.");
pub const NOT_A_REGULAR_FILE: Fixed = Fixed(Code::FileUnavailable, "Not a regular file.");
pub const LOCAL_ERROR: Fixed = Fixed(Code::LocalError, "Local error in processing.");
pub const LOGGED_IN: Fixed = Fixed(Code::LoggedIn, "Login successful.");
pub const LOGIN_FIRST: Fixed = Fixed(Code::NotLoggedIn, "Please login with USER and PASS.");
pub const LOGIN_INCORRECT: Fixed = Fixed(Code::NotLoggedIn, "Login incorrect.");
pub const CHMOD_OK: Fixed = Fixed(Code::Ok, "SITE CHMOD command ok.");
pub const EPSV_ALL_OK: Fixed = Fixed(Code::Ok, "EPSV ALL ok.");
pub const MLST_OPTS_NONE: Fixed = Fixed(Code::Ok, "MLST OPTS");
pub const MODE_STREAM: Fixed = Fixed(Code::Ok, "Mode set to S.");
pub const MTIME_SET: Fixed = Fixed(Code::Ok, "Modification time set.");
pub const NOOP_OK: Fixed = Fixed(Code::Ok, "NOOP ok.");
pub const NOTED: Fixed = Fixed(Code::Ok, "Noted.");
pub const PBSZ_ZERO: Fixed = Fixed(Code::Ok, "PBSZ=0");
pub const PORT_OK: Fixed = Fixed(Code::Ok, "PORT command successful.");
pub const PROT_CLEAR: Fixed = Fixed(Code::Ok, "Protection level set to Clear.");
pub const PROT_PRIVATE: Fixed = Fixed(Code::Ok, "Protection level set to Private.");
pub const STRUCTURE_FILE: Fixed = Fixed(Code::Ok, "Structure set to F.");
pub const TYPE_ASCII: Fixed = Fixed(Code::Ok, "Type set to A.");
pub const TYPE_IMAGE: Fixed = Fixed(Code::Ok, "Type set to I.");
pub const UTF8_ALWAYS_ON: Fixed = Fixed(Code::Ok, "UTF8 mode is always on.");
pub const LISTING_FOLLOWS: Fixed = Fixed(Code::OpeningData, "Here comes the directory listing.");
pub const SEND_DATA: Fixed = Fixed(Code::OpeningData, "Ok to send data.");
pub const PROT_LEVELS: Fixed = Fixed(Code::ParameterNotImplemented, "PROT takes C or P.");
pub const READY_FOR_RNTO: Fixed = Fixed(Code::PendingFurtherInfo, "Ready for RNTO.");
pub const HOST_ACCEPTED: Fixed = Fixed(Code::ServiceReady, "Host accepted.");
pub const REINITIALIZED: Fixed = Fixed(Code::ServiceReady, "Service ready for new user.");
pub const ALLO_NOT_NEEDED: Fixed = Fixed(Code::Superfluous, "ALLO not needed.");
pub const NO_ACCOUNT_NEEDED: Fixed = Fixed(Code::Superfluous, "No account needed.");
pub const LINE_TOO_LONG: Fixed = Fixed(Code::SyntaxError, "Command line too long.");
pub const UNKNOWN_COMMAND: Fixed = Fixed(Code::SyntaxError, "Unknown command.");
pub const SYSTEM_TYPE: Fixed = Fixed(Code::SystemType, "UNIX Type: L8");
pub const PASV_NEEDS_IPV4: Fixed = Fixed(
    Code::ArgumentError,
    "PASV is for IPv4; use EPSV on IPv6 connections.",
);
pub const AUTH_TLS_OK: Fixed = Fixed(
    Code::AuthOk,
    "AUTH TLS successful; start the TLS handshake.",
);
pub const NOT_ENCRYPTED: Fixed = Fixed(
    Code::BadSequence,
    "The control connection is not encrypted.",
);
pub const NO_DATA_CONNECTION: Fixed =
    Fixed(Code::CantOpenData, "Use PASV, EPSV, PORT or EPRT first.");
pub const TOO_MANY_PASSIVE_PORTS: Fixed = Fixed(
    Code::CantOpenData,
    "Too many passive ports held by your address; try again later.",
);
pub const ASCII_SIZE_TOO_LARGE: Fixed = Fixed(
    Code::FileUnavailable,
    "SIZE in TYPE A is not offered for files this large; use TYPE I.",
);
pub const RESUME_NEEDS_IMAGE: Fixed =
    Fixed(Code::InvalidRestart, "Resuming an upload needs TYPE I.");
pub const TLS_OFF: Fixed = Fixed(Code::NotImplemented, "TLS is not enabled on this server.");
pub const TLS_OFF_HERE: Fixed = Fixed(
    Code::NotImplemented,
    "AUTH TLS is not enabled on this listener.",
);
pub const PORT_REFUSED: Fixed = Fixed(
    Code::ParameterNotImplemented,
    "Refused: data connections go only to your own address, on port 1024 or above.",
);
pub const UNKNOWN_MECHANISM: Fixed = Fixed(
    Code::ParameterNotImplemented,
    "Unknown security mechanism; use AUTH TLS.",
);
pub const CCC_REFUSED: Fixed = Fixed(
    Code::PolicyDenied,
    "CCC refused: the control connection stays encrypted.",
);
pub const TLS_REQUIRED: Fixed = Fixed(
    Code::PolicyDenied,
    "TLS required: send AUTH TLS first (tls = \"required\").",
);
pub const PROT_UNSUPPORTED: Fixed = Fixed(
    Code::ProtNotSupported,
    "Only PROT C and PROT P are supported.",
);
pub const DATA_TLS_REQUIRED: Fixed = Fixed(
    Code::ProtRefused,
    "Data connections must be encrypted: send PBSZ 0 and PROT P (tls_data = \"required\").",
);
pub const IDLE_TIMEOUT: Fixed = Fixed(
    Code::ServiceNotAvailable,
    "Idle timeout; closing control connection.",
);
pub const KICKED: Fixed = Fixed(
    Code::ServiceNotAvailable,
    "Disconnected by the administrator.",
);
pub const OUT_OF_RESOURCES: Fixed = Fixed(
    Code::ServiceNotAvailable,
    "Server busy (out of resources); try again later.",
);
pub const SHARED_STATE_DOWN: Fixed = Fixed(
    Code::ServiceNotAvailable,
    "Service unavailable: shared state unreachable; try again later.",
);
pub const SHUTTING_DOWN: Fixed = Fixed(
    Code::ServiceNotAvailable,
    "Server shutting down; please reconnect later.",
);
pub const TOO_MANY_PASSWORD_CHECKS: Fixed = Fixed(
    Code::ServiceNotAvailable,
    "Too many logins being checked; try again shortly.",
);
pub const TOO_MANY_QUEUED: Fixed = Fixed(
    Code::ServiceNotAvailable,
    "Too many commands queued during a transfer; closing.",
);
pub const CONNECTION_CLOSED_ABORTED: Fixed = Fixed(
    Code::TransferAborted,
    "Connection closed; transfer aborted.",
);
pub const SHUTDOWN_ABORTED_TRANSFER: Fixed = Fixed(
    Code::TransferAborted,
    "Server shutting down; transfer aborted.",
);

/// An address banned for failed logins: told at connect and at its next command.
pub const BANNED: Fixed = Fixed(
    Code::ServiceNotAvailable,
    "Too many failed logins; your address is banned for a while.",
);
