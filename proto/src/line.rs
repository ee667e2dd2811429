//! Control-line framing: turns the bytes of a control connection into command lines.
//!
//! Owns end-of-line handling (CRLF or a bare LF), Telnet IAC stripping (RFC 854 as used by
//! RFC 959) and the cap on line length. It never touches a socket: the connection feeds it
//! bytes and takes lines out.

/// The longest control line accepted, CRLF excluded. Longer lines are discarded whole and
/// reported as [`Frame::TooLong`]; memory stays bounded whatever the peer sends.
pub const MAX_LINE: usize = 4096;

const IAC: u8 = 255;
const WILL: u8 = 251;
const DONT: u8 = 254;

/// One framed unit of the control stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete line without its line ending and with Telnet commands removed.
    Line(Vec<u8>),
    /// A line longer than [`MAX_LINE`] was discarded.
    TooLong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Telnet {
    Data,
    /// Just saw IAC.
    Iac,
    /// Saw IAC WILL/WONT/DO/DONT: the next byte is the option code.
    Option,
}

/// Incremental framer: feed it whatever arrived, then pull lines until it has none.
#[derive(Debug)]
pub struct LineFramer {
    buf: Vec<u8>,
    telnet: Telnet,
    /// Set once the current line passed the cap; bytes are dropped until its end.
    overflow: bool,
    max: usize,
}

impl Default for LineFramer {
    fn default() -> Self {
        Self::new(MAX_LINE)
    }
}

impl LineFramer {
    /// A framer with a custom cap (tests and callers that need a tighter bound).
    pub fn new(max: usize) -> Self {
        LineFramer {
            buf: Vec::new(),
            telnet: Telnet::Data,
            overflow: false,
            max,
        }
    }

    /// Feeds bytes and returns how many were consumed: it stops right after the first
    /// complete line so the caller can act on it (a TLS upgrade must not swallow what
    /// follows `AUTH`). Call [`LineFramer::take`] after a return that ended a line.
    pub fn push(&mut self, input: &[u8]) -> (usize, Option<Frame>) {
        for (i, &b) in input.iter().enumerate() {
            if let Some(frame) = self.byte(b) {
                return (i + 1, Some(frame));
            }
        }
        (input.len(), None)
    }

    /// Whether part of a line is buffered (used to tell a clean close from a cut one).
    pub fn is_mid_line(&self) -> bool {
        !self.buf.is_empty() || self.overflow
    }

    fn byte(&mut self, b: u8) -> Option<Frame> {
        match self.telnet {
            Telnet::Iac => {
                self.telnet = Telnet::Data;
                match b {
                    IAC => self.keep(IAC),
                    WILL..=DONT => self.telnet = Telnet::Option,
                    // IP, DM, AO, NOP, …: commands with no data byte; drop them.
                    _ => {}
                }
                None
            }
            Telnet::Option => {
                self.telnet = Telnet::Data;
                None
            }
            Telnet::Data => match b {
                IAC => {
                    self.telnet = Telnet::Iac;
                    None
                }
                b'\n' => Some(self.finish()),
                _ => {
                    self.keep(b);
                    None
                }
            },
        }
    }

    fn keep(&mut self, b: u8) {
        if self.overflow {
            return;
        }
        if self.buf.len() > self.max {
            // One byte of slack lets a trailing CR of a max-length line fit.
            self.overflow = true;
            self.buf = Vec::new();
            return;
        }
        self.buf.push(b);
    }

    fn finish(&mut self) -> Frame {
        if std::mem::take(&mut self.overflow) {
            return Frame::TooLong;
        }
        let mut line = std::mem::take(&mut self.buf);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.len() > self.max {
            return Frame::TooLong;
        }
        Frame::Line(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8]) -> Vec<Frame> {
        let mut f = LineFramer::new(16);
        let mut out = Vec::new();
        let mut rest = input;
        loop {
            let (n, frame) = f.push(rest);
            rest = &rest[n..];
            match frame {
                Some(fr) => out.push(fr),
                None => break,
            }
        }
        out
    }

    fn line(s: &[u8]) -> Frame {
        Frame::Line(s.to_vec())
    }

    #[test]
    fn crlf_and_bare_lf() {
        assert_eq!(
            all(b"USER a\r\nPASS b\nNOOP"),
            vec![line(b"USER a"), line(b"PASS b")]
        );
    }

    #[test]
    fn stops_after_each_line() {
        let mut f = LineFramer::default();
        let (n, fr) = f.push(b"AUTH TLS\r\n\x16\x03\x01");
        assert_eq!(n, 10);
        assert_eq!(fr, Some(line(b"AUTH TLS")));
    }

    #[test]
    fn split_across_pushes() {
        let mut f = LineFramer::default();
        assert_eq!(f.push(b"RE"), (2, None));
        assert!(f.is_mid_line());
        assert_eq!(f.push(b"TR x\r"), (5, None));
        assert_eq!(f.push(b"\n"), (1, Some(line(b"RETR x"))));
        assert!(!f.is_mid_line());
    }

    #[test]
    fn telnet_commands_stripped() {
        // IAC IP IAC DM before ABOR, as clients send it with urgent data.
        assert_eq!(all(b"\xff\xf4\xff\xf2ABOR\r\n"), vec![line(b"ABOR")]);
        // Option negotiation is three bytes.
        assert_eq!(all(b"\xff\xfb\x01NOOP\r\n"), vec![line(b"NOOP")]);
        // IAC IAC is a literal 0xFF data byte.
        assert_eq!(all(b"STOR a\xff\xffb\r\n"), vec![line(b"STOR a\xffb")]);
    }

    #[test]
    fn iac_split_across_pushes() {
        let mut f = LineFramer::default();
        f.push(b"NO\xff");
        f.push(b"\xfb");
        f.push(b"\x03OP");
        assert_eq!(f.push(b"\n").1, Some(line(b"NOOP")));
    }

    #[test]
    fn over_long_line_is_one_error_then_framing_resumes() {
        let mut input = vec![b'a'; 100];
        input.extend_from_slice(b"\r\nNOOP\r\n");
        assert_eq!(all(&input), vec![Frame::TooLong, line(b"NOOP")]);
    }

    #[test]
    fn exactly_max_is_accepted() {
        let mut input = vec![b'a'; 16];
        input.extend_from_slice(b"\r\n");
        assert_eq!(all(&input), vec![line(&[b'a'; 16])]);
        let mut input = vec![b'a'; 17];
        input.extend_from_slice(b"\n");
        assert_eq!(all(&input), vec![Frame::TooLong]);
    }

    #[test]
    fn empty_lines_are_frames() {
        assert_eq!(all(b"\r\n\n"), vec![line(b""), line(b"")]);
    }
}
