//! Logging: the tracing subscriber (text or JSON lines, on stderr or in a file that SIGUSR1
//! reopens), and the xferlog transfer log in the wu-ftpd/vsftpd format that log analysers
//! and fail2ban already read.
//!
//! Events carry structured fields; passwords are never among them. Log files are written
//! by a dedicated thread or task, never from a session's own IO path.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

mod metrics;
mod registry;

pub use metrics::Metrics;
pub use registry::{Listed, SessionInfo, SessionView, Trace, TransferInfo, TransferView, Who};

/// A log file that can be reopened in place (after logrotate moved it).
#[derive(Debug, Clone)]
pub struct LogFile {
    path: PathBuf,
    file: Arc<Mutex<std::fs::File>>,
}

fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

impl LogFile {
    pub fn open(path: &Path) -> std::io::Result<LogFile> {
        Ok(LogFile {
            path: path.to_path_buf(),
            file: Arc::new(Mutex::new(open_append(path)?)),
        })
    }

    /// Opens the path again; lines written before and after all land somewhere.
    pub fn reopen(&self) -> std::io::Result<()> {
        let fresh = open_append(&self.path)?;
        if let Ok(mut f) = self.file.lock() {
            *f = fresh;
        }
        Ok(())
    }

    fn write_all(&self, bytes: &[u8]) -> std::io::Result<()> {
        match self.file.lock() {
            Ok(mut f) => f.write_all(bytes),
            Err(_) => Ok(()),
        }
    }
}

/// Writes through to the current file; the file lock is held only for that write.
pub struct LogWriter(LogFile);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the global subscriber, writing to `file` or stderr. `RUST_LOG` overrides the
/// default `info` level. Safe to call more than once (later calls are ignored).
///
/// Lines go through a queue to a thread of their own, which writes what has queued up in
/// one call and flushes whenever the queue is empty: a session never waits for a write(2),
/// and a busy server writes many lines per call. The queue never drops a line; when it is
/// full (the log's reader stalls), sessions wait, as they would for a direct write. Keep
/// the guard until the end: dropping it writes out what is queued.
pub fn init(
    format: LogFormat,
    file: Option<LogFile>,
) -> tracing_appender::non_blocking::WorkerGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = file.is_none() && std::io::stderr().is_terminal();
    let sink: Box<dyn Write + Send> = match file {
        Some(f) => Box::new(LogWriter(f)),
        None => Box::new(std::io::stderr()),
    };
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(crate::limits::LOG_QUEUE_LINES)
        .thread_name("wharf-log")
        .finish(std::io::BufWriter::with_capacity(64 << 10, sink));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_span_list(false)
            .try_init(),
    };
    guard
}

/// One completed or failed file transfer, for the xferlog.
#[derive(Debug, Clone)]
pub struct XferRecord {
    /// Seconds since the Unix epoch when the transfer ended.
    pub end: i64,
    pub seconds: u64,
    pub client: String,
    pub bytes: u64,
    pub path: Vec<u8>,
    pub ascii: bool,
    /// `true` for uploads (`i`), `false` for downloads (`o`).
    pub incoming: bool,
    pub anonymous: bool,
    /// The user name, or an anonymous user's claimed e-mail address.
    pub user: String,
    pub complete: bool,
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Escapes a field so it holds no white space or control character: those, the backslash,
/// and the bytes of a name that is not UTF-8 become `\ooo` octal escapes (as in fstab).
fn escape_field(bytes: &[u8], out: &mut String) {
    let octal = |b: u8, out: &mut String| out.push_str(&format!("\\{b:03o}"));
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            for c in text.chars() {
                if c <= ' ' || c == '\\' || c.is_control() {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        octal(b, out);
                    }
                } else {
                    out.push(c);
                }
            }
        }
        Err(_) => {
            for &b in bytes {
                if b <= b' ' || b == b'\\' || b >= 0x7f {
                    octal(b, out);
                } else {
                    out.push(b as char);
                }
            }
        }
    }
}

