//! Commands as typed values, parsed from one control line (no IO).
//!
//! Owns the commands (RFC 959, 2228, 2389, 2428, 3659, 2640, 7151 and the common
//! extensions clients send), argument syntax, and the errors a malformed line yields;
//! which verb parses how is [`crate::verbs`]' table.
//! Pathnames stay bytes: non-UTF-8 names survive untouched.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// A pathname exactly as the client sent it.
pub type PathArg = Vec<u8>;

/// A password; its Debug and Display never show the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(Vec<u8>);

impl Password {
    pub fn new(bytes: Vec<u8>) -> Password {
        Password(bytes)
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(****)")
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// TYPE: the representation type (RFC 959 section 3.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferType {
    /// `A` or `A N`: ASCII, line endings converted.
    Ascii,
    /// `I` or `L 8`: bytes as they are.
    Image,
}

/// LIST/NLST arguments: `ls`-style flags (tolerated, mostly ignored) and a path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListArgs {
    /// Flag letters collected from leading `-xyz` words.
    pub flags: Vec<u8>,
    pub path: Option<PathArg>,
}

impl ListArgs {
    /// Whether `-a` (or `-A`) asked for dot files. wharf lists them always; kept for logs.
    pub fn all(&self) -> bool {
        self.flags.iter().any(|f| *f == b'a' || *f == b'A')
    }
}

/// EPSV argument (RFC 2428 section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpsvArg {
    /// No argument: the control connection's protocol.
    Any,
    /// `1` (IPv4) or `2` (IPv6).
    Family(u8),
    /// `ALL`: only EPSV may set up data connections from now on.
    All,
}

/// OPTS subjects wharf understands (RFC 2389, RFC 2640, RFC 3659).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opts {
    /// `OPTS UTF8 ON|OFF`.
    Utf8(bool),
    /// `OPTS MLST fact;fact;` with the requested fact names, lower-cased.
    Mlst(Vec<Vec<u8>>),
}

/// SITE subcommands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Site {
    Help,
    /// `SITE QUOTA`: the login's usage and limits.
    Quota,
    /// `SITE CHMOD <octal> <path>`.
    Chmod {
        mode: u32,
        path: PathArg,
    },
    /// `SITE UTIME <time> <path>` or `SITE UTIME <path> <atime> <mtime> <ctime> UTC`.
    Utime {
        mtime: OffsetDateTime,
        path: PathArg,
    },
}

/// One parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    User(Vec<u8>),
    Pass(Password),
    Acct,
    Rein,
    Cwd(PathArg),
    Cdup,
    Pwd,
    List(ListArgs),
    Nlst(ListArgs),
    Mlsd(Option<PathArg>),
    Mlst(Option<PathArg>),
    Retr(PathArg),
    Stor(PathArg),
    /// STOU takes no argument in RFC 959; some clients send a name hint.
    Stou(Option<PathArg>),
    Appe(PathArg),
    Rest(u64),
    Dele(PathArg),
    Rmd(PathArg),
    Mkd(PathArg),
    Rnfr(PathArg),
    Rnto(PathArg),
    Abor,
    Quit,
    Syst,
    Stat(Option<PathArg>),
    Help(Option<Vec<u8>>),
    Noop,
    Site(Site),
    Allo,
    Type(TransferType),
    /// MODE S (the only mode supported; others fail to parse with 504).
    Mode,
    /// STRU F (the only structure supported; others fail to parse with 504).
    Stru,
    Port(SocketAddr),
    Pasv,
    Eprt(SocketAddr),
    Epsv(EpsvArg),
    Size(PathArg),
    /// MDTM: the argument is either a path, or a time and a path (the set form some
    /// clients use); the session decides with [`split_time_prefix`].
    Mdtm(PathArg),
    Mfmt {
        mtime: OffsetDateTime,
        path: PathArg,
    },
    Feat,
    Opts(Opts),
    Host(Vec<u8>),
    Clnt,
    Auth(Vec<u8>),
    Pbsz(Vec<u8>),
    Prot(Vec<u8>),
    Ccc,
}

