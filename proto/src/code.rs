//! THE reply-code table: every reply wharf sends names its code here, by its use.
//!
//! Codes come from RFC 959 (section 4.2), RFC 1123, RFC 2428, RFC 3659 and RFC 4217.
//! Nothing else in wharf writes a numeric reply code.

/// A reply code, named by what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum Code {
    /// 150: file status okay; about to open data connection.
    OpeningData = 150,
    /// 200: command okay.
    Ok = 200,
    /// 202: command not implemented, superfluous at this site (ACCT, ALLO).
    Superfluous = 202,
    /// 211: system status, or FEAT.
    SystemStatus = 211,
    /// 212: directory status.
    DirectoryStatus = 212,
    /// 213: file status (SIZE, MDTM, MFMT, STAT with a path).
    FileStatus = 213,
    /// 214: help message.
    Help = 214,
    /// 215: system type (SYST).
    SystemType = 215,
    /// 220: service ready for new user (greeting, REIN, HOST).
    ServiceReady = 220,
    /// 221: service closing control connection (QUIT).
    Closing = 221,
    /// 226: closing data connection; transfer complete or aborted.
    ClosingData = 226,
    /// 227: entering passive mode (PASV).
    PassiveMode = 227,
    /// 229: entering extended passive mode (EPSV, RFC 2428).
    ExtendedPassiveMode = 229,
    /// 234: AUTH accepted; the TLS handshake follows (RFC 4217).
    AuthOk = 234,
    /// 230: user logged in.
    LoggedIn = 230,
    /// 250: requested file action okay, completed.
    FileActionOk = 250,
    /// 257: "PATHNAME" created, or the current directory (PWD).
    PathCreated = 257,
    /// 331: user name okay, need password.
    NeedPassword = 331,
    /// 350: requested file action pending further information (REST, RNFR).
    PendingFurtherInfo = 350,
    /// 421: service not available, closing control connection.
    ServiceNotAvailable = 421,
    /// 425: can't open data connection.
    CantOpenData = 425,
    /// 426: connection closed; transfer aborted.
    TransferAborted = 426,
    /// 450: file unavailable (busy).
    FileBusy = 450,
    /// 451: local error in processing.
    LocalError = 451,
    /// 452: insufficient storage space.
    InsufficientStorage = 452,
    /// 500: syntax error, command unrecognized (or line too long).
    SyntaxError = 500,
    /// 501: syntax error in parameters or arguments.
    ArgumentError = 501,
    /// 502: command not implemented.
    NotImplemented = 502,
    /// 503: bad sequence of commands.
    BadSequence = 503,
    /// 504: command not implemented for that parameter.
    ParameterNotImplemented = 504,
    /// 521: data connection cannot be opened with this PROT setting (RFC 4217).
    ProtRefused = 521,
    /// 522: network protocol not supported (EPRT/EPSV, RFC 2428).
    NetworkProtocolNotSupported = 522,
    /// 522 again: TLS negotiation on the data connection failed (RFC 4217 reuses the
    /// number). Its discriminant is only a placeholder; [`Code::number`] maps it.
    TlsDataFailed = 1522,
    /// 530: not logged in.
    NotLoggedIn = 530,
    /// 534: request denied for policy reasons (RFC 2228/4217), e.g. TLS required.
    PolicyDenied = 534,
    /// 536: requested PROT level not supported by mechanism (RFC 2228).
    ProtNotSupported = 536,
    /// 550: file unavailable (not found, no access, not a directory).
    FileUnavailable = 550,
    /// 552: requested file action aborted, exceeded storage allocation (a quota).
    StorageExceeded = 552,
    /// 553: file name not allowed.
    NameNotAllowed = 553,
    /// 554: invalid REST parameter (RFC 3659 section 5.4).
    InvalidRestart = 554,
}

impl Code {
    /// The three-digit number.
    pub fn number(self) -> u16 {
        match self {
            Code::TlsDataFailed => 522,
            other => other as u16,
        }
    }

    /// The three ASCII digits as sent on the wire.
    pub fn digits(self) -> [u8; 3] {
        let n = self.number();
        [
            b'0' + (n / 100) as u8,
            b'0' + (n / 10 % 10) as u8,
            b'0' + (n % 10) as u8,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits() {
        assert_eq!(&Code::NeedPassword.digits(), b"331");
        assert_eq!(&Code::ClosingData.digits(), b"226");
        assert_eq!(Code::InvalidRestart.number(), 554);
        assert_eq!(&Code::TlsDataFailed.digits(), b"522");
        assert_eq!(&Code::AuthOk.digits(), b"234");
    }
}
