//! THE verb table: one declaration per verb — its name and aliases, how its argument
//! parses, whether it is allowed before login, and its FEAT line. Parsing
//! ([`crate::command::parse`]), the session's login gate, HELP and FEAT all read it.
//!
//! To add a verb: a [`Command`] variant, its name in [`Command::verb`], one row here, and
//! its handler in the daemon's exhaustive dispatch (which does not compile without it).

use crate::command::{self as c, Command as C, ParseError, Password};

/// What FEAT (RFC 2389) says of a verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feat {
    /// Nothing: a base RFC 959 verb.
    None,
    /// This line.
    Line(&'static str),
    /// This line, when the listener offers TLS (RFC 4217 section 6).
    Tls(&'static str),
    /// `MLST` and the facts the session shows (they change with `OPTS MLST`).
    Facts,
}

/// One verb.
#[derive(Debug)]
pub struct Verb {
    pub name: &'static str,
    /// Other names clients send for it (the X-verbs of RFC 775).
    pub aliases: &'static [&'static str],
    /// Allowed before login (PASS and HOST have rules of their own, in the gate).
    pub before_login: bool,
    pub feat: Feat,
    /// Listed by HELP; false for verbs wharf knows only to refuse (LPRT, LPSV).
    pub implemented: bool,
    parse: fn(Option<&[u8]>) -> Result<C, ParseError>,
}

/// Features that belong to no single verb.
pub const EXTRA_FEATURES: &[&str] = &["TVFS", "UTF8"];

fn need(a: Option<&[u8]>) -> Result<Vec<u8>, ParseError> {
    a.map(<[u8]>::to_vec)
        .ok_or(ParseError::BadArgument("argument required"))
}

fn opt(a: Option<&[u8]>) -> Option<Vec<u8>> {
    a.map(<[u8]>::to_vec)
}

fn needs<'a>(a: Option<&'a [u8]>, why: &'static str) -> Result<&'a [u8], ParseError> {
    a.ok_or(ParseError::BadArgument(why))
}

const fn verb(name: &'static str, parse: fn(Option<&[u8]>) -> Result<C, ParseError>) -> Verb {
    Verb {
        name,
        aliases: &[],
        before_login: false,
        feat: Feat::None,
        implemented: true,
        parse,
    }
}

impl Verb {
    const fn alias(mut self, aliases: &'static [&'static str]) -> Verb {
        self.aliases = aliases;
        self
    }
    const fn anytime(mut self) -> Verb {
        self.before_login = true;
        self
    }
    const fn feat(mut self, feat: Feat) -> Verb {
        self.feat = feat;
        self
    }
    const fn refused(mut self) -> Verb {
        self.implemented = false;
        self
    }
}

