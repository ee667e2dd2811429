//! Directory listings as bytes: LIST (`ls -l`), NLST and MLSD/MLST facts (RFC 3659),
//! formatted from a plain [`Entry`] straight into an output buffer.
//!
//! Owns the exact text clients parse: English month names whatever the locale, the
//! link-count column rclone needs, and MLSx fact syntax. Knows nothing of filesystems.

use time::OffsetDateTime;

/// What kind of object an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    /// A symbolic link that could not be followed inside the jail.
    Symlink,
    Other,
}

/// One directory entry, as the storage backend describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: Vec<u8>,
    pub kind: Kind,
    pub size: u64,
    /// Modification time, seconds since the Unix epoch (UTC).
    pub mtime: i64,
    /// Permission bits (the low 12 bits of st_mode).
    pub mode: u32,
    pub nlink: u64,
    /// A stable identity for the MLSx `unique` fact (device, inode).
    pub unique: (u64, u64),
}

/// The MLSx facts wharf can emit, in the order they are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub kind: bool,
    pub size: bool,
    pub modify: bool,
    pub perm: bool,
    pub unique: bool,
}

impl Default for Facts {
    fn default() -> Self {
        Facts {
            kind: true,
            size: true,
            modify: true,
            perm: true,
            unique: true,
        }
    }
}

impl Facts {
    /// Selects the facts named in `OPTS MLST` (unknown names are ignored, RFC 3659 7.9).
    pub fn select(names: &[Vec<u8>]) -> Facts {
        let has = |n: &[u8]| names.iter().any(|x| x.as_slice() == n);
        Facts {
            kind: has(b"type"),
            size: has(b"size"),
            modify: has(b"modify"),
            perm: has(b"perm"),
            unique: has(b"unique"),
        }
    }

    /// The FEAT line body: `type*;size*;…` with `*` on the facts that are on.
    pub fn feat(&self) -> String {
        let mut s = String::new();
        for (name, on) in self.named() {
            s.push_str(name);
            if on {
                s.push('*');
            }
            s.push(';');
        }
        s
    }

    /// The reply text of `OPTS MLST`: the facts now on, each followed by `;`.
    pub fn enabled(&self) -> String {
        let mut s = String::new();
        for (name, on) in self.named() {
            if on {
                s.push_str(name);
                s.push(';');
            }
        }
        s
    }

