//! `ObjectStore`: one S3 location (bucket and key prefix) as a root, and the namespace
//! operations the jail asks of it (stat, listings, MKD markers, RMD, DELE, rename by copy
//! and delete, RETR's ranged read, SIZE), done with opendal. Turns a [`VPath`] the jail has
//! already normalised into a key, and nothing else: uploads are in `upload.rs`, the
//! signed multipart calls and the retry policy in `api.rs`, credentials in `creds.rs`.

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use opendal::{ErrorKind, Operator};
use wharf_proto::listing::{Entry, Kind};

use super::api::{self, Policy, S3Api};
use super::creds::{Secret, StaticKey};
use super::exact;
use super::install_once;
use crate::config::StorageConfig;
use crate::error::Error;
use crate::http::redact;
use crate::vfs::VPath;

/// The smallest part S3 accepts (all but the last part of an upload).
pub const MIN_PART: usize = 5 << 20;

/// A stream of object bytes.
pub type ByteStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = std::io::Result<Bytes>> + Send>>;

/// One S3 location as a root.
#[derive(Debug)]
pub struct ObjectStore {
    pub(super) op: Operator,
    pub(super) api: std::sync::Arc<S3Api>,
    /// Bytes per multipart part (≥ 5 MiB).
    pub part_size: usize,
    /// Parts of one upload sent at once; with the part being filled, the memory one
    /// upload holds is at most `part_size × (parts_in_flight + 1)`.
    pub parts_in_flight: usize,
    /// Renaming a directory moves at most this many objects (0: only empty directories).
    pub rename_dir_limit: usize,
    /// Shown in logs and to hooks: `s3://bucket/prefix`.
    pub location: String,
    /// The service has S3's multipart calls (ListMultipartUploads and the rest): false
    /// only for the memory service of the unit tests, which has no interrupted uploads
    /// to find.
    pub(super) multipart: bool,
}

/// The path opendal is handed for the key `rel`: opendal 0.59 trims whitespace at both ends
/// of a path before it strips leading `/`s, so a leading `/` keeps a name's leading spaces.
/// (Trailing ones on a file's key cannot be kept: those keys go to [`exact`].)
fn od(rel: &str) -> String {
    format!("/{rel}")
}

/// What a HEAD of a file's key tells.
#[derive(Debug, Clone, Copy)]
pub(super) struct Head {
    pub(super) size: u64,
    /// When S3 stored it (LastModified), Unix seconds.
    pub(super) stored: i64,
    /// The time a client set (the `mtime` metadata), if any.
    pub(super) set: Option<i64>,
}

impl Head {
    fn of(m: &opendal::Metadata) -> Head {
        Head {
            size: m.content_length(),
            stored: m
                .last_modified()
                .map(|t| t.into_inner().as_second())
                .unwrap_or(0),
            set: m
                .user_metadata()
                .and_then(|u| u.get(MTIME_KEY).and_then(parse_mtime)),
        }
    }

    /// The time shown: the one a client set, else when it was stored.
    pub(super) fn mtime(&self) -> i64 {
        self.set.unwrap_or(self.stored)
    }
}

/// A file's HEAD, by opendal or, for a key opendal would change, by [`exact`]; `None`
/// when no object has this key.
async fn head_of(op: &Operator, api: &S3Api, rel: &str) -> Result<Option<Head>, Error> {
    if exact::needed(rel) {
        return api.head(&format!("{}{rel}", api.prefix)).await;
    }
    match op.stat(&od(rel)).await {
        Ok(m) if !m.is_dir() => Ok(Some(Head::of(&m))),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(storage_error(e)),
    }
}

