//! S3 credentials and what keeps them out of logs: [`Secret`] (loaded from a
//! `credentials_file` or the environment, with a Debug that hides it) and the key provider
//! handed to opendal. Error texts go through [`crate::http::redact`] before they reach a
//! log line, a hook or a reply. Makes no request.

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::s3::ObjectStore;

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
