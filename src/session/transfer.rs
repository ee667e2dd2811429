//! One data transfer, run as its own task so the session can answer ABOR and STAT while it
//! runs: open the data connection, move the bytes, close the connection.
//!
//! Plain RETR in TYPE I is sendfile(2), plain STOR in TYPE I splice(2) (see `zerocopy`).
//! Otherwise bytes move through two large buffers per
//! transfer that alternate between the network and a blocking-pool disk read or write
//! (never a buffer per chunk, never a copy through tokio's file buffer). TYPE A conversion
//! happens chunk by chunk. The data connection is closed before the task ends,
//! so the session's 226 always follows the close.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use tokio_rustls::TlsAcceptor;

use crate::config::TlsReuse;
use crate::datachan::DataSetup;
use crate::error::{DataError, Error, TransferError};
use crate::limits::{Bucket, FIRST_TRANSFER_BUFFER, TRANSFER_BUFFER};
use crate::tls::{SessionToken, Stream, TokenOwners};

use super::zerocopy;
use wharf_proto::ascii;

/// What to move: one kind per command family; where the bytes come from or go to
/// (a local file or S3) is the job's data, not its kind.
#[derive(Debug)]
pub enum Job {
    /// RETR: to the client. `skip` drops that many bytes of the converted TYPE A stream
    /// (REST in ASCII mode); in TYPE I the source is already positioned.
    Send {
        from: Sending,
        ascii: bool,
        skip: u64,
    },
    /// LIST/NLST/MLSD: a formatted listing.
    Listing(Listing),
    /// STOR/APPE/STOU: from the client.
    Receive { into: Receiving, ascii: bool },
}

/// Where a download's bytes come from.
pub enum Sending {
    File {
        file: std::fs::File,
        /// Bytes of the file from its position on, as it was opened.
        left: u64,
        /// Plain binary sends may use sendfile(2).
        sendfile: bool,
    },
    /// An object's bytes as S3 streams them.
    Stream(crate::vfs::s3::ByteStream),
}

/// A listing: whole, or (a big remote directory) in formatted pieces as they are listed.
pub enum Listing {
    Whole(Vec<u8>),
    Pieces(tokio::sync::mpsc::Receiver<Result<Vec<u8>, Error>>),
}

/// Where an upload's bytes go.
pub enum Receiving {
    File(std::fs::File),
    /// S3: parts go out as they fill; the session completes the upload (or keeps it
    /// resumable, or aborts it) when the transfer has ended.
    Object(Arc<tokio::sync::Mutex<crate::vfs::s3::Upload>>),
}

macro_rules! opaque_debug {
    ($($t:ty),*) => {$(
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(stringify!($t))
            }
        }
    )*};
}
opaque_debug!(Sending, Listing, Receiving);

/// Everything the task needs besides the job.
pub struct Params {
    pub setup: DataSetup,
    pub local: IpAddr,
    pub connect_timeout: Duration,
    pub stall: Duration,
    pub progress: Arc<AtomicU64>,
    /// PROT P: the data connection is TLS, with wharf as the server.
    pub tls: Option<TlsAcceptor>,
    pub reuse: TlsReuse,
    /// The control connection's session identity, for the reuse check.
    pub token: SessionToken,
    /// The logged-in user and who owns which token, for the reuse check.
    pub user: String,
    pub peer: IpAddr,
    pub owners: Arc<TokenOwners>,
    /// The user's bandwidth allowance for this direction, if limited.
    pub bucket: Option<Arc<Bucket>>,
    /// Set by the session to stop: an upload then writes out what it has received.
    pub cancel: tokio_util::sync::CancellationToken,
    /// An upload's charge against its root's quota.
    pub charge: Option<Arc<crate::quota::Charge>>,
}

/// What a finished transfer reports.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub bytes: u64,
    pub tls: bool,
    /// The data connection resumed a TLS session.
    pub resumed: bool,
}

