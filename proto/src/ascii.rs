//! TYPE A line-ending conversion (RFC 959 section 3.1.1.1): the file keeps Unix `LF`, the
//! wire carries `CRLF`. Both directions work chunk by chunk into a caller's buffer, so a
//! transfer never allocates per chunk.

/// Encodes file bytes for the wire: every `LF` becomes `CRLF`. Appends to `out`.
/// Blind conversion keeps round trips exact: a stored `CRLF` goes out as `CR CRLF` and comes
/// back as `CRLF`.
pub fn encode(input: &[u8], out: &mut Vec<u8>) {
    let mut rest = input;
    while let Some(i) = rest.iter().position(|b| *b == b'\n') {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
}

/// Decodes wire bytes for the file: `CRLF` becomes `LF`; a lone `CR` is kept. Holds a `CR`
/// that ends a chunk until the next chunk shows what follows it.
#[derive(Debug, Default)]
pub struct Decoder {
    pending_cr: bool,
}

impl Decoder {
    /// Converts one chunk, appending to `out`.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &b in input {
            if self.pending_cr {
                self.pending_cr = false;
                if b != b'\n' {
                    out.push(b'\r');
                }
            }
            if b == b'\r' {
                self.pending_cr = true;
            } else {
                out.push(b);
            }
        }
    }

    /// Flushes a trailing `CR` at the end of the transfer.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.pending_cr) {
            out.push(b'\r');
        }
    }
}

/// How many bytes `encode` would produce for `input` (SIZE in TYPE A, REST offsets).
pub fn encoded_len(input: &[u8]) -> u64 {
    input.len() as u64 + input.iter().filter(|b| **b == b'\n').count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_lf() {
        let mut out = Vec::new();
        encode(b"a\nb\r\nc", &mut out);
        assert_eq!(out, b"a\r\nb\r\r\nc");
        assert_eq!(encoded_len(b"a\nb\r\nc"), out.len() as u64);
    }

    #[test]
    fn decode_across_chunks() {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        d.decode(b"a\r", &mut out);
        d.decode(b"\nb\rc\r", &mut out);
        d.decode(b"\r\n", &mut out);
        d.finish(&mut out);
        assert_eq!(out, b"a\nb\rc\r\n");
        let mut out = Vec::new();
        let mut d = Decoder::default();
        d.decode(b"x\r", &mut out);
        d.finish(&mut out);
        assert_eq!(out, b"x\r");
    }

    #[test]
    fn round_trip() {
        let original = b"line1\nline2\r\n\rend\n";
        let mut wire = Vec::new();
        encode(original, &mut wire);
        let mut back = Vec::new();
        let mut d = Decoder::default();
        for chunk in wire.chunks(3) {
            d.decode(chunk, &mut back);
        }
        d.finish(&mut back);
        assert_eq!(back, original);
    }
}
