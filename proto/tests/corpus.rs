//! Replays the `line_command` fuzz corpus (`fuzz/corpus/line_command/`) under plain
//! `cargo test`, through the very check the fuzz target runs.
//!
//! This file is also compiled into the fuzz target (`fuzz/fuzz_targets/line_command.rs`
//! includes it with `#[path]`), so [`check_line_command`] is the one definition of what
//! must hold: keep it free of inner attributes and of anything but `std` and `wharf_proto`.

use wharf_proto::code::Code;
use wharf_proto::command::{self, Command, ParseError, Site};
use wharf_proto::line::{Frame, LineFramer, MAX_LINE};
use wharf_proto::listing::{self, Entry, Facts, Kind};
use wharf_proto::reply::{self, Reply};
use wharf_proto::verbs;

/// Everything that must hold for one arbitrary control-connection byte stream.
///
/// The bytes go through a [`LineFramer`] whole, byte by byte and in chunks whose sizes are
/// derived from the input; all three must agree with each other and with a small reference
/// model. Every line is then parsed, and its text is pushed through the reply encoder and
/// the listing formatters as a client-chosen name would be.
pub fn check_line_command(data: &[u8]) {
    // A tight cap exercises TooLong with short inputs; the real one guards the parser.
    let small = data.len() % 37;
    let mut frames = Vec::new();
    for max in [small, MAX_LINE] {
        let whole = frame_all(max, [data]);
        let bytewise = frame_all(max, data.chunks(1));
        let chunked = frame_all(max, split_points(data));
        assert_eq!(whole, bytewise, "max {max}: whole vs byte-at-a-time");
        assert_eq!(whole, chunked, "max {max}: whole vs chunked");
        assert_eq!(
            whole,
            reference_frames(data, max),
            "max {max}: vs reference"
        );
        frames = chunked.0;
    }
    for frame in &frames {
        if let Frame::Line(line) = frame {
            assert!(line.len() <= MAX_LINE);
            assert!(!line.contains(&b'\n'), "a framed line holds LF");
            check_command(line);
            check_reply(line);
            check_listing(line);
        }
    }
}

/// Chunks of 1 to 16 bytes, each size taken from the byte that starts the chunk.
fn split_points(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut salt = data.len();
    while !rest.is_empty() {
        let n = 1 + (usize::from(rest[0]) ^ salt) % 16;
        salt = salt.wrapping_mul(31).wrapping_add(n);
        let (a, b) = rest.split_at(n.min(rest.len()));
        out.push(a);
        rest = b;
    }
    out
}

/// Drives a framer the way the connection does; returns the frames and `is_mid_line`.
fn frame_all<'a>(max: usize, chunks: impl IntoIterator<Item = &'a [u8]>) -> (Vec<Frame>, bool) {
    let mut f = LineFramer::new(max);
    let mut out = Vec::new();
    for chunk in chunks {
        let mut rest = chunk;
        while !rest.is_empty() {
            let (n, frame) = f.push(rest);
            assert!(n <= rest.len(), "consumed {n} of {}", rest.len());
            match frame {
                Some(frame) => {
                    assert!(n > 0, "a frame out of no input");
                    // push stops right after the LF (a TLS upgrade relies on it).
                    assert_eq!(rest[n - 1], b'\n', "frame did not end at an LF");
                    out.push(frame);
                }
                None => assert_eq!(n, rest.len(), "stopped early without a frame"),
            }
            rest = &rest[n..];
        }
    }
    (out, f.is_mid_line())
}

/// The framing rules written plainly: Telnet first, then split on LF, drop one CR before
/// it, and anything longer than `max` is TooLong. Mid-line iff data bytes are pending.
fn reference_frames(data: &[u8], max: usize) -> (Vec<Frame>, bool) {
    #[derive(PartialEq)]
    enum T {
        Data,
        Iac,
        Opt,
    }
    let mut state = T::Data;
    let mut cur = Vec::new();
    let mut out = Vec::new();
    for &b in data {
        match state {
            T::Iac => {
                state = T::Data;
                if b == 0xff {
                    cur.push(0xff);
                } else if (251..=254).contains(&b) {
                    state = T::Opt;
                }
            }
            T::Opt => state = T::Data,
            T::Data if b == 0xff => state = T::Iac,
            T::Data if b == b'\n' => {
                let mut line = std::mem::take(&mut cur);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                out.push(if line.len() > max {
                    Frame::TooLong
                } else {
                    Frame::Line(line)
                });
            }
            T::Data => cur.push(b),
        }
    }
    (out, !cur.is_empty())
}