/// Why a line is not a command wharf can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// An empty line: ignored without a reply (vsftpd and ProFTPD do the same, for NATs).
    Empty,
    /// A verb wharf does not know (500).
    Unknown(Vec<u8>),
    /// A known verb wharf deliberately does not implement (502), e.g. LPRT/LPSV.
    NotImplemented(&'static str),
    /// The arguments are malformed or missing (501).
    BadArgument(&'static str),
    /// A well-formed parameter wharf does not support (504), e.g. MODE B.
    Unsupported(&'static str),
    /// EPRT/EPSV named a network protocol wharf does not speak (522).
    UnsupportedFamily,
}

impl Command {
    /// The canonical verb, for logs and HELP.
    pub fn verb(&self) -> &'static str {
        use Command::*;
        match self {
            User(_) => "USER",
            Pass(_) => "PASS",
            Acct => "ACCT",
            Rein => "REIN",
            Cwd(_) => "CWD",
            Cdup => "CDUP",
            Pwd => "PWD",
            List(_) => "LIST",
            Nlst(_) => "NLST",
            Mlsd(_) => "MLSD",
            Mlst(_) => "MLST",
            Retr(_) => "RETR",
            Stor(_) => "STOR",
            Stou(_) => "STOU",
            Appe(_) => "APPE",
            Rest(_) => "REST",
            Dele(_) => "DELE",
            Rmd(_) => "RMD",
            Mkd(_) => "MKD",
            Rnfr(_) => "RNFR",
            Rnto(_) => "RNTO",
            Abor => "ABOR",
            Quit => "QUIT",
            Syst => "SYST",
            Stat(_) => "STAT",
            Help(_) => "HELP",
            Noop => "NOOP",
            Site(_) => "SITE",
            Allo => "ALLO",
            Type(_) => "TYPE",
            Mode => "MODE",
            Stru => "STRU",
            Port(_) => "PORT",
            Pasv => "PASV",
            Eprt(_) => "EPRT",
            Epsv(_) => "EPSV",
            Size(_) => "SIZE",
            Mdtm(_) => "MDTM",
            Mfmt { .. } => "MFMT",
            Feat => "FEAT",
            Opts(_) => "OPTS",
            Host(_) => "HOST",
            Clnt => "CLNT",
            Auth(_) => "AUTH",
            Pbsz(_) => "PBSZ",
            Prot(_) => "PROT",
            Ccc => "CCC",
        }
    }
}

/// Parses one control line (without its line ending).
pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    if line.iter().all(|b| *b == b' ') {
        return Err(ParseError::Empty);
    }
    let (verb, arg) = match line.iter().position(|b| *b == b' ') {
        Some(i) => (&line[..i], Some(&line[i + 1..])),
        None => (line, None),
    };
    // An empty argument ("LIST ") counts as none.
    let arg = arg.filter(|a| !a.is_empty());
    if verb.len() > 8 {
        return Err(ParseError::Unknown(verb.to_vec()));
    }
    let mut upper = [0u8; 8];
    for (d, s) in upper.iter_mut().zip(verb) {
        *d = s.to_ascii_uppercase();
    }
    let verb_up = &upper[..verb.len()];
    match crate::verbs::lookup(verb_up) {
        Some(v) => v.parse(arg),
        None => Err(ParseError::Unknown(verb.to_vec())),
    }
}

fn trim(s: &[u8]) -> &[u8] {
    s.trim_ascii()
}

pub(crate) fn decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Leading words that look like `ls` options (`-la`, `-CF`) are flags; the rest is the path.
pub(crate) fn list_args(arg: Option<&[u8]>) -> ListArgs {
    let mut out = ListArgs::default();
    let Some(mut rest) = arg else { return out };
    loop {
        let word_end = rest.iter().position(|b| *b == b' ').unwrap_or(rest.len());
        let word = &rest[..word_end];
        let is_flags = word.len() >= 2
            && word[0] == b'-'
            && word[1..].iter().all(|b| b.is_ascii_alphanumeric());
        if !is_flags {
            break;
        }
        out.flags.extend_from_slice(&word[1..]);
        rest = rest.get(word_end + 1..).unwrap_or(&[]);
        if rest.is_empty() {
            break;
        }
    }
    if !rest.is_empty() {
        out.path = Some(rest.to_vec());
    }
    out
}

