//! The one HTTP client wharf uses (reqwest): S3 calls, upload hooks and the admin command
//! line all build theirs here, so TLS goes through the process's one rustls provider.
//! And [`redact`], which every error text that may hold a URL goes through before a log
//! line sees it.

/// A client builder with rustls's ring provider installed (reqwest is built without a
/// provider of its own, so wharf has one TLS stack).
pub fn client() -> reqwest::ClientBuilder {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
}

/// An error and its causes on one line (reqwest's text leaves the cause out: a timeout,
/// a refused connection), redacted.
pub fn error_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    redact(&text)
}

/// Error text fit for a log line or a message. Every URL in it loses its user-info, query
/// and fragment: a presigned URL's query holds the access key id (`X-Amz-Credential`) and
/// a signature valid for an hour. Outside URLs, the value of any `…Credential=`,
/// `…Signature=`, `…Security-Token=` or `…AccessKeyId=` (an `Authorization` header, an
/// echoed canonical request) is masked.
pub fn redact(text: &str) -> String {
    mask_secret_values(&strip_url_queries(text))
}

fn strip_url_queries(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let end = after
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .unwrap_or(after.len());
        let (url, tail) = after.split_at(end);
        let (authority, path) = url.split_at(url.find(['/', '?', '#']).unwrap_or(url.len()));
        out.push_str(
            authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host),
        );
        let (path, query) = path.split_at(path.find(['?', '#']).unwrap_or(path.len()));
        out.push_str(path);
        // Punctuation closing the surrounding text, as in `(URL)`, stays.
        let kept = query.trim_end_matches([')', ']', '}', ',', ';', '.']);
        out.push_str(query.split_at(kept.len()).1);
        rest = tail;
    }
    out.push_str(rest);
    out
}

fn mask_secret_values(text: &str) -> String {
    const KEYS: [&str; 4] = [
        "credential=",
        "signature=",
        "security-token=",
        "accesskeyid=",
    ];
    // ASCII lower-casing keeps every byte offset.
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    while let Some(at) = KEYS
        .iter()
        .filter_map(|k| lower[from..].find(k).map(|i| from + i + k.len()))
        .min()
    {
        out.push_str(&text[from..at]);
        let len = text[at..]
            .find(|c: char| c.is_whitespace() || "&\"'<>,;)".contains(c))
            .unwrap_or(text.len() - at);
        if len > 0 {
            out.push_str("REDACTED");
        }
        from = at + len;
    }
    out.push_str(&text[from..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_strips_queries_and_credentials() {
        let presigned = "error sending request for url (http://127.0.0.1:3900/b/k%20x?\
            X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=GKKEY%2F20250101%2Fgarage%2Fs3%2Faws4_request\
            &X-Amz-Date=20250101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host\
            &X-Amz-Signature=0123abcd&uploads=)";
        assert_eq!(
            redact(presigned),
            "error sending request for url (http://127.0.0.1:3900/b/k%20x)"
        );
        assert_eq!(
            redact("context: { url: https://user:pw@[::1]:9000/b?list-type=2#f, called: x }"),
            "context: { url: https://[::1]:9000/b, called: x }"
        );
        assert_eq!(
            redact("http://h?a=1 and http://h/p"),
            "http://h and http://h/p"
        );
        assert_eq!(
            redact(
                "Authorization: AWS4-HMAC-SHA256 Credential=GKKEY/20250101/r/s3/aws4_request, \
                 SignedHeaders=host, Signature=0123abcd"
            ),
            "Authorization: AWS4-HMAC-SHA256 Credential=REDACTED, SignedHeaders=host, Signature=REDACTED"
        );
        assert_eq!(
            redact(
                "GET\n/b/k\nX-Amz-Credential=GKKEY%2F1&amp;X-Amz-Security-Token=tok&amp;AWSAccessKeyId=GKKEY"
            ),
            "GET\n/b/k\nX-Amz-Credential=REDACTED&amp;X-Amz-Security-Token=REDACTED&amp;AWSAccessKeyId=REDACTED"
        );
        assert_eq!(redact("no url, no secret: ok"), "no url, no secret: ok");
        assert_eq!(redact("trailing ://"), "trailing ://");
        assert_eq!(redact("é://é?é é"), "é://é é");
    }
}