/// What the copy loops report to and are bounded by.
pub(super) struct Meter {
    pub stall: Duration,
    pub progress: Arc<AtomicU64>,
    pub bucket: Option<Arc<Bucket>>,
    pub cancel: tokio_util::sync::CancellationToken,
    pub charge: Option<Arc<crate::quota::Charge>>,
}

impl Meter {
    /// An upload has received `total` bytes: shown as progress, charged to the quota
    /// (past it the upload stops with 552).
    pub(super) fn received(&self, total: u64) -> Result<(), TransferError> {
        self.progress.store(total, Ordering::Relaxed);
        match &self.charge {
            Some(c) => c.reach(total).map_err(TransferError::File),
            None => Ok(()),
        }
    }

    /// How much to move at a time: the whole buffer, or small steps under a rate limit.
    fn chunk(&self) -> usize {
        self.bucket.as_ref().map_or(TRANSFER_BUFFER, |b| b.chunk())
    }

    async fn pace(&self, n: usize) {
        if let Some(b) = &self.bucket {
            b.take(n).await;
        }
    }
}

/// Runs one transfer to its end. Returns the bytes moved on the wire.
pub async fn run(p: Params, job: Job) -> Result<Outcome, TransferError> {
    let Params {
        setup,
        local,
        connect_timeout,
        stall,
        progress,
        tls,
        reuse,
        token,
        user,
        peer,
        owners,
        bucket,
        cancel,
        charge,
    } = p;
    let mut stream = setup.open(local, connect_timeout, tls.as_ref()).await?;
    let is_tls = stream.is_tls();
    let resumed_token = stream.resumed_token();
    let resumed = resumed_token.is_some_and(|t| owners.accepts(&t, &token, &user, peer));
    if is_tls && reuse == TlsReuse::Require && !resumed {
        tracing::info!(
            resumed_any = resumed_token.is_some(),
            resumed_any_kind = ?stream.handshake_kind(),
            "data connection did not resume a session of this user"
        );
        return Err(DataError::NotResumed.into());
    }
    let p = Meter {
        stall,
        progress,
        bucket,
        cancel,
        charge,
    };
    let moved = move_bytes(job, &mut stream, &p).await?;
    // Close before the session says 226 (clients wait for EOF, some old ones insist); on
    // TLS this sends close_notify first.
    let _ = io_stall(p.stall, stream.shutdown()).await;
    drop(stream);
    Ok(Outcome {
        bytes: moved,
        tls: is_tls,
        resumed,
    })
}

/// Moves the job's bytes over the open data connection; returns how many.
async fn move_bytes(job: Job, stream: &mut Stream, p: &Meter) -> Result<u64, TransferError> {
    Ok(match job {
        Job::Listing(Listing::Whole(bytes)) => {
            io_stall(p.stall, stream.write_all(&bytes))
                .await?
                .map_err(TransferError::Network)?;
            p.progress.store(bytes.len() as u64, Ordering::Relaxed);
            bytes.len() as u64
        }
        Job::Listing(Listing::Pieces(mut pieces)) => {
            let mut total = 0u64;
            loop {
                let piece = tokio::select! {
                    p = io_stall(p.stall, pieces.recv()) => p?,
                    _ = p.cancel.cancelled() => return Err(TransferError::Cancelled),
                };
                let Some(piece) = piece else { break };
                let piece = piece.map_err(TransferError::File)?;
                io_stall(p.stall, stream.write_all(&piece))
                    .await?
                    .map_err(TransferError::Network)?;
                total += piece.len() as u64;
                p.progress.store(total, Ordering::Relaxed);
            }
            total
        }
        Job::Send {
            from:
                Sending::File {
                    file,
                    left,
                    sendfile,
                },
            ascii,
            skip,
        } => match &*stream {
            // Plain TCP, bytes as they are, no rate limit: the kernel copies page cache to
            // the socket (sendfile), no user-space buffer at all.
            Stream::Plain(tcp) if sendfile && !ascii && p.bucket.is_none() => {
                match zerocopy::send_zero_copy(&file, left, tcp, p).await? {
                    Some(n) => n,
                    // The kernel refused sendfile for this file: copy through a buffer.
                    None => send(file, left, stream, false, 0, p).await?,
                }
            }
            _ => send(file, left, stream, ascii, skip, p).await?,
        },
        Job::Send {
            from: Sending::Stream(source),
            ascii,
            skip,
        } => send_stream(source, stream, ascii, skip, p).await?,
        Job::Receive {
            into: Receiving::File(file),
            ascii,
        } => match &*stream {
            // Plain TCP, bytes as they are, no rate limit: spliced into the file.
            Stream::Plain(tcp)
                if !ascii && p.bucket.is_none() && zerocopy::can_splice_into(&file) =>
            {
                zerocopy::receive_spliced(tcp, file, p).await?
            }
            _ => receive(stream, file, ascii, p).await?,
        },
        Job::Receive {
            into: Receiving::Object(upload),
            ascii,
        } => {
            let mut upload = upload.lock().await;
            receive_object(stream, &mut upload, ascii, p).await?
        }
    })
}