fn check_command(line: &[u8]) {
    let res = command::parse(line);
    let all_spaces = line.iter().all(|b| *b == b' ');
    assert_eq!(
        matches!(res, Err(ParseError::Empty)),
        all_spaces,
        "Empty iff blank: {res:?}"
    );
    let Ok(cmd) = res else { return };
    let verb_tok = line.split(|b| *b == b' ').next().unwrap_or_default();
    let arg = line
        .iter()
        .position(|b| *b == b' ')
        .map_or(&b""[..], |i| &line[i + 1..]);
    let verb = cmd.verb();
    assert!(!verb.is_empty());
    let up = verb_tok.to_ascii_uppercase();
    let row = verbs::lookup(&up).expect("a parsed verb has a row in the table");
    assert_eq!(row.name, verb, "verb token vs verb()");
    assert_eq!(cmd.spec().name, verb, "verb() vs its row");
    let dbg = format!("{cmd:?}");
    let suffix = |p: &[u8]| {
        assert!(!p.is_empty(), "{verb}: empty path");
        assert!(line.ends_with(p), "{verb}: path is not the line's tail");
    };
    match &cmd {
        Command::Pass(p) => {
            assert_eq!(dbg, "Pass(Password(****))", "PASS leaks through Debug");
            assert_eq!(p.expose(), arg);
        }
        Command::User(p)
        | Command::Cwd(p)
        | Command::Retr(p)
        | Command::Stor(p)
        | Command::Appe(p)
        | Command::Dele(p)
        | Command::Rmd(p)
        | Command::Mkd(p)
        | Command::Rnfr(p)
        | Command::Rnto(p)
        | Command::Size(p)
        | Command::Mdtm(p)
        | Command::Host(p)
        | Command::Auth(p)
        | Command::Pbsz(p)
        | Command::Prot(p) => {
            suffix(p);
            assert_eq!(p.as_slice(), arg, "{verb}: argument bytes changed");
        }
        Command::Mlsd(Some(p))
        | Command::Mlst(Some(p))
        | Command::Stou(Some(p))
        | Command::Stat(Some(p)) => suffix(p),
        Command::List(a) | Command::Nlst(a) => {
            if let Some(p) = &a.path {
                suffix(p);
            }
            assert!(a.flags.iter().all(u8::is_ascii_alphanumeric));
        }
        Command::Rest(n) => {
            assert_eq!(
                std::str::from_utf8(arg.trim_ascii())
                    .ok()
                    .and_then(|s| s.parse().ok()),
                Some(*n)
            );
        }
        Command::Port(addr) => assert!(addr.is_ipv4()),
        Command::Mfmt { mtime, path } => {
            suffix(path);
            check_time(arg, mtime.unix_timestamp());
        }
        Command::Site(Site::Chmod { mode, path }) => {
            suffix(path);
            assert!(*mode <= 0o7777);
        }
        Command::Site(Site::Utime { path, .. }) => {
            assert!(!path.is_empty());
            assert!(line.windows(path.len()).any(|w| w == path.as_slice()));
        }
        _ => {}
    }
}

/// `arg` starts with the time-val that gave `mtime`: formatting it back yields the same
/// 14 digits (a leap second reads as :59).
fn check_time(arg: &[u8], unix: i64) {
    let mut want = arg[..14].to_vec();
    if &want[12..14] == b"60" {
        want[12..14].copy_from_slice(b"59");
    }
    let mut got = Vec::new();
    listing::time_val(unix, &mut got);
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want),
        "time-val round trip: parse_time accepted what time_val cannot give back"
    );
}

const CODES: [Code; 8] = [
    Code::Ok,
    Code::SystemStatus,
    Code::FileStatus,
    Code::Help,
    Code::FileActionOk,
    Code::PathCreated,
    Code::SyntaxError,
    Code::FileUnavailable,
];

/// Client text inside replies: whatever it holds, the wire keeps its line structure.
fn check_reply(text: &[u8]) {
    let code = CODES[text.len() % CODES.len()];
    check_wire(&Reply::new(code, text.to_vec()).to_bytes(), code, 1);
    // The single-line wire form, read back by a client's framer, is the text escaped.
    let wire = Reply::new(code, text.to_vec()).to_bytes();
    let (frames, mid) = frame_all(wire.len(), [wire.as_slice()]);
    let mut want = code.digits().to_vec();
    want.push(b' ');
    for &b in text {
        match b {
            b'\r' => want.extend_from_slice(b"\r\0"),
            b'\n' => want.push(0),
            _ => want.push(b),
        }
    }
    assert_eq!(frames, vec![Frame::Line(want)], "reply read back");
    assert!(!mid);

    let lines: Vec<Vec<u8>> = text.split(|b| *b == b'|').map(<[u8]>::to_vec).collect();
    let n = lines.len();
    check_wire(&Reply::multi(code, lines).to_bytes(), code, n);
    check_wire(&Reply::multi(code, Vec::new()).to_bytes(), code, 1);

    let quoted = reply::quote_path(text);
    assert!(quoted.len() >= 2 && quoted.starts_with(b"\"") && quoted.ends_with(b"\""));
    let mut unq = Vec::new();
    let mut inner = quoted[1..quoted.len() - 1].iter();
    while let Some(&b) = inner.next() {
        if b == b'"' {
            assert_eq!(inner.next(), Some(&b'"'), "lone quote inside a 257 path");
        }
        unq.push(b);
    }
    assert_eq!(unq, text, "257 quoting round trip");
    check_wire(
        &Reply::new(Code::PathCreated, quoted).to_bytes(),
        Code::PathCreated,
        1,
    );
}

