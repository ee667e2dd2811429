//! Configuration errors in words a person understands: "did you mean" for a mistyped key,
//! types named as TOML writes them, and an address range whose prefix is the problem.
//! Pure text in, text out; `Config::from_toml` applies it to serde's messages.

/// Rewrites one TOML/serde error message; `snippet` is the source text the error points
/// at (empty when unknown).
pub fn humanize(message: &str, snippet: &str) -> String {
    if let Some(m) = unknown_key(message) {
        return m;
    }
    if message.contains("invalid IP address syntax")
        && let Some(m) = bad_network(snippet.trim().trim_matches('"'))
    {
        return m;
    }
    types_in_toml_terms(message)
}

/// Where in `text` a checked value sits, from the start of its message: `user `NAME`` and
/// `storage `NAME`` find that block's `name = "NAME"` line, `listener ADDR` its address,
/// a leading `key:` or `key ` the line that sets the key. 1-based line and column.
pub fn locate(text: &str, message: &str) -> Option<(usize, usize)> {
    let find = |needle: &dyn Fn(&str) -> bool| locate_in(text, needle);
    for block in ["user `", "storage `"] {
        if let Some(rest) = message.strip_prefix(block)
            && let Some((name, _)) = rest.split_once('`')
        {
            let quoted = format!("\"{name}\"");
            return find(&|l: &str| {
                l.starts_with("name") && l.contains('=') && l.contains(&quoted)
            });
        }
    }
    if let Some(rest) = message.strip_prefix("listener ") {
        let addr = rest.split([':', ' ']).next().unwrap_or("");
        let addr = rest.split_once(": ").map_or(addr, |(a, _)| a);
        return find(&|l: &str| l.contains(addr) && l.contains('='));
    }
    let key: String = message
        .chars()
        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
        .collect();
    if key.len() < 3 {
        return None;
    }
    // A top-level key: before the first table header, so `root` is never found in a
    // `[[user]]` block.
    let top_len: usize = text
        .split_inclusive('\n')
        .take_while(|l| !l.trim_start().starts_with('['))
        .map(str::len)
        .sum();
    let top = &text[..top_len];
    locate_in(top, &|l: &str| {
        l.strip_prefix(key.as_str())
            .is_some_and(|r| r.trim_start().starts_with('='))
    })
}

fn locate_in(text: &str, needle: &dyn Fn(&str) -> bool) -> Option<(usize, usize)> {
    text.lines()
        .enumerate()
        .find(|(_, l)| needle(l.trim_start()))
        .map(|(i, l)| (i + 1, l.len() - l.trim_start().len() + 1))
}

/// `unknown field `x`, expected one of `a`, `b`` → the closest key, if one is close.
fn unknown_key(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (key, rest) = rest.split_once('`')?;
    let known: Vec<&str> = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|k| !k.is_empty())
        .collect();
    let best = known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(key, k), *k))
        .min()
        .filter(|(d, k)| *d <= 2.max(k.len() / 4));
    Some(match best {
        Some((_, k)) => format!("unknown key `{key}`; did you mean `{k}`?"),
        None => format!(
            "unknown key `{key}` (the keys are listed in the README's configuration reference)"
        ),
    })
}

/// `127.0.0.0/33`: says which part is wrong.
fn bad_network(text: &str) -> Option<String> {
    let (addr, prefix) = text.split_once('/')?;
    let Ok(ip) = addr.parse::<std::net::IpAddr>() else {
        return Some(format!("`{text}`: `{addr}` is not an IP address"));
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    match prefix.parse::<u8>() {
        Ok(p) if p <= max => None,
        _ => Some(format!(
            "`{text}`: the prefix length after `/` must be 0 to {max} for an {} address",
            if ip.is_ipv4() { "IPv4" } else { "IPv6" }
        )),
    }
}

/// serde's Rust type names as TOML calls them.
fn types_in_toml_terms(message: &str) -> String {
    let mut m = message.to_string();
    for (rust, toml) in [
        ("expected usize", "expected a number (no quotes)"),
        ("expected u64", "expected a number (no quotes)"),
        ("expected u32", "expected a number (no quotes)"),
        ("expected u16", "expected a number (no quotes)"),
        ("expected u8", "expected a number (no quotes)"),
        ("expected i64", "expected a number (no quotes)"),
        ("expected f64", "expected a number (no quotes)"),
        ("expected a sequence", "expected a list [ … ]"),
        ("expected a boolean", "expected true or false"),
        ("expected a string", "expected a string in quotes"),
        ("invalid type: string", "found a string"),
        ("invalid type: integer", "found a number"),
        ("invalid type: boolean", "found true/false"),
        ("invalid type: sequence", "found a list"),
        ("invalid type: map", "found a table"),
    ] {
        m = m.replace(rust, toml);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semantic_errors_find_their_line() {
        let text = "root = \"/srv\"\nupload_mode = 0o4755\n[[user]]\nname = \"a\"\n\n[[user]]\n  name = \"b\"\n";
        assert_eq!(locate(text, "user `b`: password must be …"), Some((7, 3)));
        assert_eq!(locate(text, "upload_mode 0o4755: setuid …"), Some((2, 1)));
        assert_eq!(locate(text, "user `zz`: …"), None);
        assert_eq!(locate(text, "no key here"), None);
        // A global key set nowhere at the top is not found inside a user's block.
        let users_only = "[[user]]\nname = \"a\"\nroot = \"/x\"\n";
        assert_eq!(locate(users_only, "root ./ftp does not exist"), None);
    }

    #[test]
    fn messages() {
        assert_eq!(
            humanize(
                "unknown field `pasive_ports`, expected one of `listen`, `passive_ports`, `root`",
                ""
            ),
            "unknown key `pasive_ports`; did you mean `passive_ports`?"
        );
        assert!(
            humanize("unknown field `zzz`, expected one of `listen`, `root`", "")
                .contains("README")
        );
        assert_eq!(
            humanize("invalid type: string \"20\", expected usize", ""),
            "found a string \"20\", expected a number (no quotes)"
        );
        assert_eq!(
            humanize("invalid IP address syntax", "\"127.0.0.0/33\""),
            "`127.0.0.0/33`: the prefix length after `/` must be 0 to 32 for an IPv4 address"
        );
        assert!(humanize("invalid IP address syntax", "\"127.0.0.x/8\"").contains("not an IP"));
    }
}