pub(super) async fn io_stall<T>(
    stall: Duration,
    f: impl Future<Output = T>,
) -> Result<T, TransferError> {
    tokio::time::timeout(stall, f)
        .await
        .map_err(|_| TransferError::Stalled(stall))
}

/// Sends `file` from its position; `left` is what remains of it, to size the buffers.
async fn send(
    file: std::fs::File,
    left: u64,
    out: &mut (impl AsyncWrite + Unpin),
    ascii: bool,
    mut skip: u64,
    p: &Meter,
) -> Result<u64, TransferError> {
    // Buffers no bigger than what is left of the file (plus one byte to see its end).
    let size = usize::try_from(left.saturating_add(1))
        .map_or(TRANSFER_BUFFER, |l| l.clamp(4096, TRANSFER_BUFFER));
    let mut disk = DiskReader::new(file);
    disk.start(vec![0u8; size], p.chunk());
    let mut spare = vec![0u8; size];
    let mut conv = Vec::new();
    let mut total = 0u64;
    loop {
        let (buf, n) = disk.next().await?;
        if n == 0 {
            break;
        }
        // The next chunk is read from the disk while this one goes out.
        disk.start(spare, p.chunk());
        let chunk = wire_form(&buf[..n], ascii, &mut conv, &mut skip);
        p.pace(chunk.len()).await;
        io_stall(p.stall, out.write_all(chunk))
            .await?
            .map_err(TransferError::Network)?;
        total += chunk.len() as u64;
        p.progress.store(total, Ordering::Relaxed);
        spare = buf;
    }
    Ok(total)
}

/// A chunk as it goes on the wire: in TYPE A converted (into `conv`) and with the first
/// `skip` converted bytes dropped (REST in ASCII mode).
fn wire_form<'a>(chunk: &'a [u8], ascii: bool, conv: &'a mut Vec<u8>, skip: &mut u64) -> &'a [u8] {
    if !ascii {
        return chunk;
    }
    conv.clear();
    ascii::encode(chunk, conv);
    let s = (*skip).min(conv.len() as u64) as usize;
    *skip -= s as u64;
    &conv[s..]
}

/// Sends an object's bytes as they arrive from S3.
async fn send_stream(
    mut source: crate::vfs::s3::ByteStream,
    out: &mut (impl AsyncWrite + Unpin),
    ascii: bool,
    mut skip: u64,
    p: &Meter,
) -> Result<u64, TransferError> {
    use futures_util::StreamExt;
    let mut conv = Vec::new();
    let mut total = 0u64;
    loop {
        let next = tokio::select! {
            n = io_stall(p.stall, source.next()) => n?,
            _ = p.cancel.cancelled() => return Err(TransferError::Cancelled),
        };
        let Some(chunk) = next else {
            break;
        };
        let chunk = chunk.map_err(|_| TransferError::File(Error::Storage))?;
        let bytes = wire_form(&chunk, ascii, &mut conv, &mut skip);
        // Rate limits pace in steps, like file sends.
        for piece in bytes.chunks(p.chunk()) {
            p.pace(piece.len()).await;
            io_stall(p.stall, out.write_all(piece))
                .await?
                .map_err(TransferError::Network)?;
            total += piece.len() as u64;
            p.progress.store(total, Ordering::Relaxed);
        }
    }
    Ok(total)
}

