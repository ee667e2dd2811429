//! The jail: the one door between a session and its root, whichever backend holds it.
//!
//! A session's handlers resolve every argument to a [`VPath`] (normalised, no `..`) and
//! hand it here; the jail passes it to its backend, the local [`Disk`] or an S3
//! [`ObjectStore`]. Both implement [`Storage`], the operations every root offers; what
//! only one of them can do (sendfile from a descriptor, hard links, multipart uploads)
//! is reached through the jail's own methods.
//!
//! Whatever reads or changes a file takes an [`Authorized`] path, which only the login's
//! rules make: the permission check comes with the path, and cannot be forgotten.

use std::sync::Arc;
use std::time::SystemTime;

use wharf_proto::listing::Entry;

use super::s3::{ByteStream, ObjectStore, Upload, UploadStart};
use super::{Authorized, Disk, Ownership, VPath, WriteMode};
use crate::error::Error;

/// What every root offers, on any backend.
#[allow(async_fn_in_trait)] // used with static dispatch only, through `Jail`
pub trait Storage {
    /// Describes one object.
    async fn stat(&self, path: &VPath) -> Result<Entry, Error>;
    /// The entries of a directory, sorted by name.
    async fn list(&self, path: &VPath) -> Result<Vec<Entry>, Error>;
    async fn exists(&self, path: &VPath) -> Result<bool, Error>;
    /// MKD; `Exists` if something is there.
    async fn mkdir(&self, path: &VPath) -> Result<(), Error>;
    /// RMD; `NotEmpty` unless empty.
    async fn rmdir(&self, path: &VPath) -> Result<(), Error>;
    /// DELE; `IsADirectory` for a directory.
    async fn remove_file(&self, path: &VPath) -> Result<(), Error>;
    /// RNFR/RNTO; replaces a file at `to`.
    async fn rename(&self, from: &VPath, to: &VPath) -> Result<(), Error>;
}

/// Both backends implement the trait with their inherent methods of the same names.
macro_rules! storage_by_inherent_methods {
    ($t:ty) => {
        impl Storage for $t {
            async fn stat(&self, path: &VPath) -> Result<Entry, Error> {
                <$t>::stat(self, path).await
            }
            async fn list(&self, path: &VPath) -> Result<Vec<Entry>, Error> {
                <$t>::list(self, path).await
            }
            async fn exists(&self, path: &VPath) -> Result<bool, Error> {
                <$t>::exists(self, path).await
            }
            async fn mkdir(&self, path: &VPath) -> Result<(), Error> {
                <$t>::mkdir(self, path).await
            }
            async fn rmdir(&self, path: &VPath) -> Result<(), Error> {
                <$t>::rmdir(self, path).await
            }
            async fn remove_file(&self, path: &VPath) -> Result<(), Error> {
                <$t>::remove_file(self, path).await
            }
            async fn rename(&self, from: &VPath, to: &VPath) -> Result<(), Error> {
                <$t>::rename(self, from, to).await
            }
        }
    };
}

storage_by_inherent_methods!(Disk);
storage_by_inherent_methods!(ObjectStore);

/// A session's root and the only way to it.
#[derive(Debug, Clone)]
pub enum Jail {
    Disk(Disk),
    Object(Arc<ObjectStore>),
}

/// Where a download's bytes come from.
pub enum Source {
    /// A local file, positioned at the offset asked for (sendfile-able).
    File(std::fs::File),
    /// An object's bytes from the offset on.
    Stream(ByteStream),
}

/// Where an upload's bytes go.
pub enum Sink {
    File(std::fs::File),
    Object(Box<Upload>),
}

/// Runs the same `Storage` call on either backend. The S3 futures are big (HTTP
/// requests inside) and boxed, so that a session's task, which holds the largest future it
/// may await, stays small for the many sessions on local roots.
macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Jail::Disk($s) => $e.await,
            Jail::Object(o) => {
                let $s: &ObjectStore = o;
                Box::pin($e).await
            }
        }
    };
}

impl Jail {
    /// Gives what uploads create on a local root these modes and owner.
    pub fn with_ownership(self, owner: Ownership) -> Jail {
        match self {
            Jail::Disk(d) => Jail::Disk(d.with_ownership(owner)),
            o => o,
        }
    }

    /// Whether an upload appears under its name only once complete, by the backend's
    /// nature (S3 objects do; a local file needs the temporary name and a commit).
    pub fn uploads_appear_whole(&self) -> bool {
        matches!(self, Jail::Object(_))
    }

    /// The object store behind this root, if it is one.
    pub fn object(&self) -> Option<&Arc<ObjectStore>> {
        match self {
            Jail::Object(o) => Some(o),
            Jail::Disk(_) => None,
        }
    }

    /// Where `path` is, for upload hooks (a host path, or `s3://bucket/key`); never for
    /// file access.
    pub fn host_path(&self, path: &VPath) -> String {
        match self {
            Jail::Disk(d) => d.host_path(path).to_string_lossy().into_owned(),
            Jail::Object(o) => format!(
                "{}{}",
                o.location,
                String::from_utf8_lossy(&path.as_bytes()[1.min(path.as_bytes().len())..])
            ),
        }
    }