/// Every verb wharf knows, in HELP's order.
pub static VERBS: &[Verb] = &[
    verb("ABOR", |_| Ok(C::Abor)).anytime(),
    verb("ACCT", |_| Ok(C::Acct)).anytime(),
    verb("ALLO", |_| Ok(C::Allo)),
    verb("APPE", |a| Ok(C::Appe(need(a)?))),
    verb("AUTH", |a| Ok(C::Auth(need(a)?)))
        .anytime()
        .feat(Feat::Tls("AUTH TLS")),
    verb("CCC", |_| Ok(C::Ccc)).anytime(),
    verb("CDUP", |_| Ok(C::Cdup)).alias(&["XCUP"]),
    verb("CLNT", |_| Ok(C::Clnt)).anytime(),
    verb("CWD", |a| Ok(C::Cwd(need(a)?))).alias(&["XCWD"]),
    verb("DELE", |a| Ok(C::Dele(need(a)?))),
    verb("EPRT", |a| {
        Ok(C::Eprt(c::eprt(needs(a, "EPRT needs |proto|addr|port|")?)?))
    })
    .feat(Feat::Line("EPRT")),
    verb("EPSV", |a| Ok(C::Epsv(c::epsv(a)?))).feat(Feat::Line("EPSV")),
    verb("FEAT", |_| Ok(C::Feat)).anytime(),
    verb("HELP", |a| Ok(C::Help(opt(a)))).anytime(),
    // HOST's phase rule (before USER only, RFC 7151) is the gate's.
    verb("HOST", |a| Ok(C::Host(need(a)?))).feat(Feat::Line("HOST")),
    verb("LIST", |a| Ok(C::List(c::list_args(a)))),
    verb("LPRT", |_| Err(ParseError::NotImplemented("use EPRT/EPSV"))).refused(),
    verb("LPSV", |_| Err(ParseError::NotImplemented("use EPRT/EPSV"))).refused(),
    verb("MDTM", |a| Ok(C::Mdtm(need(a)?))).feat(Feat::Line("MDTM")),
    verb("MFMT", |a| {
        c::mfmt(needs(a, "MFMT needs a time and a path")?)
    })
    .feat(Feat::Line("MFMT")),
    verb("MKD", |a| Ok(C::Mkd(need(a)?))).alias(&["XMKD"]),
    verb("MLSD", |a| Ok(C::Mlsd(opt(a)))),
    verb("MLST", |a| Ok(C::Mlst(opt(a)))).feat(Feat::Facts),
    verb("MODE", c::mode),
    verb("NLST", |a| Ok(C::Nlst(c::list_args(a)))),
    verb("NOOP", |_| Ok(C::Noop)).anytime(),
    verb("OPTS", |a| {
        Ok(C::Opts(c::opts(needs(a, "OPTS needs an option")?)?))
    })
    .anytime(),
    // PASS's phase rule (right after USER) is the gate's.
    verb("PASS", |a| {
        Ok(C::Pass(Password::new(
            a.map(<[u8]>::to_vec).unwrap_or_default(),
        )))
    }),
    verb("PASV", |_| Ok(C::Pasv)),
    verb("PBSZ", |a| Ok(C::Pbsz(need(a)?)))
        .anytime()
        .feat(Feat::Tls("PBSZ")),
    verb("PORT", |a| {
        Ok(C::Port(c::port(needs(a, "PORT needs h1,h2,h3,h4,p1,p2")?)?))
    }),
    verb("PROT", |a| Ok(C::Prot(need(a)?)))
        .anytime()
        .feat(Feat::Tls("PROT")),
    verb("PWD", |_| Ok(C::Pwd)).alias(&["XPWD"]),
    verb("QUIT", |_| Ok(C::Quit)).anytime(),
    verb("REIN", |_| Ok(C::Rein)).anytime(),
    verb("REST", |a| {
        let n = c::decimal(need(a)?.trim_ascii());
        Ok(C::Rest(n.ok_or(ParseError::BadArgument(
            "REST needs a byte offset",
        ))?))
    })
    .feat(Feat::Line("REST STREAM")),
    verb("RETR", |a| Ok(C::Retr(need(a)?))),
    verb("RMD", |a| Ok(C::Rmd(need(a)?))).alias(&["XRMD"]),
    verb("RNFR", |a| Ok(C::Rnfr(need(a)?))),
    verb("RNTO", |a| Ok(C::Rnto(need(a)?))),
    verb("SITE", |a| {
        Ok(C::Site(c::site(needs(a, "SITE needs a subcommand")?)?))
    }),
    verb("SIZE", |a| Ok(C::Size(need(a)?))).feat(Feat::Line("SIZE")),
    // STAT with a path needs a login; the gate looks at the argument.
    verb("STAT", |a| Ok(C::Stat(opt(a)))).anytime(),
    verb("STOR", |a| Ok(C::Stor(need(a)?))),
    verb("STOU", |a| Ok(C::Stou(opt(a)))),
    verb("STRU", c::stru),
    verb("SYST", |_| Ok(C::Syst)).anytime(),
    verb("TYPE", |a| {
        Ok(C::Type(c::transfer_type(needs(a, "TYPE needs a type")?)?))
    }),
    verb("USER", |a| Ok(C::User(need(a)?))).anytime(),
];

/// The verb named `name` (upper case), by name or alias.
pub fn lookup(name: &[u8]) -> Option<&'static Verb> {
    VERBS
        .iter()
        .find(|v| v.name.as_bytes() == name || v.aliases.iter().any(|a| a.as_bytes() == name))
}

impl Verb {
    /// Parses the argument (`None` when the line has none).
    pub fn parse(&self, arg: Option<&[u8]>) -> Result<C, ParseError> {
        (self.parse)(arg)
    }
}

impl C {
    /// This command's row of the table.
    pub fn spec(&self) -> &'static Verb {
        lookup(self.verb().as_bytes()).expect("every command has a row in the verb table")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_upper_case_and_sorted() {
        let mut all: Vec<&str> = VERBS
            .iter()
            .flat_map(|v| std::iter::once(v.name).chain(v.aliases.iter().copied()))
            .collect();
        assert!(
            all.iter()
                .all(|n| n.len() <= 8 && *n == n.to_ascii_uppercase())
        );
        let names: Vec<&str> = VERBS.iter().map(|v| v.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "a name or alias appears twice");
    }

    #[test]
    fn every_implemented_verb_parses_to_its_own_row() {
        for v in VERBS.iter().filter(|v| v.implemented) {
            for name in std::iter::once(v.name).chain(v.aliases.iter().copied()) {
                // An argument every verb accepts, or none: one of the two parses.
                let parsed = [
                    None,
                    Some(&b"I"[..]),
                    Some(b"S"),
                    Some(b"F"),
                    Some(b"1"),
                    Some(b"TLS"),
                ]
                .into_iter()
                .chain([
                    Some(&b"|1|127.0.0.1|1024|"[..]),
                    Some(b"127,0,0,1,4,0"),
                    Some(b"HELP"),
                    Some(b"UTF8 ON"),
                    Some(b"20000101000000 f"),
                ])
                .find_map(|a| v.parse(a).ok());
                let cmd = parsed.unwrap_or_else(|| panic!("{name} parses nothing"));
                assert_eq!(cmd.spec().name, v.name, "{name}");
            }
        }
    }
}