/// The bytes of an encoded reply of `n` lines: only the terminators are CRLF, every CR is
/// followed by LF or NUL, IAC is always doubled, and the NNN-/NNN framing is exact.
fn check_wire(wire: &[u8], code: Code, n: usize) {
    assert!(wire.ends_with(b"\r\n"), "reply does not end in CRLF");
    for (i, &b) in wire.iter().enumerate() {
        if b == b'\n' {
            assert!(i > 0 && wire[i - 1] == b'\r', "bare LF at {i}: {wire:?}");
        }
        if b == b'\r' {
            assert!(
                matches!(wire.get(i + 1), Some(b'\n' | b'\0')),
                "bare CR at {i}: {wire:?}"
            );
        }
    }
    for run in wire.split(|b| *b != 0xff) {
        assert!(run.len() % 2 == 0, "undoubled IAC: {wire:?}");
    }
    let body = &wire[..wire.len() - 2];
    let lines: Vec<&[u8]> = body.split(|b| *b == b'\n').collect();
    assert_eq!(lines.len(), n, "line count");
    let digits = code.digits();
    for (i, l) in lines.iter().enumerate() {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        if i == n - 1 {
            assert!(
                l.starts_with(&digits) && l.get(3) == Some(&b' '),
                "last line {l:?}"
            );
        } else if i == 0 {
            assert!(
                l.starts_with(&digits) && l.get(3) == Some(&b'-'),
                "first line {l:?}"
            );
        } else {
            assert!(
                !l.first().is_some_and(u8::is_ascii_digit),
                "middle line {l:?}"
            );
        }
    }
}

/// The line's bytes as a file name in listings; times, sizes and modes come from the
/// same bytes so the formatters see extreme values too.
fn check_listing(name: &[u8]) {
    let word = |at: usize| {
        let mut b = [0u8; 8];
        for (i, d) in b.iter_mut().enumerate() {
            *d = name.get(at + i).copied().unwrap_or(0);
        }
        b
    };
    // Shifts spread the values over every magnitude, not just the huge ones.
    let mtime = i64::from_le_bytes(word(0)) >> (name.len() % 64);
    let now = i64::from_le_bytes(word(8)) >> (name.get(16).copied().unwrap_or(0) % 64);
    let kind = [Kind::File, Kind::Dir, Kind::Symlink, Kind::Other][name.len() % 4];
    let e = Entry {
        name: name.to_vec(),
        kind,
        size: u64::from_le_bytes(word(16)),
        mtime,
        mode: u32::from_le_bytes(word(24)[..4].try_into().unwrap()),
        nlink: u64::from_le_bytes(word(28)),
        unique: (u64::from_le_bytes(word(2)), u64::from_le_bytes(word(4))),
    };

    let mut out = Vec::new();
    listing::list_line(&e, now, &mut out);
    assert!(
        out.ends_with(&[name, b"\r\n"].concat()),
        "LIST line does not end in the name"
    );
    assert_eq!(
        out.iter().filter(|b| **b == b'\n').count(),
        1,
        "LIST line breaks"
    );
    assert!(out.len() > 11 && out[10] == b' ', "LIST mode column");

    out.clear();
    listing::nlst_line(name, &mut out);
    assert_eq!(out, [name, b"\r\n"].concat());

    out.clear();
    listing::time_val(mtime, &mut out);
    assert!(
        out.len() == 14 && out.iter().all(u8::is_ascii_digit),
        "time-val of {mtime} is {:?}",
        String::from_utf8_lossy(&out)
    );

    let facts = Facts::select(&[
        b"type".to_vec(),
        b"size".to_vec(),
        b"modify".to_vec(),
        b"perm".to_vec(),
        b"unique".to_vec(),
    ]);
    assert_eq!(facts, Facts::default());
    out.clear();
    listing::facts_line(&e, facts, b"adfr", name, &mut out);
    assert!(
        out.ends_with(&[b" ", name].concat()),
        "MLSx line does not end in the name"
    );
    let fact_text = &out[..out.len() - name.len() - 1];
    assert!(fact_text.ends_with(b";"));
    assert!(!fact_text.contains(&b' '), "space inside the facts");
}

#[cfg(test)]
#[test]
fn replay_line_command_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/line_command");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut failed = Vec::new();
    for path in &files {
        let data = std::fs::read(path).unwrap();
        if std::panic::catch_unwind(|| check_line_command(&data)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(!files.is_empty(), "no corpus files under {}", dir.display());
    assert!(
        failed.is_empty(),
        "{} of {} corpus inputs fail: {failed:#?}",
        failed.len(),
        files.len()
    );
    eprintln!("replayed {} line_command corpus files", files.len());
}