pub(crate) fn transfer_type(arg: &[u8]) -> Result<TransferType, ParseError> {
    let words: Vec<Vec<u8>> = arg
        .split(|b| *b == b' ')
        .filter(|w| !w.is_empty())
        .map(|w| w.to_ascii_uppercase())
        .collect();
    let words: Vec<&[u8]> = words.iter().map(Vec::as_slice).collect();
    match words.as_slice() {
        [b"A"] | [b"A", b"N"] | [b"AN"] => Ok(TransferType::Ascii),
        [b"I"] | [b"L", b"8"] | [b"L8"] => Ok(TransferType::Image),
        [b"A" | b"E", b"T" | b"C"] | [b"E"] | [b"E", b"N"] | [b"L", _] => Err(
            ParseError::Unsupported("only TYPE A, A N, I and L 8 are supported"),
        ),
        _ => Err(ParseError::BadArgument("unknown TYPE")),
    }
}

pub(crate) fn mode(arg: Option<&[u8]>) -> Result<Command, ParseError> {
    match arg.map(trim) {
        Some(m) if m.eq_ignore_ascii_case(b"S") => Ok(Command::Mode),
        Some(m)
            if m.eq_ignore_ascii_case(b"B")
                || m.eq_ignore_ascii_case(b"C")
                || m.eq_ignore_ascii_case(b"Z") =>
        {
            Err(ParseError::Unsupported("only MODE S is supported"))
        }
        _ => Err(ParseError::BadArgument("MODE needs S, B or C")),
    }
}

pub(crate) fn stru(arg: Option<&[u8]>) -> Result<Command, ParseError> {
    match arg.map(trim) {
        Some(s) if s.eq_ignore_ascii_case(b"F") => Ok(Command::Stru),
        Some(s) if s.eq_ignore_ascii_case(b"R") || s.eq_ignore_ascii_case(b"P") => {
            Err(ParseError::Unsupported("only STRU F is supported"))
        }
        _ => Err(ParseError::BadArgument("STRU needs F, R or P")),
    }
}

pub(crate) fn port(arg: &[u8]) -> Result<SocketAddr, ParseError> {
    const BAD: ParseError = ParseError::BadArgument("PORT needs h1,h2,h3,h4,p1,p2");
    let mut n = [0u8; 6];
    let mut parts = trim(arg).split(|b| *b == b',');
    for slot in n.iter_mut() {
        let part = trim(parts.next().ok_or(BAD)?);
        let v = decimal(part).filter(|v| *v <= 255).ok_or(BAD)?;
        *slot = v as u8;
    }
    if parts.next().is_some() {
        return Err(BAD);
    }
    let ip = Ipv4Addr::new(n[0], n[1], n[2], n[3]);
    Ok(SocketAddr::new(
        ip.into(),
        u16::from(n[4]) << 8 | u16::from(n[5]),
    ))
}

pub(crate) fn eprt(arg: &[u8]) -> Result<SocketAddr, ParseError> {
    const BAD: ParseError = ParseError::BadArgument("EPRT needs |proto|address|port|");
    let arg = trim(arg);
    let delim = *arg.first().ok_or(BAD)?;
    if !(33..=126).contains(&delim) {
        return Err(BAD);
    }
    let fields: Vec<&[u8]> = arg.split(|b| *b == delim).collect();
    // "|1|addr|port|" splits into ["", "1", "addr", "port", ""].
    let [first, proto, addr, port, last] = fields.as_slice() else {
        return Err(BAD);
    };
    if !first.is_empty() || !last.is_empty() {
        return Err(BAD);
    }
    let port = decimal(port).filter(|p| *p <= 65535).ok_or(BAD)? as u16;
    let addr = std::str::from_utf8(addr).map_err(|_| BAD)?;
    let ip: IpAddr = match *proto {
        b"1" => addr.parse::<Ipv4Addr>().map_err(|_| BAD)?.into(),
        b"2" => addr.parse::<Ipv6Addr>().map_err(|_| BAD)?.into(),
        p if decimal(p).is_some() => return Err(ParseError::UnsupportedFamily),
        _ => return Err(BAD),
    };
    Ok(SocketAddr::new(ip, port))
}

pub(crate) fn epsv(arg: Option<&[u8]>) -> Result<EpsvArg, ParseError> {
    match arg.map(trim) {
        None | Some(b"") => Ok(EpsvArg::Any),
        Some(a) if a.eq_ignore_ascii_case(b"ALL") => Ok(EpsvArg::All),
        Some(b"1") => Ok(EpsvArg::Family(1)),
        Some(b"2") => Ok(EpsvArg::Family(2)),
        Some(a) if decimal(a).is_some() => Err(ParseError::UnsupportedFamily),
        Some(_) => Err(ParseError::BadArgument("EPSV takes 1, 2 or ALL")),
    }
}