pub(super) fn storage_error(e: opendal::Error) -> Error {
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
        let policy = Policy::of(c);
        let http = policy.http_client()?;
        let mut builder = opendal::services::S3::default()
            .bucket(&bucket)
            .endpoint(&endpoint)
            .region(&region)
            .root(&format!("/{prefix}"))
            .credential_provider_chain(
                reqsign_core::ProvideCredentialChain::new().push(StaticKey::new(secret)),
            )
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
            );
        let location = format!("s3://{bucket}/{prefix}");
        let rbucket = api::bucket(&endpoint, c.path_style, bucket, region)?;
        Ok(ObjectStore {
            op: policy.layers(op),
            api: std::sync::Arc::new(S3Api::new(rbucket, secret, http, prefix, policy)),
            part_size: c.part_size.max(MIN_PART),
            parts_in_flight: c.parts_in_flight.max(1),
            rename_dir_limit: c.rename_dir_limit,
            location,
            multipart: true,
        })
    }

    /// A store on opendal's memory service, for the mapping's unit tests: the same
    /// operator layers and code paths, no network; without S3's multipart calls, a small
    /// upload is one write and there are no interrupted uploads.
    #[cfg(test)]
    pub fn memory() -> ObjectStore {
        install_once();
        let op = Operator::new(opendal::services::Memory::default()).unwrap();
        let secret = Secret {
            key: "k".into(),
            secret: "s".into(),
        };
        let bucket = api::bucket("http://127.0.0.1:1", true, "mem".into(), "us-east-1".into());
        let policy = Policy::none();
        let http = policy.http_client().unwrap();
        ObjectStore {
            op: policy.layers(op),
            api: std::sync::Arc::new(S3Api::new(
                bucket.unwrap(),
                &secret,
                http,
                String::new(),
                policy,
            )),
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
    pub(super) fn rel(path: &VPath) -> Result<String, Error> {
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
    pub(super) fn full_key(&self, path: &VPath) -> Result<String, Error> {
        Ok(format!("{}{}", self.api.prefix, ObjectStore::rel(path)?))
    }

    /// The HEAD of the file key `rel`; `None` when there is no such object.
    pub(super) async fn head(&self, rel: &str) -> Result<Option<Head>, Error> {
        head_of(&self.op, &self.api, rel).await
    }

    /// Deletes the key `rel` (a file's, or a directory's marker). On S3 always one
    /// DeleteObject of the exact key: opendal may send DeleteObjects, whose XML body some
    /// servers read with the key's edge whitespace trimmed (Garage deleted nothing for
    /// ` name` and answered success).
    async fn delete_key(&self, rel: &str) -> Result<(), Error> {
        if self.multipart || exact::needed(rel) {
            return self.api.delete(&self.prefixed(rel)).await;
        }
        self.op.delete(&od(rel)).await.map_err(storage_error)
    }

    /// A whole (small) object.
    pub(super) async fn read_all(&self, rel: &str) -> Result<Bytes, Error> {
        if exact::needed(rel) {
            let (stream, _) = self
                .api
                .get(&self.prefixed(rel), 0)
                .await?
                .ok_or(Error::NotFound)?;
            let parts: Vec<Bytes> = stream.try_collect().await.map_err(|_| Error::Storage)?;
            return Ok(parts.concat().into());
        }
        let data = self.op.read(&od(rel)).await.map_err(storage_error)?;
        Ok(data.to_bytes())
    }

    /// Writes a whole object in one request.
    pub(super) async fn write_all(&self, rel: &str, data: Bytes) -> Result<(), Error> {
        if exact::needed(rel) {
            return self.api.put(&self.prefixed(rel), data).await;
        }
        self.op
            .write(&od(rel), data)
            .await
            .map(|_| ())
            .map_err(storage_error)
    }

    /// The full key of `rel`, with the store's prefix.
    fn prefixed(&self, rel: &str) -> String {
        format!("{}{rel}", self.api.prefix)
    }

    pub async fn stat(&self, path: &VPath) -> Result<Entry, Error> {
        let name = path.file_name().unwrap_or(b"/").to_vec();
        if path.is_root() {
            return Ok(dir_entry(name, ""));
        }
        let key = ObjectStore::rel(path)?;
        if let Some(h) = self.head(&key).await? {
            return Ok(file_entry(name, &key, h.size, h.mtime()));
        }
        if self.is_dir(path).await? {
            return Ok(dir_entry(name, &key));
        }
        Err(Error::NotFound)
    }

    /// MFMT: stores `secs` as the object's `mtime` metadata (a copy onto itself); returns
    /// the time it has now. Directories have no time of their own on S3.
    pub async fn set_mtime(&self, path: &VPath, secs: i64) -> Result<i64, Error> {
        let e = self.stat(path).await?;
        if e.kind == Kind::Dir {
            return Ok(e.mtime);
        }
        self.api
            .set_mtime(&self.full_key(path)?, &secs.to_string())
            .await?;
        Ok(secs)
    }

    /// A marker `dir/` or any key beneath it makes a directory.
    async fn is_dir(&self, path: &VPath) -> Result<bool, Error> {
        if path.is_root() {
            return Ok(true);
        }
        let mut l = self
            .op
            .lister_with(&od(&ObjectStore::dir_key(path)?))
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
        let lister = self.op.lister(&od(&dir)).await.map_err(storage_error)?;
        Ok(Entries {
            lister,
            op: self.op.clone(),
            api: self.api.clone(),
            dir: dir.trim_start_matches('/').to_string(),
            seen: path.is_root(),
            ready: Default::default(),
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
                .create_dir(&od(&ObjectStore::dir_key(dir)?))
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
            .lister_with(&od(&dir))
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
            return Err(match self.head(&ObjectStore::rel(path)?).await {
                Ok(Some(_)) => Error::NotADirectory,
                _ => Error::NotFound,
            });
        }
        self.delete_key(&dir).await
    }

    pub async fn remove_file(&self, path: &VPath) -> Result<(), Error> {
        let e = self.stat(path).await?;
        if e.kind == Kind::Dir {
            return Err(Error::IsADirectory);
        }
        self.delete_key(&ObjectStore::rel(path)?).await
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
            return self.delete_key(&f).await;
        }
        if self.exists(to).await? {
            return Err(Error::Exists);
        }
        let (fd, td) = (ObjectStore::dir_key(from)?, ObjectStore::dir_key(to)?);
        let keys: Vec<String> = self
            .op
            .lister_with(&od(&fd))
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
        self.op.create_dir(&od(&td)).await.map_err(storage_error)?;
        for k in keys.iter().filter(|k| **k != fd) {
            let dest = format!("{td}{}", &k[fd.len()..]);
            if k.ends_with('/') {
                self.op
                    .create_dir(&od(&dest))
                    .await
                    .map_err(storage_error)?;
            } else {
                self.copy(k, &dest).await?;
            }
        }
        for k in keys.iter().filter(|k| **k != fd) {
            self.delete_key(k).await?;
        }
        let _ = self.delete_key(&fd).await;
        Ok(())
    }

    /// A server-side copy; a service without one (the tests' memory store) reads and writes.
    async fn copy(&self, from: &str, to: &str) -> Result<(), Error> {
        if exact::needed(from) || exact::needed(to) {
            return self
                .api
                .copy(&self.prefixed(from), &self.prefixed(to))
                .await;
        }
        match self.op.copy(&od(from), &od(to)).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::Unsupported => {
                let data = self.read_all(from).await?;
                self.write_all(to, data).await
            }
            Err(e) => Err(storage_error(e)),
        }
    }

    /// RETR: a streamed GET, ranged from `offset`; no temporary file. One request: the
    /// object's length comes with its first response. Returns the stream and the length.
    /// REST at or past the end (S3 answers 416) is an empty stream.
    pub async fn open_read(&self, path: &VPath, offset: u64) -> Result<(ByteStream, u64), Error> {
        if path.is_root() {
            return Err(Error::IsADirectory);
        }
        let key = ObjectStore::rel(path)?;
        if exact::needed(&key) {
            return match self.api.get(&self.prefixed(&key), offset).await? {
                Some(found) => Ok(found),
                None if self.is_dir(path).await? => Err(Error::IsADirectory),
                None => Err(Error::NotFound),
            };
        }
        let reader = self.op.reader(&od(&key)).await.map_err(storage_error)?;
        let mut stream = reader
            .into_bytes_stream(offset..)
            .await
            .map_err(storage_error)?;
        // Sends the GET; the length comes from its Content-Range (or Content-Length).
        let e = match stream.metadata().await {
            Ok(m) => return Ok((Box::pin(stream), m.content_length())),
            Err(e) => e,
        };
        if e.kind() == ErrorKind::NotFound {
            return Err(if self.is_dir(path).await? {
                Error::IsADirectory
            } else {
                Error::NotFound
            });
        }
        // opendal has no kind for a 416: a file no longer than `offset` tells.
        if offset > 0
            && let Ok(Some(h)) = self.head(&key).await
            && h.size <= offset
        {
            return Ok((Box::pin(futures_util::stream::empty()), h.size));
        }
        Err(storage_error(e))
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
}

/// A directory's entries as S3 lists them (ListObjectsV2 with a delimiter, paginated).
/// ListObjectsV2 carries no metadata: each file's set time (MFMT here, or rclone's) is read
/// with a HEAD, [`HEADS_IN_FLIGHT`] at a time over batches of [`HEAD_BATCH`] entries, so
/// mirror tools comparing times see the ones they set.
pub struct Entries {
    lister: opendal::Lister,
    /// For the HEADs.
    op: Operator,
    api: std::sync::Arc<S3Api>,
    /// The directory's own key (`a/b/`), whose marker is not an entry.
    dir: String,
    /// Something was listed (or it is the root): the directory exists.
    seen: bool,
    /// Entries listed and looked up, not yet handed out.
    ready: std::collections::VecDeque<Entry>,
}

const HEAD_BATCH: usize = 64;

/// The time a HEAD of `key` reports (none for a directory, or when the HEAD fails: the
/// listing's own time stands).
async fn head_time(op: Operator, api: std::sync::Arc<S3Api>, key: Option<String>) -> Option<i64> {
    let key = key?;
    Some(head_of(&op, &api, &key).await.ok()??.mtime())
}
const HEADS_IN_FLIGHT: usize = 16;

impl Entries {
    /// The next entry; `None` at the end.
    pub async fn next(&mut self) -> Result<Option<Entry>, Error> {
        if self.ready.is_empty() {
            self.fill().await?;
        }
        Ok(self.ready.pop_front())
    }

    /// Lists up to a batch, then reads the files' times.
    async fn fill(&mut self) -> Result<(), Error> {
        let mut batch: Vec<(Entry, Option<String>)> = Vec::new();
        while batch.len() < HEAD_BATCH {
            let Some(item) = self.lister.try_next().await.map_err(storage_error)? else {
                break;
            };
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
            batch.push(if m.is_dir() {
                (dir_entry(name.as_bytes().to_vec(), key), None)
            } else {
                (
                    file_entry(
                        name.as_bytes().to_vec(),
                        key,
                        m.content_length(),
                        Head::of(m).mtime(),
                    ),
                    Some(key.to_string()),
                )
            });
        }
        // Futures made first (each owns its operator and key): a closure over borrowed
        // data in the stream would not be Send for every lifetime.
        let heads: Vec<_> = batch
            .iter()
            .map(|(_, key)| head_time(self.op.clone(), self.api.clone(), key.clone()))
            .collect();
        let times: Vec<Option<i64>> = futures_util::stream::iter(heads)
            .buffered(HEADS_IN_FLIGHT)
            .collect()
            .await;
        for ((mut entry, _), time) in batch.into_iter().zip(times) {
            if let Some(t) = time {
                entry.mtime = t;
            }
            self.ready.push_back(entry);
        }
        Ok(())
    }
}

/// The user-metadata key of a set modification time (`x-amz-meta-mtime`), rclone's.
const MTIME_KEY: &str = "mtime";

/// rclone writes decimal Unix seconds with a fraction ("1700000000.123456789").
pub(super) fn parse_mtime(v: &str) -> Option<i64> {
    let whole = v.trim().split('.').next()?;
    whole.parse::<i64>().ok()
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

fn file_entry(name: Vec<u8>, key: &str, size: u64, mtime: i64) -> Entry {
    Entry {
        name,
        kind: Kind::File,
        size,
        mtime,
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::vfs::s3) fn v(s: &str) -> VPath {
        VPath::root().resolve(s.as_bytes()).unwrap()
    }

    pub(in crate::vfs::s3) async fn put(s: &ObjectStore, key: &str, data: &[u8]) {
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
}