/// Receives into an S3 upload; full parts are sent while more arrives.
async fn receive_object(
    input: &mut (impl AsyncRead + Unpin),
    upload: &mut crate::vfs::s3::Upload,
    ascii: bool,
    p: &Meter,
) -> Result<u64, TransferError> {
    let mut buf = vec![0u8; FIRST_TRANSFER_BUFFER];
    let mut decoder = ascii::Decoder::default();
    let mut conv = Vec::new();
    let mut total = 0u64;
    let mut failed = None;
    loop {
        if let Some(e) = failed.take() {
            return Err(TransferError::Network(e));
        }
        let want = p.chunk().min(buf.len());
        let n = fill(input, &mut buf[..want], &mut failed, p).await?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if n == buf.len() && buf.len() < TRANSFER_BUFFER {
            buf.resize((buf.len() * 4).min(TRANSFER_BUFFER), 0);
        }
        let data = if ascii {
            conv.clear();
            decoder.decode(&buf[..n], &mut conv);
            &conv[..]
        } else {
            &buf[..n]
        };
        p.received(total)?;
        upload.write(data).await.map_err(TransferError::File)?;
        tokio::select! {
            _ = p.pace(n) => {}
            _ = p.cancel.cancelled() => {}
        }
    }
    if ascii {
        conv.clear();
        decoder.finish(&mut conv);
        upload.write(&conv).await.map_err(TransferError::File)?;
    }
    Ok(total)
}

/// Reads a file on the blocking pool one chunk ahead of the sender: two buffers alternate,
/// nothing is copied or allocated per chunk.
struct DiskReader {
    file: Arc<std::fs::File>,
    reading: Option<tokio::task::JoinHandle<(Vec<u8>, std::io::Result<usize>)>>,
    /// What the read in flight asked for.
    asked: usize,
    /// A read came back short: the end of the file, no need to ask again.
    ended: bool,
}

impl DiskReader {
    fn new(file: std::fs::File) -> DiskReader {
        DiskReader {
            file: Arc::new(file),
            reading: None,
            asked: 0,
            ended: false,
        }
    }

    /// Starts reading up to `want` bytes (at most the buffer's length) into `buf`.
    fn start(&mut self, mut buf: Vec<u8>, want: usize) {
        if self.ended {
            return;
        }
        let want = want.min(buf.len());
        self.asked = want;
        let file = self.file.clone();
        self.reading = Some(tokio::task::spawn_blocking(move || {
            let mut filled = 0;
            while filled < want {
                match std::io::Read::read(&mut &*file, &mut buf[filled..want]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return (buf, Err(e)),
                }
            }
            (buf, Ok(filled))
        }));
    }

    /// The chunk read last and its length (0 at the end of the file).
    async fn next(&mut self) -> Result<(Vec<u8>, usize), TransferError> {
        let Some(reading) = self.reading.take() else {
            return Ok((Vec::new(), 0));
        };
        let (buf, result) = reading
            .await
            .map_err(|e| TransferError::File(std::io::Error::other(e).into()))?;
        let n = result.map_err(|e| TransferError::File(e.into()))?;
        // A regular file reads short only at its end.
        self.ended = n < self.asked;
        Ok((buf, n))
    }
}