/// Parses an RFC 3659 time-val: `YYYYMMDDHHMMSS[.fraction]`, always UTC.
pub fn parse_time(s: &[u8]) -> Option<OffsetDateTime> {
    let (whole, frac) = match s.iter().position(|b| *b == b'.') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    if whole.len() != 14 || !whole.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> u32 {
        whole[r]
            .iter()
            .fold(0, |acc, d| acc * 10 + u32::from(d - b'0'))
    };
    let nanos = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 9 && f.iter().all(u8::is_ascii_digit) => {
            let mut v = f.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
            for _ in f.len()..9 {
                v *= 10;
            }
            v
        }
        Some(_) => return None,
    };
    let month = Month::try_from(u8::try_from(num(4..6)).ok()?).ok()?;
    let date =
        Date::from_calendar_date(num(0..4) as i32, month, u8::try_from(num(6..8)).ok()?).ok()?;
    let seconds = num(12..14);
    if seconds > 60 {
        return None;
    }
    let time = Time::from_hms_nano(
        u8::try_from(num(8..10)).ok()?,
        u8::try_from(num(10..12)).ok()?,
        // RFC 3659 allows a leap second (60); it reads as :59.
        u8::try_from(seconds.min(59)).ok()?,
        nanos,
    )
    .ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// Splits `"<time-val> <path>"` as used by `MDTM <time> <path>` and `MFMT`.
pub fn split_time_prefix(arg: &[u8]) -> Option<(OffsetDateTime, &[u8])> {
    let sp = arg.iter().position(|b| *b == b' ')?;
    let time = parse_time(&arg[..sp])?;
    let path = &arg[sp + 1..];
    if path.is_empty() {
        return None;
    }
    Some((time, path))
}

pub(crate) fn mfmt(arg: &[u8]) -> Result<Command, ParseError> {
    let (mtime, path) = split_time_prefix(arg).ok_or(ParseError::BadArgument(
        "MFMT needs YYYYMMDDHHMMSS and a path",
    ))?;
    Ok(Command::Mfmt {
        mtime,
        path: path.to_vec(),
    })
}

pub(crate) fn opts(arg: &[u8]) -> Result<Opts, ParseError> {
    let (name, value) = match arg.iter().position(|b| *b == b' ') {
        Some(i) => (&arg[..i], trim(&arg[i + 1..])),
        None => (arg, &b""[..]),
    };
    if name.eq_ignore_ascii_case(b"UTF8") || name.eq_ignore_ascii_case(b"UTF-8") {
        return match value {
            v if v.is_empty() || v.eq_ignore_ascii_case(b"ON") => Ok(Opts::Utf8(true)),
            v if v.eq_ignore_ascii_case(b"OFF") => Ok(Opts::Utf8(false)),
            _ => Err(ParseError::BadArgument("OPTS UTF8 takes ON or OFF")),
        };
    }
    if name.eq_ignore_ascii_case(b"MLST") {
        let facts = value
            .split(|b| *b == b';')
            .filter(|f| !f.is_empty())
            .map(|f| f.to_ascii_lowercase())
            .collect();
        return Ok(Opts::Mlst(facts));
    }
    Err(ParseError::BadArgument("unknown option"))
}

