//! Uploads to S3: how one begins ([`UploadStart`]: fresh, resumed, appended), the
//! interrupted uploads S3 still holds ([`Pending`], found with ListMultipartUploads and
//! ListParts, and aborted by the janitor), and [`Upload`], the multipart state machine
//! (part buffers, parts in flight, completion). Nothing is visible until an upload
//! completes. Namespace operations (stat, list, rename, …) live in `store.rs`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use wharf_proto::listing::Kind;

use super::ObjectStore;
use super::store::MIN_PART;
use crate::error::Error;
use crate::vfs::VPath;

/// The largest range one UploadPartCopy may take.
const MAX_COPY_PART: u64 = 5 << 30;

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

impl ObjectStore {
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
        // (S3's own time: a time set by MFMT says nothing of when the bytes came.)
        if let Ok(Some(h)) = self.head(&ObjectStore::rel(path)?).await
            && h.stored >= unix(latest.initiated)
        {
            return Ok(None);
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

pub(super) fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
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
            let old = self.store.read_all(&self.rel).await?;
            self.buf.extend_from_slice(&old);
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
            return self.store.write_all(&self.rel, data).await;
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

#[cfg(test)]
mod tests {
    use futures_util::TryStreamExt;

    use super::*;
    use crate::vfs::s3::store::tests::{put, v};

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
}