async fn receive(
    input: &mut (impl AsyncRead + Unpin),
    file: std::fs::File,
    ascii: bool,
    p: &Meter,
) -> Result<u64, TransferError> {
    let mut disk = DiskWriter::new(file);
    let mut size = FIRST_TRANSFER_BUFFER;
    let mut buf = vec![0u8; size];
    let mut decoder = ascii::Decoder::default();
    let mut total = 0u64;
    let mut failed = None;
    loop {
        if let Some(e) = failed.take() {
            disk.free().await?;
            return Err(TransferError::Network(e));
        }
        let want = p.chunk().min(size);
        let n = match fill(input, &mut buf[..want], &mut failed, p).await {
            Ok(n) => n,
            Err(e) => {
                // What was received is in the file before the transfer ends (a kept
                // partial upload holds every byte the client saw counted).
                disk.free().await?;
                return Err(e);
            }
        };
        if n == 0 {
            break;
        }
        total += n as u64;
        if n == want && size < TRANSFER_BUFFER {
            size = (size * 4).min(TRANSFER_BUFFER);
        }
        if ascii {
            let mut conv = disk.free().await?;
            conv.clear();
            decoder.decode(&buf[..n], &mut conv);
            disk.write(conv).await?;
            buf.resize(size, 0);
        } else {
            // The filled buffer goes to the disk as it is; the one written before comes back.
            buf.truncate(n);
            buf = disk.write(buf).await?;
            buf.resize(size, 0);
        }
        if let Err(e) = p.received(total) {
            disk.free().await?;
            return Err(e);
        }
        tokio::select! {
            _ = p.pace(n) => {}
            _ = p.cancel.cancelled() => {}
        }
    }
    if ascii {
        let mut conv = disk.free().await?;
        conv.clear();
        decoder.finish(&mut conv);
        disk.write(conv).await?;
    }
    // Every byte is in the file before the session says 226.
    disk.free().await?;
    Ok(total)
}

/// Waits for data, then takes whatever more is already there, up to `buf`'s length:
/// large disk writes and few hops to the blocking pool, yet nothing held back waiting for
/// bytes that have not come. 0 at the end of the stream. An error after some data goes to
/// `failed`, for after that data is written.
async fn fill(
    input: &mut (impl AsyncRead + Unpin),
    buf: &mut [u8],
    failed: &mut Option<std::io::Error>,
    p: &Meter,
) -> Result<usize, TransferError> {
    let first = tokio::select! {
        r = io_stall(p.stall, input.read(buf)) => r?,
        _ = p.cancel.cancelled() => return Err(TransferError::Cancelled),
    };
    let mut filled = match first {
        Ok(n) => n,
        // Many clients end a TLS upload without close_notify; the bytes are all there.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
        Err(e) => return Err(TransferError::Network(e)),
    };
    while filled > 0 && filled < buf.len() {
        match ready_now(input.read(&mut buf[filled..])) {
            Some(Ok(0)) | None => break,
            Some(Ok(n)) => filled += n,
            Some(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Some(Err(e)) => {
                *failed = Some(e);
                break;
            }
        }
    }
    Ok(filled)
}

/// Polls `f` once: its output if it is ready at once. Socket and TLS reads are
/// cancel-safe, so dropping a pending one loses nothing.
fn ready_now<F: Future>(f: F) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

/// Writes a file on the blocking pool, one whole buffer at a time, while the caller fills
/// the next one: two buffers alternate, nothing is copied or allocated per chunk.
struct DiskWriter {
    file: Arc<std::fs::File>,
    writing: Option<tokio::task::JoinHandle<(Vec<u8>, std::io::Result<()>)>>,
}

impl DiskWriter {
    fn new(file: std::fs::File) -> DiskWriter {
        DiskWriter {
            file: Arc::new(file),
            writing: None,
        }
    }

    /// Starts writing `data` once the previous write is done; returns that write's buffer
    /// to fill again (empty the first time).
    async fn write(&mut self, data: Vec<u8>) -> Result<Vec<u8>, TransferError> {
        let free = self.free().await?;
        let file = self.file.clone();
        self.writing = Some(tokio::task::spawn_blocking(move || {
            let r = std::io::Write::write_all(&mut &*file, &data);
            (data, r)
        }));
        Ok(free)
    }

    /// Waits for the write in progress; returns its buffer.
    async fn free(&mut self) -> Result<Vec<u8>, TransferError> {
        let Some(writing) = self.writing.take() else {
            return Ok(Vec::new());
        };
        let (buf, result) = writing
            .await
            .map_err(|e| TransferError::File(std::io::Error::other(e).into()))?;
        result.map_err(|e| TransferError::File(e.into()))?;
        Ok(buf)
    }
}