    fn named(&self) -> [(&'static str, bool); 5] {
        [
            ("type", self.kind),
            ("size", self.size),
            ("modify", self.modify),
            ("perm", self.perm),
            ("unique", self.unique),
        ]
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Six months, the `ls` rule for showing a year instead of a time.
const SIX_MONTHS: i64 = 182 * 24 * 3600;

/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the range a 4-digit year can show.
const MIN_TIME: i64 = -62_167_219_200;
const MAX_TIME: i64 = 253_402_300_799;

/// A timestamp as a UTC date, clamped to years 0000–9999 so every format keeps its width
/// (filesystems can hold stranger mtimes than any client parses).
fn utc(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs.clamp(MIN_TIME, MAX_TIME))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn mode_string(e: &Entry, out: &mut Vec<u8>) {
    out.push(match e.kind {
        Kind::Dir => b'd',
        Kind::File => b'-',
        Kind::Symlink => b'l',
        Kind::Other => b'p',
    });
    let m = e.mode;
    let bit = |mask: u32, c: u8| if m & mask != 0 { c } else { b'-' };
    let exec = |x: u32, special: u32, set: u8, unset: u8| match (m & x != 0, m & special != 0) {
        (true, true) => set,
        (false, true) => unset,
        (true, false) => b'x',
        (false, false) => b'-',
    };
    out.extend_from_slice(&[
        bit(0o400, b'r'),
        bit(0o200, b'w'),
        exec(0o100, 0o4000, b's', b'S'),
        bit(0o040, b'r'),
        bit(0o020, b'w'),
        exec(0o010, 0o2000, b's', b'S'),
        bit(0o004, b'r'),
        bit(0o002, b'w'),
        exec(0o001, 0o1000, b't', b'T'),
    ]);
}

/// Appends one `ls -l` line: `-rw-r--r--    1 ftp      ftp            12 Nov 23 17:00 name`.
/// `now` decides between `HH:MM` and the year, as `ls` does.
pub fn list_line(e: &Entry, now: i64, out: &mut Vec<u8>) {
    mode_string(e, out);
    let t = utc(e.mtime);
    let month = MONTHS[usize::from(u8::from(t.month())) - 1];
    // By hand rather than write!: this runs once per entry of every listing.
    out.push(b' ');
    push_number(out, e.nlink.max(1), 4, b' ');
    out.extend_from_slice(b" ftp      ftp      ");
    push_number(out, e.size, 12, b' ');
    out.push(b' ');
    out.extend_from_slice(month.as_bytes());
    out.push(b' ');
    push_number(out, u64::from(t.day()), 2, b' ');
    out.push(b' ');
    if now.saturating_sub(e.mtime).unsigned_abs() < SIX_MONTHS as u64 {
        push_number(out, u64::from(t.hour()), 2, b'0');
        out.push(b':');
        push_number(out, u64::from(t.minute()), 2, b'0');
    } else {
        out.push(b' ');
        push_number(out, u64::try_from(t.year()).unwrap_or(0), 4, b'0');
    }
    out.push(b' ');
    out.extend_from_slice(&e.name);
    out.extend_from_slice(b"\r\n");
}

/// Appends `n` in decimal, right-aligned in `width` columns filled with `fill`.
fn push_number(out: &mut Vec<u8>, mut n: u64, width: usize, fill: u8) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let len = digits.len() - i;
    out.extend(std::iter::repeat_n(fill, width.saturating_sub(len)));
    out.extend_from_slice(&digits[i..]);
}

/// Appends one NLST line: the name alone.
pub fn nlst_line(name: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(name);
    out.extend_from_slice(b"\r\n");
}

/// Formats an RFC 3659 time-val: `YYYYMMDDHHMMSS` in UTC.
pub fn time_val(secs: i64, out: &mut Vec<u8>) {
    use std::io::Write;
    let t = utc(secs);
    let _ = write!(
        out,
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
}

/// Appends the MLSx facts of `e` followed by a space and `name` (no line ending).
/// `perm` is the RFC 3659 perm fact value the session computed for this user.
pub fn facts_line(e: &Entry, facts: Facts, perm: &[u8], name: &[u8], out: &mut Vec<u8>) {
    use std::io::Write;
    if facts.kind {
        out.extend_from_slice(match e.kind {
            Kind::Dir => b"type=dir;".as_slice(),
            Kind::File => b"type=file;",
            Kind::Symlink => b"type=OS.unix=symlink;",
            Kind::Other => b"type=OS.unix=special;",
        });
    }
    if facts.size && e.kind != Kind::Dir {
        let _ = write!(out, "size={};", e.size);
    }
    if facts.modify {
        out.extend_from_slice(b"modify=");
        time_val(e.mtime, out);
        out.push(b';');
    }
    if facts.perm {
        out.extend_from_slice(b"perm=");
        out.extend_from_slice(perm);
        out.push(b';');
    }
    if facts.unique {
        let _ = write!(out, "unique={:x}U{:x};", e.unique.0, e.unique.1);
    }
    out.push(b' ');
    out.extend_from_slice(name);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, kind: Kind, size: u64, mtime: i64, mode: u32) -> Entry {
        Entry {
            name: name.as_bytes().to_vec(),
            kind,
            size,
            mtime,
            mode,
            nlink: 1,
            unique: (0x803, 0x1f),
        }
    }

    // 2024-11-23 17:05:09 UTC
    const T: i64 = 1732381509;

    #[test]
    fn recent_file() {
        let mut out = Vec::new();
        list_line(
            &entry("a b.txt", Kind::File, 12, T, 0o644),
            T + 60,
            &mut out,
        );
        assert_eq!(
            out,
            b"-rw-r--r--    1 ftp      ftp                12 Nov 23 17:05 a b.txt\r\n"
        );
    }

    #[test]
    fn old_dir_shows_year_and_padded_day() {
        let mut out = Vec::new();
        let mut e = entry("d", Kind::Dir, 4096, 946684800, 0o755);
        e.nlink = 3;
        list_line(&e, T, &mut out);
        assert_eq!(
            out,
            b"drwxr-xr-x    3 ftp      ftp              4096 Jan  1  2000 d\r\n"
        );
    }

    #[test]
    fn future_file_far_ahead_shows_year() {
        let mut out = Vec::new();
        list_line(
            &entry("f", Kind::File, 0, T + 400 * 86400, 0o600),
            T,
            &mut out,
        );
        assert!(
            out.ends_with(b" 2025 f\r\n"),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }

    #[test]
    fn special_bits() {
        let mut out = Vec::new();
        list_line(&entry("s", Kind::Dir, 0, T, 0o7777), T, &mut out);
        assert!(out.starts_with(b"drwsrwsrwt "));
        out.clear();
        list_line(&entry("s", Kind::File, 0, T, 0o7666), T, &mut out);
        assert!(out.starts_with(b"-rwSrwSrwT "));
    }

    #[test]
    fn out_of_range_times_are_clamped() {
        let mut out = Vec::new();
        time_val(-252_160_906_775, &mut out);
        assert_eq!(out, b"00000101000000");
        out.clear();
        time_val(i64::MAX, &mut out);
        assert_eq!(out, b"99991231235959");
        out.clear();
        list_line(&entry("x", Kind::File, 0, i64::MIN, 0o644), T, &mut out);
        assert!(
            out.ends_with(b"Jan  1  0000 x\r\n"),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }

    #[test]
    fn nlst() {
        let mut out = Vec::new();
        nlst_line(b"-la", &mut out);
        assert_eq!(out, b"-la\r\n");
    }

    #[test]
    fn mlsx_facts() {
        let mut out = Vec::new();
        facts_line(
            &entry("é.txt", Kind::File, 5, T, 0o644),
            Facts::default(),
            b"adfrw",
            "é.txt".as_bytes(),
            &mut out,
        );
        assert_eq!(
            out,
            "type=file;size=5;modify=20241123170509;perm=adfrw;unique=803U1f; é.txt".as_bytes()
        );
        out.clear();
        let facts = Facts::select(&[b"type".to_vec(), b"modify".to_vec()]);
        facts_line(
            &entry("d", Kind::Dir, 4096, T, 0o755),
            facts,
            b"el",
            b"d",
            &mut out,
        );
        assert_eq!(out, b"type=dir;modify=20241123170509; d");
    }

    #[test]
    fn feat_text() {
        assert_eq!(
            Facts::default().feat(),
            "type*;size*;modify*;perm*;unique*;"
        );
        let f = Facts::select(&[b"size".to_vec(), b"bogus".to_vec()]);
        assert_eq!(f.feat(), "type;size*;modify;perm;unique;");
        assert_eq!(f.enabled(), "size;");
    }
}
