//! Shell-style name patterns for LIST and NLST arguments (`mget *.txt` sends `NLST *.txt`).
//!
//! Only the last path component is matched, and only when no file has that literal name:
//! a name that really contains `*` or `[` still works. MLSD never globs (RFC 3659).

/// Whether `name` holds a pattern character.
pub fn is_pattern(name: &[u8]) -> bool {
    name.iter().any(|b| matches!(b, b'*' | b'?' | b'['))
}

/// Matches `name` against `pattern` with `*`, `?` and `[...]` (`[!...]` negates, `a-z`
/// ranges). A leading dot is matched only by a literal dot, as in the shell.
pub fn matches(pattern: &[u8], name: &[u8]) -> bool {
    if name.first() == Some(&b'.') && pattern.first() != Some(&b'.') {
        return false;
    }
    // Iterative matcher with one backtrack point for the last `*`: linear in practice and
    // never recursive, so a hostile pattern cannot blow the stack.
    let (mut p, mut n) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some((p, n));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    n += 1;
                    continue;
                }
                b'[' => {
                    if let Some((ok, next)) = class(&pattern[p..], name[n]) {
                        if ok {
                            p += next;
                            n += 1;
                            continue;
                        }
                    } else if name[n] == b'[' {
                        // An unclosed `[` is a literal.
                        p += 1;
                        n += 1;
                        continue;
                    }
                }
                c if c == name[n] => {
                    p += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, sn)) => {
                p = sp + 1;
                n = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

/// Matches one `[...]` class at the start of `pat` against `c`: `(matched, class length)`,
/// or `None` when the class is not closed.
fn class(pat: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(pat.get(i), Some(b'!') | Some(b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < pat.len() {
        let lo = pat[i];
        if lo == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if pat.get(i + 1) == Some(&b'-') && pat.get(i + 2).is_some_and(|h| *h != b']') {
            let hi = pat[i + 2];
            matched |= lo <= c && c <= hi;
            i += 3;
        } else {
            matched |= lo == c;
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(matches(b"*.txt", b"a.txt"));
        assert!(!matches(b"*.txt", b"a.txt.bak"));
        assert!(matches(b"a?c", b"abc"));
        assert!(!matches(b"a?c", b"ac"));
        assert!(matches(b"[ab]*", b"banana"));
        assert!(!matches(b"[!ab]*", b"banana"));
        assert!(matches(b"file[0-9]", b"file7"));
        assert!(!matches(b"file[0-9]", b"filex"));
        assert!(matches(b"*", b"x"));
        assert!(!matches(b"*", b".hidden"));
        assert!(matches(b".*", b".hidden"));
        assert!(matches(b"a*b*c", b"axxbyyc"));
        assert!(!matches(b"a*b*c", b"axxbyy"));
        assert!(matches(b"[x", b"[x"));
        assert!(matches(b"**", b""));
        assert!(is_pattern(b"*.txt") && !is_pattern(b"plain"));
    }

    #[test]
    fn hostile_pattern_is_fast() {
        let pattern = b"*a*a*a*a*a*a*a*a*a*a*a*a*b".to_vec();
        let name = vec![b'a'; 4000];
        assert!(!matches(&pattern, &name));
    }
}