    /// The name of `path` across nodes sharing this storage (for upload locks).
    pub fn lock_key(&self, path: &VPath) -> String {
        self.host_path(path)
    }

    pub async fn stat(&self, path: &VPath) -> Result<Entry, Error> {
        each!(self, s => Storage::stat(s, path))
    }

    pub async fn list(&self, path: &VPath) -> Result<Vec<Entry>, Error> {
        each!(self, s => Storage::list(s, path))
    }

    pub async fn exists(&self, path: &VPath) -> Result<bool, Error> {
        each!(self, s => Storage::exists(s, path))
    }

    pub async fn mkdir(&self, path: &Authorized) -> Result<(), Error> {
        let path = path.path();
        each!(self, s => Storage::mkdir(s, path))
    }

    pub async fn rmdir(&self, path: &Authorized) -> Result<(), Error> {
        let path = path.path();
        each!(self, s => Storage::rmdir(s, path))
    }

    pub async fn remove_file(&self, path: &Authorized) -> Result<(), Error> {
        let path = path.path();
        each!(self, s => Storage::remove_file(s, path))
    }

    pub async fn rename(&self, from: &Authorized, to: &Authorized) -> Result<(), Error> {
        let (from, to) = (from.path(), to.path());
        each!(self, s => Storage::rename(s, from, to))
    }

    /// SIZE in TYPE I: a file's size (`NotRegular` for anything else); on S3, the bytes an
    /// interrupted upload of that name has stored, so that clients resume it.
    pub async fn size(&self, path: &VPath) -> Result<u64, Error> {
        match self {
            // What an interrupted upload of the name has stored, as on S3, so that
            // `curl -C -` and lftp resume it.
            Jail::Disk(d) => match d.stat(&path.upload_resume()).await {
                Ok(e) if e.kind == wharf_proto::listing::Kind::File => Ok(e.size),
                _ => match d.stat(path).await? {
                    e if e.kind == wharf_proto::listing::Kind::File => Ok(e.size),
                    _ => Err(Error::NotRegular),
                },
            },
            Jail::Object(o) => Box::pin(o.size(path)).await,
        }
    }

    /// Opens a file for reading from `offset`; returns it with its whole length.
    pub async fn open_read(&self, path: &Authorized, offset: u64) -> Result<(Source, u64), Error> {
        let path = path.path();
        match self {
            Jail::Disk(d) => {
                let (f, len) = d.open_read(path, offset).await?;
                Ok((Source::File(f), len))
            }
            Jail::Object(o) => {
                let (s, len) = Box::pin(o.open_read(path, offset)).await?;
                Ok((Source::Stream(s), len))
            }
        }
    }

    /// Opens `path` for an upload as `mode` says. On S3, `Truncate` and `CreateNew` start
    /// a new upload (the caller checked the name), `At(n)` resumes an interrupted one,
    /// `Append` adds to what is there.
    pub async fn open_write(&self, path: &Authorized, mode: WriteMode) -> Result<Sink, Error> {
        let path = path.path();
        match self {
            Jail::Disk(d) => d.open_write(path, mode).await.map(Sink::File),
            Jail::Object(o) => {
                let how = match mode {
                    WriteMode::Truncate | WriteMode::CreateNew | WriteMode::At(0) => {
                        UploadStart::Fresh
                    }
                    WriteMode::At(n) => UploadStart::ResumeAt(n),
                    WriteMode::Append => UploadStart::Append,
                };
                o.upload(path, how).await.map(|u| Sink::Object(Box::new(u)))
            }
        }
    }

    /// A second name for a local file (the no-overwrite commit of an atomic upload).
    pub async fn link(&self, from: &Authorized, to: &Authorized) -> Result<(), Error> {
        let (from, to) = (from.path(), to.path());
        match self {
            Jail::Disk(d) => d.link(from, to).await,
            Jail::Object(_) => Err(Error::Unsupported),
        }
    }

    /// Cuts a file back to `len` bytes; S3 objects are written whole, never cut.
    pub async fn truncate(&self, path: &Authorized, len: u64) -> Result<(), Error> {
        match self {
            Jail::Disk(d) => d.truncate(path.path(), len).await,
            Jail::Object(_) => Err(Error::Unsupported),
        }
    }

    /// SITE CHMOD: S3 stores no permission bits.
    pub async fn chmod(&self, path: &Authorized, mode: u32) -> Result<(), Error> {
        let path = path.path();
        match self {
            Jail::Disk(d) => d.chmod(path, mode).await,
            Jail::Object(_) => Err(Error::Unsupported),
        }
    }

    /// MFMT and MDTM with a time; returns the time the file has now (Unix seconds). On S3
    /// the time is kept as the object's `mtime` metadata (rclone's convention).
    pub async fn set_mtime(&self, path: &Authorized, mtime: SystemTime) -> Result<i64, Error> {
        let path = path.path();
        match self {
            Jail::Disk(d) => {
                d.set_mtime(path, mtime).await?;
                Ok(mtime
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64))
            }
            Jail::Object(o) => {
                let secs = mtime
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                Box::pin(o.set_mtime(path, secs)).await
            }
        }
    }
}
