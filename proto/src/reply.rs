//! Replies and their encoder: the one writer of control-connection bytes.
//!
//! Owns multi-line framing (RFC 959 section 4.2), escaping of text that may carry
//! client-chosen names (CR, LF and Telnet IAC), and the quoting of 257 pathnames.

use crate::code::Code;

/// A reply: a code and one or more lines of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    code: Code,
    lines: Vec<Vec<u8>>,
}

impl Reply {
    /// A single-line reply.
    pub fn new(code: Code, text: impl Into<Vec<u8>>) -> Reply {
        Reply {
            code,
            lines: vec![text.into()],
        }
    }

    /// A multi-line reply: the first line opens it (`NNN-`), the last closes it (`NNN `),
    /// the lines between are sent as they are (escaped). Fewer than two lines make a
    /// single-line reply.
    pub fn multi(code: Code, lines: Vec<Vec<u8>>) -> Reply {
        let lines = if lines.is_empty() {
            vec![Vec::new()]
        } else {
            lines
        };
        Reply { code, lines }
    }

    pub fn code(&self) -> Code {
        self.code
    }

    /// The text of every line, for logs and tests.
    pub fn lines(&self) -> &[Vec<u8>] {
        &self.lines
    }

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let digits = self.code.digits();
        let last = self.lines.len() - 1;
        for (i, line) in self.lines.iter().enumerate() {
            if i == 0 || i == last {
                out.extend_from_slice(&digits);
                out.push(if i == last { b' ' } else { b'-' });
            } else if line.first().is_some_and(u8::is_ascii_digit) {
                // A middle line must not look like a closing "NNN " line.
                out.push(b' ');
            }
            escape_into(line, out);
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The wire form as a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// Escapes text for the control connection: CR becomes CR NUL and LF becomes NUL
/// (RFC 959 pathname convention, RFC 2640 section 3.1), IAC is doubled (Telnet).
pub fn escape_into(text: &[u8], out: &mut Vec<u8>) {
    for &b in text {
        match b {
            b'\r' => out.extend_from_slice(b"\r\0"),
            b'\n' => out.push(0),
            0xff => out.extend_from_slice(&[0xff, 0xff]),
            _ => out.push(b),
        }
    }
}

/// Quotes a pathname for a 257 reply: surrounded by `"`, embedded `"` doubled.
pub fn quote_path(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len() + 2);
    out.push(b'"');
    for &b in path {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line() {
        assert_eq!(
            Reply::new(Code::Ok, "NOOP ok.").to_bytes(),
            b"200 NOOP ok.\r\n"
        );
    }

    #[test]
    fn multi_line_framing() {
        let r = Reply::multi(
            Code::SystemStatus,
            vec![b"Features:".to_vec(), b" SIZE".to_vec(), b"End".to_vec()],
        );
        assert_eq!(r.to_bytes(), b"211-Features:\r\n SIZE\r\n211 End\r\n");
    }

    #[test]
    fn middle_line_starting_with_digits_is_indented() {
        let r = Reply::multi(
            Code::Help,
            vec![b"a".to_vec(), b"226 fake".to_vec(), b"z".to_vec()],
        );
        assert_eq!(r.to_bytes(), b"214-a\r\n 226 fake\r\n214 z\r\n");
    }

    #[test]
    fn two_lines() {
        let r = Reply::multi(Code::Ok, vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(r.to_bytes(), b"200-a\r\n200 b\r\n");
    }

    #[test]
    fn escaping() {
        let r = Reply::new(Code::FileActionOk, b"x\r\ny\xffz".to_vec());
        assert_eq!(r.to_bytes(), b"250 x\r\0\0y\xff\xffz\r\n");
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_path(b"/a\"b"), b"\"/a\"\"b\"");
        let mut text = quote_path(b"/say \"hi\"");
        text.extend_from_slice(b" created");
        assert_eq!(
            Reply::new(Code::PathCreated, text).to_bytes(),
            b"257 \"/say \"\"hi\"\"\" created\r\n"
        );
    }
}