pub(crate) fn site(arg: &[u8]) -> Result<Site, ParseError> {
    let (sub, rest) = match arg.iter().position(|b| *b == b' ') {
        Some(i) => (&arg[..i], &arg[i + 1..]),
        None => (arg, &b""[..]),
    };
    if sub.eq_ignore_ascii_case(b"HELP") {
        return Ok(Site::Help);
    }
    if sub.eq_ignore_ascii_case(b"QUOTA") {
        return Ok(Site::Quota);
    }
    if sub.eq_ignore_ascii_case(b"CHMOD") {
        const BAD: ParseError =
            ParseError::BadArgument("SITE CHMOD needs an octal mode and a path");
        let sp = rest.iter().position(|b| *b == b' ').ok_or(BAD)?;
        let mode = &rest[..sp];
        if mode.is_empty() || mode.len() > 4 || !mode.iter().all(|d| (b'0'..=b'7').contains(d)) {
            return Err(BAD);
        }
        let mode = mode
            .iter()
            .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
        let path = &rest[sp + 1..];
        if path.is_empty() {
            return Err(BAD);
        }
        return Ok(Site::Chmod {
            mode,
            path: path.to_vec(),
        });
    }
    if sub.eq_ignore_ascii_case(b"UTIME") {
        const BAD: ParseError = ParseError::BadArgument("SITE UTIME needs a time and a path");
        if let Some((mtime, path)) = split_time_prefix(rest) {
            return Ok(Site::Utime {
                mtime,
                path: path.to_vec(),
            });
        }
        // "<path> <atime> <mtime> <ctime> UTC": the path may hold spaces, so read from the right.
        let mut words = rest.rsplitn(5, |b| *b == b' ');
        let utc = words.next().ok_or(BAD)?;
        let _ctime = words.next().ok_or(BAD)?;
        let mtime = words.next().ok_or(BAD)?;
        let _atime = words.next().ok_or(BAD)?;
        let path = words.next().ok_or(BAD)?;
        if !utc.eq_ignore_ascii_case(b"UTC") || path.is_empty() {
            return Err(BAD);
        }
        let mtime = parse_time(mtime).ok_or(BAD)?;
        return Ok(Site::Utime {
            mtime,
            path: path.to_vec(),
        });
    }
    Err(ParseError::Unknown([b"SITE ".as_slice(), sub].concat()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &[u8]) -> Result<Command, ParseError> {
        parse(s)
    }

    #[test]
    fn verbs_are_case_insensitive_and_aliases_map() {
        assert_eq!(p(b"noop"), Ok(Command::Noop));
        assert_eq!(p(b"XPWD"), Ok(Command::Pwd));
        assert_eq!(p(b"xcwd /a"), Ok(Command::Cwd(b"/a".to_vec())));
        assert_eq!(p(b"XMKD d"), Ok(Command::Mkd(b"d".to_vec())));
        assert_eq!(p(b"XRMD d"), Ok(Command::Rmd(b"d".to_vec())));
        assert_eq!(p(b"XCUP"), Ok(Command::Cdup));
    }

    #[test]
    fn empty_and_unknown() {
        assert_eq!(p(b""), Err(ParseError::Empty));
        assert_eq!(p(b"   "), Err(ParseError::Empty));
        assert_eq!(p(b"FOO bar"), Err(ParseError::Unknown(b"FOO".to_vec())));
        assert_eq!(
            p(b"LPRT 4,4,1,2,3,4,2,1,2"),
            Err(ParseError::NotImplemented("use EPRT/EPSV"))
        );
        assert!(matches!(p(b"LPSV"), Err(ParseError::NotImplemented(_))));
        assert!(matches!(p(b"AVERYLONGVERB"), Err(ParseError::Unknown(_))));
    }

    #[test]
    fn paths_keep_every_byte() {
        assert_eq!(p(b"STOR  lead"), Ok(Command::Stor(b" lead".to_vec())));
        assert_eq!(p(b"STOR trail "), Ok(Command::Stor(b"trail ".to_vec())));
        assert_eq!(p(b"RETR -la"), Ok(Command::Retr(b"-la".to_vec())));
        assert_eq!(
            p("DELE 日本語 é".as_bytes()),
            Ok(Command::Dele("日本語 é".as_bytes().to_vec()))
        );
        assert_eq!(p(b"RETR \xff\xfe"), Ok(Command::Retr(b"\xff\xfe".to_vec())));
    }

    #[test]
    fn required_arguments() {
        assert_eq!(
            p(b"RETR"),
            Err(ParseError::BadArgument("argument required"))
        );
        assert_eq!(
            p(b"CWD "),
            Err(ParseError::BadArgument("argument required"))
        );
        assert!(matches!(p(b"REST abc"), Err(ParseError::BadArgument(_))));
        assert_eq!(p(b"REST 100"), Ok(Command::Rest(100)));
        assert!(matches!(
            p(b"REST 99999999999999999999999"),
            Err(ParseError::BadArgument(_))
        ));
    }

    #[test]
    fn pass_is_redacted() {
        let c = p(b"PASS hunter2").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(p(b"PASS"), Ok(Command::Pass(Password::new(Vec::new()))));
    }

    #[test]
    fn list_flags() {
        assert_eq!(p(b"LIST"), Ok(Command::List(ListArgs::default())));
        let Ok(Command::List(a)) = p(b"LIST -la") else {
            panic!()
        };
        assert!(a.all());
        assert_eq!(a.path, None);
        let Ok(Command::Nlst(a)) = p(b"NLST -CF dir") else {
            panic!()
        };
        assert_eq!(a.flags, b"CF");
        assert_eq!(a.path, Some(b"dir".to_vec()));
        let Ok(Command::List(a)) = p(b"LIST -a -l my dir") else {
            panic!()
        };
        assert_eq!(a.path, Some(b"my dir".to_vec()));
        let Ok(Command::List(a)) = p(b"LIST -") else {
            panic!()
        };
        assert_eq!(a.path, Some(b"-".to_vec()));
    }

    #[test]
    fn types() {
        use TransferType::*;
        for (line, t) in [
            (&b"TYPE A"[..], Ascii),
            (b"TYPE a", Ascii),
            (b"TYPE A N", Ascii),
            (b"type i", Image),
            (b"TYPE L 8", Image),
            (b"TYPE l 8", Image),
            (b"TYPE I ", Image),
        ] {
            assert_eq!(p(line), Ok(Command::Type(t)), "{line:?}");
        }
        assert!(matches!(p(b"TYPE E"), Err(ParseError::Unsupported(_))));
        assert!(matches!(p(b"TYPE A T"), Err(ParseError::Unsupported(_))));
        assert!(matches!(p(b"TYPE L 7"), Err(ParseError::Unsupported(_))));
        assert!(matches!(p(b"TYPE X"), Err(ParseError::BadArgument(_))));
        assert!(matches!(p(b"TYPE"), Err(ParseError::BadArgument(_))));
    }

    #[test]
    fn mode_and_stru() {
        assert_eq!(p(b"MODE S"), Ok(Command::Mode));
        assert_eq!(p(b"mode s"), Ok(Command::Mode));
        assert!(matches!(p(b"MODE B"), Err(ParseError::Unsupported(_))));
        assert!(matches!(p(b"MODE Q"), Err(ParseError::BadArgument(_))));
        assert_eq!(p(b"STRU F"), Ok(Command::Stru));
        assert!(matches!(p(b"STRU R"), Err(ParseError::Unsupported(_))));
        assert!(matches!(p(b"STRU"), Err(ParseError::BadArgument(_))));
    }

    #[test]
    fn port_and_eprt() {
        assert_eq!(
            p(b"PORT 127,0,0,1,4,1"),
            Ok(Command::Port("127.0.0.1:1025".parse().unwrap()))
        );
        for bad in [
            &b"PORT 1,2,3,4,5"[..],
            b"PORT 1,2,3,4,5,256",
            b"PORT a,b,c,d,e,f",
            b"PORT 1,2,3,4,5,6,7",
        ] {
            assert!(matches!(p(bad), Err(ParseError::BadArgument(_))), "{bad:?}");
        }
        assert_eq!(
            p(b"EPRT |1|132.235.1.2|6275|"),
            Ok(Command::Eprt("132.235.1.2:6275".parse().unwrap()))
        );
        assert_eq!(
            p(b"EPRT |2|::1|5282|"),
            Ok(Command::Eprt("[::1]:5282".parse().unwrap()))
        );
        assert_eq!(
            p(b"EPRT !2!::1!5282!"),
            Ok(Command::Eprt("[::1]:5282".parse().unwrap()))
        );
        assert_eq!(p(b"EPRT |3|1.2.3.4|5|"), Err(ParseError::UnsupportedFamily));
        assert!(matches!(
            p(b"EPRT |1|::1|5|"),
            Err(ParseError::BadArgument(_))
        ));
        assert!(matches!(
            p(b"EPRT |1|1.2.3.4|70000|"),
            Err(ParseError::BadArgument(_))
        ));
        assert!(matches!(
            p(b"EPRT |1|1.2.3.4|5"),
            Err(ParseError::BadArgument(_))
        ));
    }

    #[test]
    fn epsv() {
        assert_eq!(p(b"EPSV"), Ok(Command::Epsv(EpsvArg::Any)));
        assert_eq!(p(b"EPSV 1"), Ok(Command::Epsv(EpsvArg::Family(1))));
        assert_eq!(p(b"EPSV 2"), Ok(Command::Epsv(EpsvArg::Family(2))));
        assert_eq!(p(b"EPSV all"), Ok(Command::Epsv(EpsvArg::All)));
        assert_eq!(p(b"EPSV 3"), Err(ParseError::UnsupportedFamily));
        assert!(matches!(p(b"EPSV x"), Err(ParseError::BadArgument(_))));
    }

    #[test]
    fn times() {
        let t = parse_time(b"20240229123456").unwrap();
        assert_eq!(t.unix_timestamp(), 1709210096);
        assert_eq!(parse_time(b"20240229123456.5").unwrap().millisecond(), 500);
        assert!(parse_time(b"20230229123456").is_none());
        assert!(parse_time(b"2024022912345").is_none());
        assert!(parse_time(b"20241301000000").is_none());
        assert!(parse_time(b"20000101000099").is_none(), "seconds over 60");
        assert_eq!(parse_time(b"20161231235960").unwrap().second(), 59);
        let Ok(Command::Mfmt { mtime, path }) = p(b"MFMT 20000101000000 a b.txt") else {
            panic!()
        };
        assert_eq!(mtime.unix_timestamp(), 946684800);
        assert_eq!(path, b"a b.txt");
        assert!(matches!(p(b"MFMT 2000 x"), Err(ParseError::BadArgument(_))));
        assert!(matches!(
            p(b"MFMT 20000101000000"),
            Err(ParseError::BadArgument(_))
        ));
    }

    #[test]
    fn opts() {
        assert_eq!(p(b"OPTS UTF8 ON"), Ok(Command::Opts(Opts::Utf8(true))));
        assert_eq!(p(b"opts utf8 on"), Ok(Command::Opts(Opts::Utf8(true))));
        assert_eq!(p(b"OPTS UTF8 OFF"), Ok(Command::Opts(Opts::Utf8(false))));
        assert_eq!(
            p(b"OPTS MLST type;size;"),
            Ok(Command::Opts(Opts::Mlst(vec![
                b"type".to_vec(),
                b"size".to_vec()
            ])))
        );
        assert_eq!(p(b"OPTS MLST"), Ok(Command::Opts(Opts::Mlst(vec![]))));
        assert!(matches!(p(b"OPTS FOO"), Err(ParseError::BadArgument(_))));
    }

    #[test]
    fn site() {
        assert_eq!(p(b"SITE HELP"), Ok(Command::Site(Site::Help)));
        assert_eq!(p(b"SITE quota"), Ok(Command::Site(Site::Quota)));
        assert_eq!(
            p(b"SITE CHMOD 755 a file"),
            Ok(Command::Site(Site::Chmod {
                mode: 0o755,
                path: b"a file".to_vec()
            }))
        );
        assert!(matches!(
            p(b"SITE CHMOD 9 x"),
            Err(ParseError::BadArgument(_))
        ));
        let Ok(Command::Site(Site::Utime { mtime, path })) = p(b"SITE UTIME 20000101000000 f")
        else {
            panic!()
        };
        assert_eq!(
            (mtime.unix_timestamp(), path.as_slice()),
            (946684800, &b"f"[..])
        );
        let Ok(Command::Site(Site::Utime { mtime, path })) =
            p(b"SITE UTIME my f 20000101000000 20000101000001 20000101000002 UTC")
        else {
            panic!()
        };
        assert_eq!(
            (mtime.unix_timestamp(), path.as_slice()),
            (946684801, &b"my f"[..])
        );
        assert!(matches!(
            p(b"SITE UTIME f"),
            Err(ParseError::BadArgument(_))
        ));
        assert!(matches!(p(b"SITE FOO"), Err(ParseError::Unknown(_))));
        assert!(matches!(p(b"SITE"), Err(ParseError::BadArgument(_))));
    }

    #[test]
    fn host_and_misc() {
        assert_eq!(
            p(b"HOST ftp.example.com"),
            Ok(Command::Host(b"ftp.example.com".to_vec()))
        );
        assert!(matches!(p(b"HOST"), Err(ParseError::BadArgument(_))));
        assert_eq!(p(b"STOU"), Ok(Command::Stou(None)));
        assert_eq!(p(b"MLSD"), Ok(Command::Mlsd(None)));
        assert_eq!(p(b"STAT"), Ok(Command::Stat(None)));
        assert_eq!(p(b"ALLO 100"), Ok(Command::Allo));
        assert_eq!(p(b"CLNT FileZilla"), Ok(Command::Clnt));
        assert_eq!(p(b"AUTH TLS"), Ok(Command::Auth(b"TLS".to_vec())));
    }
}
