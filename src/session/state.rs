//! The command gate: which commands a session may run in which login phase. One pure
//! function, tested over every (phase, command) pair.

use wharf_proto::{Command, Reply};

use crate::error::replies;

/// Where a session is in the login sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Connected; no USER yet. `host` is set once HOST was accepted.
    Fresh,
    /// USER given; PASS expected next.
    NeedPass { user: Vec<u8> },
    /// Logged in.
    LoggedIn,
}

/// Allows or refuses `cmd` in `phase`. A refusal is the reply to send; the command has
/// no effect.
pub fn gate(phase: &Phase, cmd: &Command) -> Result<(), Reply> {
    use Command as C;
    match cmd {
        C::Pass(_) => match phase {
            Phase::NeedPass { .. } => Ok(()),
            Phase::LoggedIn => Err(replies::ALREADY_LOGGED_IN.reply()),
            Phase::Fresh => Err(replies::USER_FIRST.reply()),
        },
        // RFC 7151: HOST comes before USER.
        C::Host(_) => match phase {
            Phase::Fresh => Ok(()),
            _ => Err(replies::HOST_BEFORE_USER.reply()),
        },
        // STAT with a path reads the file system; without one it describes the session.
        C::Stat(Some(_)) if *phase != Phase::LoggedIn => Err(not_logged_in()),
        // The table's list: session control, capability discovery, and what clients are
        // known to send before logging in (OPTS UTF8 from Windows ftp.exe; PBSZ/PROT).
        _ if cmd.spec().before_login || *phase == Phase::LoggedIn => Ok(()),
        _ => Err(not_logged_in()),
    }
}

fn not_logged_in() -> Reply {
    replies::LOGIN_FIRST.reply()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wharf_proto::Code;
    use wharf_proto::command::parse;

    /// One sample line per command variant.
    const SAMPLES: &[&str] = &[
        "USER a",
        "PASS b",
        "ACCT x",
        "REIN",
        "CWD /",
        "CDUP",
        "PWD",
        "LIST",
        "NLST",
        "MLSD",
        "MLST",
        "RETR f",
        "STOR f",
        "STOU",
        "APPE f",
        "REST 0",
        "DELE f",
        "RMD d",
        "MKD d",
        "RNFR a",
        "RNTO b",
        "ABOR",
        "QUIT",
        "SYST",
        "STAT",
        "STAT f",
        "HELP",
        "NOOP",
        "SITE HELP",
        "ALLO 1",
        "TYPE I",
        "MODE S",
        "STRU F",
        "PORT 127,0,0,1,4,0",
        "PASV",
        "EPRT |1|127.0.0.1|1024|",
        "EPSV",
        "SIZE f",
        "MDTM f",
        "MFMT 20000101000000 f",
        "FEAT",
        "OPTS UTF8 ON",
        "HOST h",
        "CLNT c",
        "AUTH TLS",
        "PBSZ 0",
        "PROT P",
        "CCC",
    ];

    const BEFORE_LOGIN: &[&str] = &[
        "USER", "PASS", "ACCT", "REIN", "ABOR", "QUIT", "SYST", "HELP", "NOOP", "FEAT", "OPTS",
        "HOST", "CLNT", "AUTH", "PBSZ", "PROT", "CCC",
    ];

    #[test]
    fn every_phase_and_command() {
        let phases = [
            Phase::Fresh,
            Phase::NeedPass {
                user: b"a".to_vec(),
            },
            Phase::LoggedIn,
        ];
        for line in SAMPLES {
            let cmd = parse(line.as_bytes()).unwrap();
            let verb = cmd.verb();
            for phase in &phases {
                let got = gate(phase, &cmd).map_err(|r| r.code());
                let expected = match (phase, verb) {
                    (Phase::Fresh, "PASS") => Err(Code::BadSequence),
                    (Phase::LoggedIn, "PASS") => Err(Code::BadSequence),
                    (Phase::NeedPass { .. }, "PASS") => Ok(()),
                    (Phase::Fresh, "HOST") => Ok(()),
                    (_, "HOST") => Err(Code::BadSequence),
                    (_, "STAT") if matches!(cmd, Command::Stat(None)) => Ok(()),
                    (Phase::LoggedIn, _) => Ok(()),
                    (_, v) if BEFORE_LOGIN.contains(&v) => Ok(()),
                    _ => Err(Code::NotLoggedIn),
                };
                assert_eq!(got, expected, "{line} in {phase:?}");
            }
        }
    }

    #[test]
    fn samples_cover_every_verb() {
        let mut verbs: Vec<&str> = SAMPLES
            .iter()
            .map(|l| parse(l.as_bytes()).unwrap().verb())
            .collect();
        verbs.sort();
        verbs.dedup();
        // 47 variants of Command; keep in step when adding one.
        assert_eq!(verbs.len(), 47);
    }
}