impl XferRecord {
    /// The wu-ftpd xferlog line (UTC time; without the newline):
    /// `Mon Nov 23 17:00:00 2026 1 127.0.0.1 6 /a.txt b _ o r judge ftp 0 * c`.
    pub fn line(&self) -> String {
        let t = time::OffsetDateTime::from_unix_timestamp(self.end)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let mut path = String::new();
        escape_field(&self.path, &mut path);
        let mut user = String::new();
        escape_field(self.user.as_bytes(), &mut user);
        if user.is_empty() {
            user.push('-');
        }
        format!(
            "{} {} {:>2} {:02}:{:02}:{:02} {} {} {} {} {} {} _ {} {} {} ftp 0 * {}",
            DAYS[usize::from(t.weekday().number_days_from_monday())],
            MONTHS[usize::from(u8::from(t.month())) - 1],
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.year(),
            self.seconds.max(1),
            self.client,
            self.bytes,
            path,
            if self.ascii { 'a' } else { 'b' },
            if self.incoming { 'i' } else { 'o' },
            if self.anonymous { 'a' } else { 'r' },
            user,
            if self.complete { 'c' } else { 'i' },
        )
    }
}

enum XferMsg {
    Line(String),
    Reopen,
}

/// The xferlog writer: sessions hand it lines; a task appends them.
#[derive(Debug, Clone)]
pub struct XferLog {
    tx: mpsc::UnboundedSender<XferMsg>,
}

impl std::fmt::Debug for XferMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("XferMsg")
    }
}

impl XferLog {
    /// Opens `path` (append) and starts the writer task.
    /// When the server ends, lines already queued are written, then the task ends.
    pub fn start(path: &Path, tasks: &crate::tasks::Tasks) -> std::io::Result<XferLog> {
        let file = LogFile::open(path)?;
        let (tx, mut rx) = mpsc::unbounded_channel::<XferMsg>();
        let ending = tasks.ending();
        tasks.spawn(async move {
            loop {
                let msg = tokio::select! {
                    msg = rx.recv() => msg,
                    _ = ending.cancelled() => rx.try_recv().ok(),
                };
                let Some(msg) = msg else {
                    return;
                };
                let file = file.clone();
                let _ = tokio::task::spawn_blocking(move || match msg {
                    XferMsg::Line(mut l) => {
                        l.push('\n');
                        file.write_all(l.as_bytes())
                    }
                    XferMsg::Reopen => file.reopen(),
                })
                .await;
            }
        });
        Ok(XferLog { tx })
    }

    pub fn record(&self, r: &XferRecord) {
        let _ = self.tx.send(XferMsg::Line(r.line()));
    }

    /// Reopens the file (SIGUSR1); lines already queued go to the old one.
    pub fn reopen(&self) {
        let _ = self.tx.send(XferMsg::Reopen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(path: &[u8]) -> XferRecord {
        XferRecord {
            end: 1_732_381_509, // Sat Nov 23 17:05:09 2024
            seconds: 0,
            client: "127.0.0.1".into(),
            bytes: 6,
            path: path.to_vec(),
            ascii: false,
            incoming: false,
            anonymous: false,
            user: "judge".into(),
            complete: true,
        }
    }

    #[test]
    fn xferlog_line() {
        assert_eq!(
            rec(b"/a.txt").line(),
            "Sat Nov 23 17:05:09 2024 1 127.0.0.1 6 /a.txt b _ o r judge ftp 0 * c"
        );
    }

    #[test]
    fn awkward_names_keep_fourteen_fields() {
        for name in [
            &b"/my file.txt"[..],
            b"/tab\there",
            b"/new\nline",
            b"/back\\slash",
            "/日本語 é".as_bytes(),
            b"/bad\xff",
        ] {
            let line = rec(name).line();
            assert_eq!(line.split(' ').count(), 18, "{line}");
        }
        assert!(rec(b"/my file.txt").line().contains(" /my\\040file.txt "));
        assert!(rec("/日本語".as_bytes()).line().contains(" /日本語 "));
    }
}
