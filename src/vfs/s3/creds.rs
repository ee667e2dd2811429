//! S3 credentials and what keeps them out of logs: [`Secret`] (loaded from a
//! `credentials_file` or the environment, with a Debug that hides it), the key provider
//! handed to opendal, and [`redact`], which every S3 error text goes through before it
//! reaches a log line, a hook or a reply. Makes no request.

use crate::config::StorageConfig;

/// Access key and secret of a storage.
#[derive(Clone)]
pub struct Secret {
    pub key: String,
    pub secret: String,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// From the storage's `credentials_file` (`access_key_id = ...` and
    /// `secret_access_key = ...` lines), else from `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY`.
    pub fn load(c: &StorageConfig) -> Result<Secret, String> {
        if let Some(path) = &c.credentials_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read credentials_file {}: {e}", path.display()))?;
            let mut key = None;
            let mut secret = None;
            for line in text.lines() {
                let Some((k, v)) = line.split_once('=') else {
                    continue;
                };
                let v = v.trim().trim_matches('"').to_string();
                match k.trim() {
                    "access_key_id" | "aws_access_key_id" => key = Some(v),
                    "secret_access_key" | "aws_secret_access_key" => secret = Some(v),
                    _ => {}
                }
            }
            return match (key, secret) {
                (Some(key), Some(secret)) => Ok(Secret { key, secret }),
                _ => Err(format!(
                    "credentials_file {} needs access_key_id and secret_access_key",
                    path.display()
                )),
            };
        }
        match (
            std::env::var("AWS_ACCESS_KEY_ID"),
            std::env::var("AWS_SECRET_ACCESS_KEY"),
        ) {
            (Ok(key), Ok(secret)) => Ok(Secret { key, secret }),
            _ => Err("no credentials: set credentials_file, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into()),
        }
    }
}

/// The key opendal signs with. reqsign's own static provider shows the secret in its Debug,
/// which reqsign logs (at debug level) each time it loads the key.
pub(super) struct StaticKey(reqsign_aws_v4::Credential);

impl StaticKey {
    pub(super) fn new(secret: &Secret) -> StaticKey {
        StaticKey(reqsign_aws_v4::Credential {
            access_key_id: secret.key.clone(),
            secret_access_key: secret.secret.clone(),
            ..Default::default()
        })
    }
}

impl std::fmt::Debug for StaticKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StaticKey(..)")
    }
}

impl reqsign_core::ProvideCredential for StaticKey {
    type Credential = reqsign_aws_v4::Credential;

    async fn provide_credential(
        &self,
        _: &reqsign_core::Context,
    ) -> reqsign_core::Result<Option<Self::Credential>> {
        Ok(Some(self.0.clone()))
    }
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
    use crate::vfs::s3::ObjectStore;

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

    #[test]
    fn secrets_do_not_print() {
        let s = Secret {
            key: "AKIA".into(),
            secret: "hunter2".into(),
        };
        assert!(!format!("{s:?}").contains("hunter2"));
        let store = ObjectStore::memory();
        assert!(!format!("{store:?}").contains("Credentials"), "{store:?}");
    }
}
