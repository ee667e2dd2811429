//! The S3 backend: a bucket (and key prefix) as a root, with FTP semantics mapped onto
//! objects without losing anything.
//!
//! opendal does the object work (stat, paginated listings, ranged reads, single-part
//! writes, copies, deletes, `dir/` markers). Uploads that may be resumed need the
//! multipart calls themselves (upload id, parts, part copy), which opendal keeps private:
//! rusty-s3 signs those and reqwest sends them. The jail has already normalised every path;
//! this module only turns a [`VPath`] into a key.
//!
//! Directories: `dir/` markers written by MKD, and any prefix with objects beneath it.
//! Uploads: objects appear only when complete. An interrupted multipart upload is left in
//! S3 (invisible) so that it can be resumed; S3 itself is the record of its parts
//! (ListMultipartUploads, ListParts), so no second bookkeeping can disagree with it.
//!
//! Logs: an error's text goes through [`redact`] first, since request URLs (a presigned
//! one carries the access key id and a signature valid for an hour) end up in it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt};
use opendal::{ErrorKind, Operator};
use rusty_s3::S3Action;
use wharf_proto::listing::{Entry, Kind};

use super::VPath;
use crate::config::StorageConfig;
use crate::error::Error;

/// The smallest part S3 accepts (all but the last part of an upload).
pub const MIN_PART: usize = 5 << 20;
/// The largest range one UploadPartCopy may take.
const MAX_COPY_PART: u64 = 5 << 30;
/// How long a presigned multipart request stays valid.
const SIGNED_FOR: Duration = Duration::from_secs(3600);

/// One S3 location as a root.
#[derive(Debug)]
pub struct ObjectStore {
    op: Operator,
    api: S3Api,
    /// Bytes per multipart part (≥ 5 MiB).
    pub part_size: usize,
    /// Parts of one upload sent at once; with the part being filled, the memory one
    /// upload holds is at most `part_size × (parts_in_flight + 1)`.
    pub parts_in_flight: usize,
    /// Renaming a directory moves at most this many objects (0: only empty directories).
    pub rename_dir_limit: usize,
    /// Shown in logs and to hooks: `s3://bucket/prefix`.
    pub location: String,
    /// Uploads may be multipart (and so resumable): false only for the memory service
    /// of the unit tests.
    multipart: bool,
}

struct S3Api {
    bucket: rusty_s3::Bucket,
    creds: rusty_s3::Credentials,
    http: reqwest::Client,
    /// The key prefix: empty, or ending in `/`.
    prefix: String,
    retries: u32,
}

impl std::fmt::Debug for S3Api {
    // rusty-s3's Credentials show the access key id.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Api")
            .field("bucket", &self.bucket.name())
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

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
struct StaticKey(reqsign_aws_v4::Credential);

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

/// Installs what opendal and reqwest need once per process: the services registry and
/// rustls's ring provider (reqwest is built without a provider of its own).
fn install_once() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        opendal::install_default();
    });
}

fn storage_error(e: opendal::Error) -> Error {
    match e.kind() {
        ErrorKind::NotFound => Error::NotFound,
        ErrorKind::PermissionDenied => Error::Access,
        ErrorKind::AlreadyExists => Error::Exists,
        ErrorKind::IsADirectory => Error::IsADirectory,
        ErrorKind::NotADirectory => Error::NotADirectory,
        _ => {
            tracing::warn!(error = %redact(&e.to_string()), "object storage request failed");
            Error::Storage
        }
    }
}

/// An error and its causes on one line (reqwest's text leaves the cause out: a timeout,
/// a refused connection), redacted.
fn with_causes(e: &dyn std::error::Error) -> String {
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

impl ObjectStore {
    /// Builds the store from its configuration; no request is made (see [`probe`]).
    ///
    /// [`probe`]: ObjectStore::probe
    pub fn new(c: &StorageConfig, secret: &Secret) -> Result<ObjectStore, String> {
        install_once();
        let bucket = c.bucket.clone().ok_or("an s3 storage needs `bucket`")?;
        let region = c.region.clone().unwrap_or_else(|| "us-east-1".into());
        let endpoint = c
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let mut prefix = c.prefix.clone().unwrap_or_default();
        prefix = prefix.trim_matches('/').to_string();
        if !prefix.is_empty() {
            prefix.push('/');
        }
        let timeout = Duration::from_secs(c.timeout.max(1));
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("http client: {e}"))?;
        let mut builder = opendal::services::S3::default()
            .bucket(&bucket)
            .endpoint(&endpoint)
            .region(&region)
            .root(&format!("/{prefix}"))
            .credential_provider_chain(reqsign_core::ProvideCredentialChain::new().push(StaticKey(
                reqsign_aws_v4::Credential {
                    access_key_id: secret.key.clone(),
                    secret_access_key: secret.secret.clone(),
                    ..Default::default()
                },
            )))
            .disable_config_load();
        if !c.path_style {
            builder = builder.enable_virtual_host_style();
        }
        let transport = opendal_http_transport_reqwest::ReqwestTransport::new(http.clone());
        let op = Operator::new(builder)
            .map_err(|e| format!("s3 storage: {e}"))?
            .with_context(
                opendal::OperationContext::new()
                    .with_http_transport(opendal::HttpTransporter::new(transport)),
            )
            .layer(
                opendal::layers::TimeoutLayer::new()
                    .with_timeout(timeout)
                    .with_io_timeout(timeout),
            )
            .layer(
                opendal::layers::RetryLayer::new()
                    .with_max_times(c.retries as usize)
                    .with_jitter()
                    // Its default notice logs the error's request URL as it is.
                    .with_notify(|ev: opendal::layers::RetryEvent| {
                        tracing::warn!(
                            operation = %ev.op,
                            attempt = ev.attempt,
                            error = %redact(&ev.err.to_string()),
                            "object storage request retried"
                        );
                    }),
            );
        let url_style = if c.path_style {
            rusty_s3::UrlStyle::Path
        } else {
            rusty_s3::UrlStyle::VirtualHost
        };
        let endpoint_url = endpoint
            .parse()
            .map_err(|e| format!("endpoint `{endpoint}`: {e}"))?;
        let rbucket = rusty_s3::Bucket::new(endpoint_url, url_style, bucket.clone(), region)
            .map_err(|e| format!("bucket `{bucket}`: {e}"))?;
        let location = format!("s3://{bucket}/{prefix}");
        Ok(ObjectStore {
            op,
            api: S3Api {
                bucket: rbucket,
                creds: rusty_s3::Credentials::new(secret.key.clone(), secret.secret.clone()),
                http,
                prefix,
                retries: c.retries,
            },
            part_size: c.part_size.max(MIN_PART),
            parts_in_flight: c.parts_in_flight.max(1),
            rename_dir_limit: c.rename_dir_limit,
            location,
            multipart: true,
        })
    }

    /// A store on opendal's memory service, for the mapping's unit tests: no multipart
    /// (uploads are single writes), no network.
    #[cfg(test)]
    pub fn memory() -> ObjectStore {
        install_once();
        let op = Operator::new(opendal::services::Memory::default()).unwrap();
        ObjectStore {
            op,
            api: S3Api {
                bucket: rusty_s3::Bucket::new(
                    "http://127.0.0.1:1".parse().unwrap(),
                    rusty_s3::UrlStyle::Path,
                    "mem",
                    "us-east-1",
                )
                .unwrap(),
                creds: rusty_s3::Credentials::new("k", "s"),
                http: reqwest::Client::new(),
                prefix: String::new(),
                retries: 0,
            },
            part_size: MIN_PART,
            parts_in_flight: 1,
            rename_dir_limit: 0,
            location: "memory://".into(),
            multipart: false,
        }
    }

    /// Checks that the bucket is reachable with these credentials (a one-key listing).
    pub async fn probe(&self) -> Result<(), String> {
        let mut l = self
            .op
            .lister_with("/")
            .limit(1)
            .await
            .map_err(|e| redact(&e.to_string()))?;
        l.try_next().await.map_err(|e| redact(&e.to_string()))?;
        Ok(())
    }

    /// The object key of `path` relative to the store's root (no leading `/`).
    fn rel(path: &VPath) -> Result<String, Error> {
        let bytes = &path.as_bytes()[1.min(path.as_bytes().len())..];
        String::from_utf8(bytes.to_vec()).map_err(|_| Error::InvalidName)
    }

    /// The listing prefix of a directory: `a/b/`, or `/` for the root.
    fn dir_key(path: &VPath) -> Result<String, Error> {
        if path.is_root() {
            return Ok("/".into());
        }
        Ok(format!("{}/", ObjectStore::rel(path)?))
    }

    /// The full key (with the store's prefix) for the multipart calls.
    fn full_key(&self, path: &VPath) -> Result<String, Error> {
        Ok(format!("{}{}", self.api.prefix, ObjectStore::rel(path)?))
    }

    pub async fn stat(&self, path: &VPath) -> Result<Entry, Error> {
        let name = path.file_name().unwrap_or(b"/").to_vec();
        if path.is_root() {
            return Ok(dir_entry(name, ""));
        }
        let key = ObjectStore::rel(path)?;
        match self.op.stat(&key).await {
            Ok(m) if !m.is_dir() => return Ok(file_entry(name, &key, &m)),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(storage_error(e)),
        }
        if self.is_dir(path).await? {
            return Ok(dir_entry(name, &key));
        }
        Err(Error::NotFound)
    }

    /// A marker `dir/` or any key beneath it makes a directory.
    async fn is_dir(&self, path: &VPath) -> Result<bool, Error> {
        if path.is_root() {
            return Ok(true);
        }
        let mut l = self
            .op
            .lister_with(&ObjectStore::dir_key(path)?)
            .limit(1)
            .await
            .map_err(storage_error)?;
        Ok(l.try_next().await.map_err(storage_error)?.is_some())
    }

    /// Entries of a directory, sorted; `NotFound` if the directory does not exist.
    pub async fn list(&self, path: &VPath) -> Result<Vec<Entry>, Error> {
        let mut entries = self.entries(path).await?;
        let mut out = Vec::new();
        while let Some(e) = entries.next().await? {
            out.push(e);
        }
        if !entries.seen {
            return Err(Error::NotFound);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The entries of a directory, read a page (1,000 keys) at a time.
    pub async fn entries(&self, path: &VPath) -> Result<Entries, Error> {
        let dir = ObjectStore::dir_key(path)?;
        let lister = self.op.lister(&dir).await.map_err(storage_error)?;
        Ok(Entries {
            lister,
            dir: dir.trim_start_matches('/').to_string(),
            seen: path.is_root(),
        })
    }

    pub async fn exists(&self, path: &VPath) -> Result<bool, Error> {
        match self.stat(path).await {
            Ok(_) => Ok(true),
            Err(Error::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// MKD: a `dir/` marker, and one for each missing parent (as on disk, where MKD
    /// makes missing parents), so that removing the new directory leaves its parents.
    pub async fn mkdir(&self, path: &VPath) -> Result<(), Error> {
        if self.exists(path).await? {
            return Err(Error::Exists);
        }
        let mut missing = vec![path.clone()];
        let mut up = path.parent();
        while !up.is_root() {
            match self.stat(&up).await {
                Ok(e) if e.kind == Kind::Dir => break,
                Ok(_) => return Err(Error::NotADirectory),
                Err(Error::NotFound) => {}
                Err(e) => return Err(e),
            }
            missing.push(up.clone());
            up = up.parent();
        }
        for dir in missing.iter().rev() {
            self.op
                .create_dir(&ObjectStore::dir_key(dir)?)
                .await
                .map_err(storage_error)?;
        }
        Ok(())
    }

    /// RMD: only an empty directory (a listing of at most two keys tells), then its marker.
    pub async fn rmdir(&self, path: &VPath) -> Result<(), Error> {
        if path.is_root() {
            return Err(Error::Access);
        }
        let dir = ObjectStore::dir_key(path)?;
        let mut l = self
            .op
            .lister_with(&dir)
            .limit(2)
            .await
            .map_err(storage_error)?;
        let mut marker = false;
        let mut seen = 0;
        while let Some(item) = l.try_next().await.map_err(storage_error)? {
            if item.path().trim_start_matches('/') == dir {
                marker = true;
            } else {
                return Err(Error::NotEmpty);
            }
            seen += 1;
            if seen >= 2 {
                break;
            }
        }
        if !marker {
            return Err(match self.op.stat(&ObjectStore::rel(path)?).await {
                Ok(_) => Error::NotADirectory,
                Err(_) => Error::NotFound,
            });
        }
        self.op.delete(&dir).await.map_err(storage_error)
    }

    pub async fn remove_file(&self, path: &VPath) -> Result<(), Error> {
        let e = self.stat(path).await?;
        if e.kind == Kind::Dir {
            return Err(Error::IsADirectory);
        }
        self.op
            .delete(&ObjectStore::rel(path)?)
            .await
            .map_err(storage_error)
    }

    /// RNFR/RNTO: a server-side copy (multipart above 5 GiB), then the source is deleted,
    /// only after the copy succeeded. A directory moves only when empty, or when it holds
    /// at most `rename_dir_limit` objects.
    pub async fn rename(&self, from: &VPath, to: &VPath) -> Result<(), Error> {
        if from.is_root() || to.is_root() || to.is_within(from) {
            return Err(Error::Access);
        }
        let e = self.stat(from).await?;
        if e.kind != Kind::Dir {
            let (f, t) = (ObjectStore::rel(from)?, ObjectStore::rel(to)?);
            self.copy(&f, &t).await?;
            return self.op.delete(&f).await.map_err(storage_error);
        }
        if self.exists(to).await? {
            return Err(Error::Exists);
        }
        let (fd, td) = (ObjectStore::dir_key(from)?, ObjectStore::dir_key(to)?);
        let keys: Vec<String> = self
            .op
            .lister_with(&fd)
            .recursive(true)
            .limit(self.rename_dir_limit + 2)
            .await
            .map_err(storage_error)?
            .take(self.rename_dir_limit + 2)
            .map_ok(|e| e.path().trim_start_matches('/').to_string())
            .try_collect()
            .await
            .map_err(storage_error)?;
        let objects = keys.iter().filter(|k| **k != fd).count();
        if objects > self.rename_dir_limit {
            return Err(Error::NotEmpty);
        }
        self.op.create_dir(&td).await.map_err(storage_error)?;
        for k in keys.iter().filter(|k| **k != fd) {
            let dest = format!("{td}{}", &k[fd.len()..]);
            if k.ends_with('/') {
                self.op.create_dir(&dest).await.map_err(storage_error)?;
            } else {
                self.copy(k, &dest).await?;
            }
        }
        for k in keys.iter().filter(|k| **k != fd) {
            self.op.delete(k).await.map_err(storage_error)?;
        }
        let _ = self.op.delete(&fd).await;
        Ok(())
    }

    /// A server-side copy; a service without one (the tests' memory store) reads and writes.
    async fn copy(&self, from: &str, to: &str) -> Result<(), Error> {
        match self.op.copy(from, to).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::Unsupported => {
                let data = self.op.read(from).await.map_err(storage_error)?;
                self.op
                    .write(to, data)
                    .await
                    .map(|_| ())
                    .map_err(storage_error)
            }
            Err(e) => Err(storage_error(e)),
        }
    }

    /// RETR: a streamed GET, ranged from `offset`; no temporary file. One request: the
    /// object's length comes with its first response. Returns the stream and the length.
    pub async fn open_read(&self, path: &VPath, offset: u64) -> Result<(ByteStream, u64), Error> {
        if path.is_root() {
            return Err(Error::IsADirectory);
        }
        let opened = if self.multipart {
            self.api.get(&self.full_key(path)?, offset).await
        } else {
            // The tests' memory store, through opendal (a stat, then the read).
            self.memory_read(path, offset).await
        };
        match opened {
            Err(Error::NotFound) if self.is_dir(path).await? => Err(Error::IsADirectory),
            other => other,
        }
    }

    async fn memory_read(&self, path: &VPath, offset: u64) -> Result<(ByteStream, u64), Error> {
        let key = ObjectStore::rel(path)?;
        let len = self
            .op
            .stat(&key)
            .await
            .map_err(storage_error)?
            .content_length();
        if offset >= len {
            return Ok((Box::pin(futures_util::stream::empty()), len));
        }
        let reader = self.op.reader(&key).await.map_err(storage_error)?;
        let stream = reader
            .into_bytes_stream(offset..len)
            .await
            .map_err(storage_error)?;
        Ok((Box::pin(stream), len))
    }

    /// The upload of `path` that may be resumed, if one is newer than the object there.
    pub async fn pending(&self, path: &VPath) -> Result<Option<Pending>, Error> {
        if !self.multipart {
            return Ok(None);
        }
        let key = self.full_key(path)?;
        let uploads = self.api.list_uploads(&key).await?;
        let Some(latest) = uploads
            .into_iter()
            .filter(|u| u.key == key)
            .max_by_key(|u| u.initiated)
        else {
            return Ok(None);
        };
        // A complete upload made after the interrupted one replaced it.
        match self.op.stat(&ObjectStore::rel(path)?).await {
            Ok(m) if !m.is_dir() && mtime_of(&m) >= unix(latest.initiated) => return Ok(None),
            _ => {}
        }
        let parts = match self.api.list_parts(&key, &latest.upload_id).await {
            Err(Error::NotFound) => return Ok(None), // aborted meanwhile
            other => other?,
        };
        let mut etags = Vec::new();
        let mut bytes = 0;
        for (i, p) in parts.iter().enumerate() {
            if usize::from(p.0) != i + 1 {
                break; // a gap: what follows is sent again
            }
            etags.push(p.1.clone());
            bytes += p.2;
        }
        Ok(Some(Pending {
            upload_id: latest.upload_id,
            etags,
            bytes,
        }))
    }

    /// SIZE: the bytes already stored of an interrupted upload that can resume, else the
    /// object's size.
    pub async fn size(&self, path: &VPath) -> Result<u64, Error> {
        let e = self.stat(path);
        let p = self.pending(path);
        let (e, p) = tokio::join!(e, p);
        match (e, p?) {
            (_, Some(p)) => Ok(p.bytes),
            (Ok(e), None) if e.kind == Kind::File => Ok(e.size),
            (Ok(_), None) => Err(Error::NotFound),
            (Err(e), None) => Err(e),
        }
    }

    /// Starts an upload to `path`: fresh (`At(0)`-like STOR), resuming an interrupted one
    /// (`resume_at`: the offset the client asks for; it must be where the stored parts
    /// end), or appending (APPE) to what is there.
    pub async fn upload(
        self: &Arc<ObjectStore>,
        path: &VPath,
        how: UploadStart,
    ) -> Result<Upload, Error> {
        if path.is_root() {
            return Err(Error::IsADirectory);
        }
        let key = self.full_key(path)?;
        let mut up = Upload {
            store: self.clone(),
            rel: ObjectStore::rel(path)?,
            key,
            upload_id: None,
            etags: Vec::new(),
            in_flight: tokio::task::JoinSet::new(),
            spare: Vec::new(),
            returning: Vec::new(),
            buf: BytesMut::new(),
            stored: 0,
        };
        match how {
            UploadStart::Fresh => {}
            UploadStart::ResumeAt(offset) => {
                let have = match self.pending(path).await? {
                    Some(p) if p.bytes == offset => {
                        up.resume(p);
                        return Ok(up);
                    }
                    Some(p) => p.bytes,
                    None => match self.stat(path).await {
                        Ok(e) if e.kind == Kind::File && e.size == offset => {
                            up.append_existing(e.size).await?;
                            return Ok(up);
                        }
                        Ok(e) if e.kind == Kind::File => e.size,
                        _ => 0,
                    },
                };
                return Err(Error::ResumeAt(have));
            }
            UploadStart::Append => {
                if let Some(p) = self.pending(path).await? {
                    up.resume(p);
                    return Ok(up);
                }
                match self.stat(path).await {
                    Ok(e) if e.kind == Kind::Dir => return Err(Error::IsADirectory),
                    Ok(e) => up.append_existing(e.size).await?,
                    Err(Error::NotFound) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(up)
    }

    /// Aborts the multipart uploads under this store's prefix that started more than
    /// `age` ago (interrupted uploads nobody resumed). Returns how many.
    pub async fn janitor(&self, age: Duration) -> Result<usize, Error> {
        let now = SystemTime::now();
        let mut n = 0;
        for u in self.api.list_uploads(&self.api.prefix).await? {
            if now.duration_since(u.initiated).unwrap_or_default() >= age {
                self.api.abort(&u.key, &u.upload_id).await?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// A directory's entries as S3 lists them (ListObjectsV2 with a delimiter, paginated).
pub struct Entries {
    lister: opendal::Lister,
    /// The directory's own key (`a/b/`), whose marker is not an entry.
    dir: String,
    /// Something was listed (or it is the root): the directory exists.
    seen: bool,
}

impl Entries {
    /// The next entry; `None` at the end.
    pub async fn next(&mut self) -> Result<Option<Entry>, Error> {
        while let Some(item) = self.lister.try_next().await.map_err(storage_error)? {
            self.seen = true;
            let own = item.path().trim_start_matches('/');
            if own == self.dir {
                continue; // the directory's own marker
            }
            let key = own.trim_end_matches('/');
            let name = key.rsplit('/').next().unwrap_or(key);
            if name.is_empty() {
                continue;
            }
            let m = item.metadata();
            return Ok(Some(if m.is_dir() {
                dir_entry(name.as_bytes().to_vec(), key)
            } else {
                file_entry(name.as_bytes().to_vec(), key, m)
            }));
        }
        Ok(None)
    }
}

/// A stream of object bytes.
pub type ByteStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = std::io::Result<Bytes>> + Send>>;

/// How an upload begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadStart {
    /// STOR: a new object (replacing the one there when it completes).
    Fresh,
    /// REST n + STOR: continue an interrupted upload whose stored parts end at n.
    ResumeAt(u64),
    /// APPE: continue an interrupted upload, or add to the object there.
    Append,
}

/// An interrupted upload S3 still holds.
#[derive(Debug, Clone)]
pub struct Pending {
    upload_id: String,
    /// ETags of parts 1, 2, … with no gap.
    etags: Vec<String>,
    /// Bytes in those parts: where a resumed upload goes on.
    pub bytes: u64,
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn mtime_of(m: &opendal::Metadata) -> i64 {
    m.last_modified()
        .map(|t| t.into_inner().as_second())
        .unwrap_or(0)
}

/// MLSD's `unique` fact for a key: objects have no inode, but a key names one object.
fn unique_of(key: &str, dir: bool) -> (u64, u64) {
    // FNV-1a: stable across runs and builds, unlike the std hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (u64::from(dir), h)
}

fn file_entry(name: Vec<u8>, key: &str, m: &opendal::Metadata) -> Entry {
    Entry {
        name,
        kind: Kind::File,
        size: m.content_length(),
        mtime: mtime_of(m),
        mode: 0o644,
        nlink: 1,
        unique: unique_of(key, false),
    }
}

/// Directories have no time of their own on S3: shown as the epoch.
fn dir_entry(name: Vec<u8>, key: &str) -> Entry {
    Entry {
        name,
        kind: Kind::Dir,
        size: 0,
        mtime: 0,
        mode: 0o755,
        nlink: 2,
        unique: unique_of(key, true),
    }
}

/// One upload in progress: bytes gather into a part; full parts go to S3 while the next
/// fills, at most `parts_in_flight` at once. Nothing is visible until [`Upload::finish`].
#[derive(Debug)]
pub struct Upload {
    store: Arc<ObjectStore>,
    /// The key for opendal (relative to the store's root) and for the multipart calls.
    rel: String,
    key: String,
    /// Made when the first part is full: a small file is one PUT.
    upload_id: Option<String>,
    /// ETags of the parts sent so far, by part number − 1 (empty until a part is done).
    etags: Vec<String>,
    /// Parts being sent; each comes back with its buffer, to be filled again.
    in_flight: tokio::task::JoinSet<Result<(usize, String, Bytes), Error>>,
    /// Part buffers whose parts are sent: an upload allocates at most
    /// `parts_in_flight + 1` of them, however long it is.
    spare: Vec<BytesMut>,
    /// Sent parts whose buffer the HTTP client may still hold for a moment after the
    /// reply; they become spares once it lets go.
    returning: Vec<Bytes>,
    buf: BytesMut,
    /// Bytes handed to parts (sent, in flight, or resumed).
    stored: u64,
}

impl Upload {
    fn resume(&mut self, p: Pending) {
        self.upload_id = Some(p.upload_id);
        self.etags = p.etags;
        self.stored = p.bytes;
    }

    /// APPE to an existing object of `size` bytes: its bytes become the first parts,
    /// copied inside S3 when each copied part can be a full part, else read back.
    async fn append_existing(&mut self, size: u64) -> Result<(), Error> {
        if size < MIN_PART as u64 {
            let old = self.store.op.read(&self.rel).await.map_err(storage_error)?;
            self.buf.extend_from_slice(&old.to_bytes());
            return Ok(());
        }
        let id = self.store.api.create(&self.key).await?;
        self.upload_id = Some(id.clone());
        let parts = size.div_ceil(MAX_COPY_PART);
        let step = size.div_ceil(parts);
        let mut start = 0;
        while start < size {
            let end = (start + step).min(size);
            let n = self.etags.len() + 1;
            let etag = self
                .store
                .api
                .upload_part_copy(&self.key, &id, n, &self.key, start, end - 1)
                .await?;
            self.etags.push(etag);
            start = end;
        }
        self.stored = size;
        Ok(())
    }

    /// Bytes received so far, including what an interrupted upload had stored.
    pub fn offset(&self) -> u64 {
        self.stored + self.buf.len() as u64
    }

    /// Takes bytes from the client; sends every full part.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), Error> {
        let ps = self.store.part_size;
        let mut data = data;
        while !data.is_empty() {
            if self.buf.len() == self.buf.capacity() {
                self.make_room(ps);
            }
            let take = (self.buf.capacity() - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() >= ps {
                let part = std::mem::take(&mut self.buf).freeze();
                self.send_part(part).await?;
            }
        }
        Ok(())
    }

    /// A buffer with room, of exact sizes (never more than a part): a spare one, or the
    /// first buffer growing ×4 from 64 KiB, so that memory follows what arrives.
    fn make_room(&mut self, ps: usize) {
        if self.buf.is_empty() {
            self.reclaim();
            let first = self.etags.is_empty();
            self.buf = self.spare.pop().unwrap_or_else(|| {
                BytesMut::with_capacity(if first { (64 << 10).min(ps) } else { ps })
            });
        } else {
            let mut bigger = BytesMut::with_capacity((self.buf.capacity() * 4).min(ps));
            bigger.extend_from_slice(&self.buf);
            self.buf = bigger;
        }
    }

    /// Turns the sent parts nobody else holds any more into spare buffers.
    fn reclaim(&mut self) {
        for part in std::mem::take(&mut self.returning) {
            match part.try_into_mut() {
                Ok(mut buf) => {
                    buf.clear();
                    self.spare.push(buf);
                }
                Err(still_held) => self.returning.push(still_held),
            }
        }
    }

    async fn send_part(&mut self, part: Bytes) -> Result<(), Error> {
        let id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let id = self.store.api.create(&self.key).await?;
                self.upload_id = Some(id.clone());
                id
            }
        };
        while self.in_flight.len() >= self.store.parts_in_flight {
            self.join_one().await?;
        }
        let index = self.etags.len();
        self.etags.push(String::new());
        self.stored += part.len() as u64;
        let store = self.store.clone();
        let key = self.key.clone();
        self.in_flight.spawn(async move {
            let etag = store.api.upload_part(&key, &id, index + 1, &part).await?;
            Ok((index, etag, part))
        });
        Ok(())
    }

    async fn join_one(&mut self) -> Result<(), Error> {
        if let Some(done) = self.in_flight.join_next().await {
            let (index, etag, part) = done.map_err(|_| Error::Storage)??;
            self.etags[index] = etag;
            self.returning.push(part);
        }
        Ok(())
    }

    /// The client sent everything: the last part, then the object appears whole.
    pub async fn finish(&mut self) -> Result<(), Error> {
        if self.upload_id.is_none() {
            let data = self.buf.split().freeze();
            return self
                .store
                .op
                .write(&self.rel, data)
                .await
                .map(|_| ())
                .map_err(storage_error);
        }
        if !self.buf.is_empty() || self.etags.is_empty() {
            let last = self.buf.split().freeze();
            self.send_part(last).await?;
        }
        while !self.in_flight.is_empty() {
            self.join_one().await?;
        }
        let id = self.upload_id.take().unwrap_or_default();
        self.store.api.complete(&self.key, &id, &self.etags).await
    }

    /// The client went away mid-upload: the parts already full are kept for a resume
    /// (within the janitor's age); the bytes of the part being filled are dropped.
    pub async fn interrupt(&mut self) {
        while !self.in_flight.is_empty() {
            if self.join_one().await.is_err() {
                break;
            }
        }
        self.buf = BytesMut::new();
    }

    /// ABOR, or a refused upload: nothing stays, not even the stored parts.
    pub async fn abort(&mut self) {
        self.in_flight.abort_all();
        while self.in_flight.join_next().await.is_some() {}
        if let Some(id) = self.upload_id.take() {
            let _ = self.store.api.abort(&self.key, &id).await;
        }
        self.buf = BytesMut::new();
    }
}

/// A multipart upload S3 lists.
#[derive(Debug)]
struct UploadInfo {
    key: String,
    upload_id: String,
    initiated: SystemTime,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ListUploadsXml {
    #[serde(rename = "Upload")]
    uploads: Vec<UploadXml>,
    is_truncated: bool,
    next_key_marker: Option<String>,
    next_upload_id_marker: Option<String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct UploadXml {
    key: String,
    upload_id: String,
    initiated: String,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct CopyPartXml {
    #[serde(rename = "ETag")]
    etag: String,
}

impl S3Api {
    /// Sends a presigned request, retrying network errors and 5xx with backoff; returns
    /// the first answer that is not a server error.
    async fn request(
        &self,
        method: reqwest::Method,
        url: &url::Url,
        headers: &[(&str, &str)],
        body: Option<&Bytes>,
    ) -> Result<reqwest::Response, Error> {
        let mut delay = Duration::from_millis(100);
        let mut tries = 0;
        loop {
            tries += 1;
            let mut req = self.http.request(method.clone(), url.clone());
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            if let Some(b) = body {
                req = req.body(b.clone());
            }
            let failure = match req.send().await {
                Ok(r) if !r.status().is_server_error() => return Ok(r),
                Ok(r) => format!("status {}", r.status()),
                // The URL is presigned; the log line shows it without its query.
                Err(e) => with_causes(&e.without_url()),
            };
            if tries > self.retries {
                tracing::warn!(%method, url = %redact(url.as_str()), error = %failure, "object storage request failed");
                return Err(Error::Storage);
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// A request whose answer must be a success; returns its headers and body.
    async fn send(
        &self,
        method: reqwest::Method,
        url: url::Url,
        headers: &[(&str, &str)],
        body: Option<&Bytes>,
    ) -> Result<(reqwest::header::HeaderMap, Bytes), Error> {
        let r = self.request(method, &url, headers, body).await?;
        let status = r.status();
        if status.is_success() {
            let h = r.headers().clone();
            let body = r.bytes().await.map_err(|e| {
                tracing::warn!(error = %with_causes(&e.without_url()), "object storage reply cut short");
                Error::Storage
            })?;
            return Ok((h, body));
        }
        let text = r.text().await.unwrap_or_default();
        tracing::warn!(%status, error = %refusal_text(&text), "object storage refused a request");
        Err(refusal(status))
    }

    /// GET of `key` from `offset` on: the body as a stream, and the object's length (from
    /// Content-Range, or Content-Length for a whole object). REST at or past the end
    /// (416) is an empty stream.
    async fn get(&self, key: &str, offset: u64) -> Result<(ByteStream, u64), Error> {
        let url = rusty_s3::actions::GetObject::new(&self.bucket, Some(&self.creds), key)
            .sign(SIGNED_FOR);
        let range = format!("bytes={offset}-");
        let headers: &[(&str, &str)] = if offset > 0 {
            &[("range", &range)]
        } else {
            &[]
        };
        let r = self
            .request(reqwest::Method::GET, &url, headers, None)
            .await?;
        let total = r
            .headers()
            .get(reqwest::header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit('/').next())
            .and_then(|v| v.parse().ok());
        match r.status().as_u16() {
            200..=299 => {
                let total = total.or(r.content_length()).unwrap_or(0);
                let body = r
                    .bytes_stream()
                    .map(|c| c.map_err(|e| std::io::Error::other(e.without_url())));
                Ok((Box::pin(body), total))
            }
            416 => Ok((
                Box::pin(futures_util::stream::empty()),
                total.unwrap_or(offset),
            )),
            _ => Err(refusal(r.status())),
        }
    }

    async fn create(&self, key: &str) -> Result<String, Error> {
        let url =
            rusty_s3::actions::CreateMultipartUpload::new(&self.bucket, Some(&self.creds), key)
                .sign(SIGNED_FOR);
        let (_, body) = self.send(reqwest::Method::POST, url, &[], None).await?;
        let text = String::from_utf8_lossy(&body);
        rusty_s3::actions::CreateMultipartUpload::parse_response(&text)
            .map(|r| r.upload_id().to_string())
            .map_err(|_| Error::Storage)
    }

    async fn upload_part(
        &self,
        key: &str,
        id: &str,
        n: usize,
        data: &Bytes,
    ) -> Result<String, Error> {
        let n = u16::try_from(n).map_err(|_| Error::NoSpace)?;
        let url = rusty_s3::actions::UploadPart::new(&self.bucket, Some(&self.creds), key, n, id)
            .sign(SIGNED_FOR);
        let (headers, _) = self
            .send(reqwest::Method::PUT, url, &[], Some(data))
            .await?;
        headers
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or(Error::Storage)
    }

    async fn upload_part_copy(
        &self,
        key: &str,
        id: &str,
        n: usize,
        source: &str,
        first: u64,
        last: u64,
    ) -> Result<String, Error> {
        let n = u16::try_from(n).map_err(|_| Error::NoSpace)?;
        let src = format!(
            "/{}/{}",
            self.bucket.name(),
            percent_encoding::utf8_percent_encode(source, KEY_SET)
        );
        let range = format!("bytes={first}-{last}");
        let mut action =
            rusty_s3::actions::UploadPart::new(&self.bucket, Some(&self.creds), key, n, id);
        action
            .headers_mut()
            .insert("x-amz-copy-source", src.clone());
        action
            .headers_mut()
            .insert("x-amz-copy-source-range", range.clone());
        let url = action.sign(SIGNED_FOR);
        let (_, body) = self
            .send(
                reqwest::Method::PUT,
                url,
                &[
                    ("x-amz-copy-source", &src),
                    ("x-amz-copy-source-range", &range),
                ],
                None,
            )
            .await?;
        let parsed: CopyPartXml =
            quick_xml::de::from_str(&String::from_utf8_lossy(&body)).map_err(|_| Error::Storage)?;
        Ok(parsed.etag)
    }

    async fn complete(&self, key: &str, id: &str, etags: &[String]) -> Result<(), Error> {
        let action = rusty_s3::actions::CompleteMultipartUpload::new(
            &self.bucket,
            Some(&self.creds),
            key,
            id,
            etags.iter().map(String::as_str),
        );
        let url = action.sign(SIGNED_FOR);
        let body = Bytes::from(action.body());
        self.send(reqwest::Method::POST, url, &[], Some(&body))
            .await
            .map(|_| ())
    }

    async fn abort(&self, key: &str, id: &str) -> Result<(), Error> {
        let url =
            rusty_s3::actions::AbortMultipartUpload::new(&self.bucket, Some(&self.creds), key, id)
                .sign(SIGNED_FOR);
        match self.send(reqwest::Method::DELETE, url, &[], None).await {
            Ok(_) | Err(Error::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Completed parts of an upload: (number, etag, size), in order.
    async fn list_parts(&self, key: &str, id: &str) -> Result<Vec<(u16, String, u64)>, Error> {
        let mut out = Vec::new();
        let mut marker = None;
        loop {
            let mut action =
                rusty_s3::actions::ListParts::new(&self.bucket, Some(&self.creds), key, id);
            if let Some(m) = marker {
                action.set_part_number_marker(m);
            }
            let url = action.sign(SIGNED_FOR);
            let (_, body) = self.send(reqwest::Method::GET, url, &[], None).await?;
            let page =
                rusty_s3::actions::ListParts::parse_response(&String::from_utf8_lossy(&body))
                    .map_err(|_| Error::Storage)?;
            out.extend(page.parts.into_iter().map(|p| (p.number, p.etag, p.size)));
            match page.next_part_number_marker {
                Some(m) if m > 0 && out.len() < 10_000 && marker != Some(m) => marker = Some(m),
                _ => break,
            }
        }
        out.sort_by_key(|p| p.0);
        Ok(out)
    }

    /// Multipart uploads in progress whose key starts with `prefix`
    /// (ListMultipartUploads: rusty-s3 has no action for it, so it is signed here).
    async fn list_uploads(&self, prefix: &str) -> Result<Vec<UploadInfo>, Error> {
        let mut out = Vec::new();
        let mut markers: Option<(String, String)> = None;
        loop {
            let mut query: Vec<(&str, &str)> = vec![("prefix", prefix), ("uploads", "")];
            if let Some((k, u)) = &markers {
                query.push(("key-marker", k));
                query.push(("upload-id-marker", u));
            }
            query.sort();
            let url = rusty_s3::signing::sign(
                &jiff::Timestamp::now(),
                rusty_s3::Method::Get,
                self.bucket.base_url().clone(),
                self.creds.key(),
                self.creds.secret(),
                self.creds.token(),
                self.bucket.region(),
                SIGNED_FOR.as_secs(),
                query.iter().copied(),
                std::iter::empty(),
            );
            let (_, body) = self.send(reqwest::Method::GET, url, &[], None).await?;
            let page: ListUploadsXml = quick_xml::de::from_str(&String::from_utf8_lossy(&body))
                .map_err(|e| {
                    tracing::warn!(error = %redact(&e.to_string()), "unreadable ListMultipartUploads reply");
                    Error::Storage
                })?;
            for u in page.uploads {
                let initiated = u
                    .initiated
                    .parse::<jiff::Timestamp>()
                    .map(SystemTime::from)
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                out.push(UploadInfo {
                    key: u.key,
                    upload_id: u.upload_id,
                    initiated,
                });
            }
            match (
                page.is_truncated,
                page.next_key_marker,
                page.next_upload_id_marker,
            ) {
                (true, Some(k), Some(u)) if out.len() < 100_000 => markers = Some((k, u)),
                _ => break,
            }
        }
        Ok(out)
    }
}

/// A client error from S3 in the reply table's terms.
fn refusal(status: reqwest::StatusCode) -> Error {
    match status.as_u16() {
        404 => Error::NotFound,
        403 => Error::Access,
        _ => Error::Storage,
    }
}

/// What an S3 error reply says, for the log: its `Code` and `Message` only, since some
/// services echo the request's canonical form (with the credential) in other elements.
fn refusal_text(body: &str) -> String {
    match quick_xml::de::from_str::<ErrorXml>(body) {
        Ok(e) if !e.code.is_empty() => format!("{}: {}", e.code, redact(&e.message)),
        _ => redact(&body.chars().take(300).collect::<String>()),
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ErrorXml {
    code: String,
    message: String,
}

/// What a copy source's key keeps unescaped.
const KEY_SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> VPath {
        VPath::root().resolve(s.as_bytes()).unwrap()
    }

    async fn put(s: &ObjectStore, key: &str, data: &[u8]) {
        s.op.write(key, data.to_vec()).await.unwrap();
    }

    #[tokio::test]
    async fn directories_are_markers_or_prefixes() {
        let s = ObjectStore::memory();
        assert!(matches!(s.stat(&v("/a")).await, Err(Error::NotFound)));
        s.mkdir(&v("/a")).await.unwrap();
        assert_eq!(s.stat(&v("/a")).await.unwrap().kind, Kind::Dir);
        assert!(matches!(s.mkdir(&v("/a")).await, Err(Error::Exists)));
        // A prefix with objects beneath and no marker is a directory too.
        put(&s, "b/c/d.txt", b"x").await;
        assert_eq!(s.stat(&v("/b")).await.unwrap().kind, Kind::Dir);
        assert_eq!(s.stat(&v("/b/c")).await.unwrap().kind, Kind::Dir);
        let f = s.stat(&v("/b/c/d.txt")).await.unwrap();
        assert_eq!((f.kind, f.size), (Kind::File, 1));
    }

    #[tokio::test]
    async fn listing_shows_one_level() {
        let s = ObjectStore::memory();
        s.mkdir(&v("/d")).await.unwrap();
        put(&s, "d/one", b"1").await;
        put(&s, "d/two", b"22").await;
        put(&s, "d/sub/three", b"333").await;
        let names: Vec<(String, Kind, u64)> = s
            .list(&v("/d"))
            .await
            .unwrap()
            .into_iter()
            .map(|e| (String::from_utf8(e.name).unwrap(), e.kind, e.size))
            .collect();
        assert_eq!(
            names,
            vec![
                ("one".into(), Kind::File, 1),
                ("sub".into(), Kind::Dir, 0),
                ("two".into(), Kind::File, 2),
            ]
        );
        assert!(matches!(s.list(&v("/nothing")).await, Err(Error::NotFound)));
        assert_eq!(s.list(&v("/")).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn rmdir_refuses_a_non_empty_directory() {
        let s = ObjectStore::memory();
        s.mkdir(&v("/full")).await.unwrap();
        put(&s, "full/f", b"x").await;
        assert!(matches!(s.rmdir(&v("/full")).await, Err(Error::NotEmpty)));
        assert!(s.exists(&v("/full/f")).await.unwrap());
        s.remove_file(&v("/full/f")).await.unwrap();
        s.rmdir(&v("/full")).await.unwrap();
        assert!(!s.exists(&v("/full")).await.unwrap());
        assert!(matches!(s.rmdir(&v("/full")).await, Err(Error::NotFound)));
        put(&s, "file", b"x").await;
        assert!(matches!(
            s.rmdir(&v("/file")).await,
            Err(Error::NotADirectory)
        ));
        assert!(matches!(
            s.remove_file(&v("/")).await,
            Err(Error::IsADirectory)
        ));
    }

    #[tokio::test]
    async fn rename_copies_then_deletes() {
        let s = ObjectStore::memory();
        put(&s, "a.txt", b"hello").await;
        s.rename(&v("/a.txt"), &v("/b.txt")).await.unwrap();
        assert!(!s.exists(&v("/a.txt")).await.unwrap());
        assert_eq!(s.stat(&v("/b.txt")).await.unwrap().size, 5);
        // Directories: empty ones move, others only within the configured bound.
        s.mkdir(&v("/empty")).await.unwrap();
        s.rename(&v("/empty"), &v("/moved")).await.unwrap();
        assert_eq!(s.stat(&v("/moved")).await.unwrap().kind, Kind::Dir);
        assert!(!s.exists(&v("/empty")).await.unwrap());
        put(&s, "moved/x", b"x").await;
        assert!(matches!(
            s.rename(&v("/moved"), &v("/again")).await,
            Err(Error::NotEmpty)
        ));
        assert!(s.exists(&v("/moved/x")).await.unwrap());
        let mut s = s;
        s.rename_dir_limit = 10;
        s.rename(&v("/moved"), &v("/again")).await.unwrap();
        assert_eq!(s.stat(&v("/again/x")).await.unwrap().size, 1);
        assert!(!s.exists(&v("/moved")).await.unwrap());
        assert!(matches!(
            s.rename(&v("/again"), &v("/again/inside")).await,
            Err(Error::Access)
        ));
    }

    #[tokio::test]
    async fn small_upload_is_one_write_and_ranged_read() {
        let s = Arc::new(ObjectStore::memory());
        let mut up = s.upload(&v("/f.bin"), UploadStart::Fresh).await.unwrap();
        up.write(b"0123456789").await.unwrap();
        assert!(
            !s.exists(&v("/f.bin")).await.unwrap(),
            "visible before the end"
        );
        up.finish().await.unwrap();
        let (stream, len) = s.open_read(&v("/f.bin"), 4).await.unwrap();
        assert_eq!(len, 10);
        let got: Vec<Bytes> = stream.try_collect().await.unwrap();
        assert_eq!(got.concat(), b"456789");
        let (stream, _) = s.open_read(&v("/f.bin"), 10).await.unwrap();
        assert_eq!(stream.try_collect::<Vec<Bytes>>().await.unwrap().len(), 0);
        assert!(matches!(
            s.open_read(&v("/"), 0).await.err(),
            Some(Error::IsADirectory)
        ));
    }

    #[tokio::test]
    async fn small_append_reads_back_and_adds() {
        let s = Arc::new(ObjectStore::memory());
        put(&s, "log", b"abc").await;
        let mut up = s.upload(&v("/log"), UploadStart::Append).await.unwrap();
        assert_eq!(up.offset(), 3);
        up.write(b"def").await.unwrap();
        up.finish().await.unwrap();
        let (stream, _) = s.open_read(&v("/log"), 0).await.unwrap();
        let got: Vec<Bytes> = stream.try_collect().await.unwrap();
        assert_eq!(got.concat(), b"abcdef");
    }

    #[test]
    fn keys_never_climb() {
        assert_eq!(ObjectStore::rel(&v("/../a/./b/..")).unwrap(), "a");
        assert_eq!(ObjectStore::dir_key(&v("/")).unwrap(), "/");
        assert_eq!(ObjectStore::dir_key(&v("/x/y")).unwrap(), "x/y/");
        assert!(matches!(
            ObjectStore::rel(&VPath::root().resolve(b"\xff").unwrap()),
            Err(Error::InvalidName)
        ));
    }

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
    fn refusal_text_keeps_code_and_message_only() {
        let body = "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code>\
            <Message>The request signature we calculated does not match</Message>\
            <AWSAccessKeyId>GKKEY</AWSAccessKeyId><SignatureProvided>0123abcd</SignatureProvided>\
            <CanonicalRequest>GET /b/k X-Amz-Credential=GKKEY</CanonicalRequest></Error>";
        assert_eq!(
            refusal_text(body),
            "SignatureDoesNotMatch: The request signature we calculated does not match"
        );
        assert_eq!(
            refusal_text("<html>see http://x/?X-Amz-Signature=abc</html>"),
            "<html>see http://x/</html>"
        );
    }

    /// A failed presigned request: reqwest's error names the URL, query and all;
    /// `without_url` (what `S3Api::request` logs) does not.
    #[tokio::test]
    async fn failed_presigned_request_hides_its_url() {
        install_once();
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let bucket = rusty_s3::Bucket::new(
            endpoint.parse().unwrap(),
            rusty_s3::UrlStyle::Path,
            "b",
            "us-east-1",
        )
        .unwrap();
        let creds = rusty_s3::Credentials::new("GKKEY", "SECRETSECRET");
        let url = rusty_s3::actions::GetObject::new(&bucket, Some(&creds), "k").sign(SIGNED_FOR);
        let e = reqwest::Client::new()
            .get(url.clone())
            .send()
            .await
            .unwrap_err();
        assert!(e.to_string().contains("X-Amz-Credential=GKKEY"), "{e}");
        let shown = with_causes(&e.without_url());
        assert!(
            shown.contains("error sending request: "),
            "the cause is named: {shown}"
        );
        for shown in [shown, redact(url.as_str())] {
            assert!(!shown.contains("GKKEY"), "{shown}");
            assert!(!shown.contains("X-Amz-Signature"), "{shown}");
        }
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
