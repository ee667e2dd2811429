//! Data transfers: `retr`, `stor`, `list` (one stream at a time) and `smallfiles` (many
//! sessions, each fetching a small file repeatedly over a new passive connection).

use std::io;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;
use tokio::time::timeout;

use crate::ftp::{Control, Result, Stream, Target};
use crate::stats::{Errors, percentile_ms};

/// Read and write chunk for bulk transfers.
const BULK_CHUNK: usize = 256 * 1024;
/// Read chunk for small files and listings.
const SMALL_CHUNK: usize = 64 * 1024;

/// Logs in, turns on PROT P under TLS, and selects binary type.
async fn session(t: &Target) -> Result<Control> {
    let mut c = Control::login(t).await?;
    if t.tls.is_some() {
        c.prot_p().await?;
    }
    c.cmd("TYPE I").await?;
    Ok(c)
}

/// Reads a data stream to its end, counting bytes and (if asked) newlines; a TLS peer that
/// closes without close_notify has still sent everything.
async fn drain(s: &mut Stream, buf: &mut [u8], count_lines: bool) -> io::Result<(u64, u64)> {
    let mut total = 0u64;
    let mut newlines = 0u64;
    loop {
        match s.read(buf).await {
            Ok(0) => break,
            Ok(n) => {
                total += n as u64;
                if count_lines {
                    newlines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
    }
    Ok((total, newlines))
}

/// Runs one download or listing command; returns (bytes, lines, seconds).
async fn fetch(
    c: &mut Control,
    t: &Target,
    command: &str,
    buf: &mut [u8],
    limit: Duration,
    count_lines: bool,
) -> Result<(u64, u64, f64)> {
    let t0 = Instant::now();
    let mut d = c.transfer(t, command, t.tls.is_some()).await?;
    let (bytes, lines) = timeout(limit, drain(&mut d, buf, count_lines))
        .await
        .map_err(|_| format!("{command}: data timed out"))?
        .map_err(|e| format!("{command}: data: {e}"))?;
    drop(d);
    let r = c.reply().await?;
    if r.code != 226 && r.code != 250 {
        return Err(format!("{command}: {} {}", r.code, r.text.trim_end()));
    }
    Ok((bytes, lines, t0.elapsed().as_secs_f64()))
}

fn mb_per_s(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / secs / 1e6
}

/// `retr`: downloads `path` `count` times over one session.
pub async fn retr(t: Target, path: &str, count: usize, limit: Duration) -> Result<Value> {
    let mut c = session(&t).await?;
    let mut buf = vec![0u8; BULK_CHUNK];
    let mut runs = Vec::new();
    for _ in 0..count {
        let (bytes, _, secs) =
            fetch(&mut c, &t, &format!("RETR {path}"), &mut buf, limit, false).await?;
        runs.push(json!({"bytes": bytes, "secs": secs, "mb_per_s": mb_per_s(bytes, secs)}));
    }
    c.quit().await;
    Ok(summary(runs))
}

/// `stor`: uploads `size` bytes to `path` `count` times (the same name each time).
pub async fn stor(
    t: Target,
    path: &str,
    size: u64,
    count: usize,
    limit: Duration,
) -> Result<Value> {
    let mut c = session(&t).await?;
    let chunk = pattern(BULK_CHUNK);
    let mut runs = Vec::new();
    for _ in 0..count {
        let t0 = Instant::now();
        let command = format!("STOR {path}");
        let mut d = c.transfer(&t, &command, t.tls.is_some()).await?;
        let sent = timeout(limit, async {
            let mut left = size;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                d.write_all(&chunk[..n]).await?;
                left -= n as u64;
            }
            d.shutdown().await?;
            // Read until the server closes: closing a socket with unread bytes (a TLS 1.3
            // session ticket, say) sends RST, and the server may lose the upload's tail.
            let mut sink = [0u8; 4096];
            drain(&mut d, &mut sink, false).await?;
            Ok::<u64, io::Error>(size)
        })
        .await
        .map_err(|_| format!("{command}: data timed out"))?
        .map_err(|e| format!("{command}: data: {e}"))?;
        drop(d);
        let r = c.reply().await?;
        if r.code != 226 && r.code != 250 {
            return Err(format!("{command}: {} {}", r.code, r.text.trim_end()));
        }
        let secs = t0.elapsed().as_secs_f64();
        runs.push(json!({"bytes": sent, "secs": secs, "mb_per_s": mb_per_s(sent, secs)}));
    }
    c.quit().await;
    Ok(summary(runs))
}

/// `list`: LIST of `path`, `count` times; reports each time and the line count.
pub async fn list(t: Target, path: &str, count: usize, limit: Duration) -> Result<Value> {
    let mut c = session(&t).await?;
    let mut buf = vec![0u8; SMALL_CHUNK];
    let mut secs = Vec::new();
    let mut last = (0, 0);
    for _ in 0..count {
        let (bytes, lines, s) =
            fetch(&mut c, &t, &format!("LIST {path}"), &mut buf, limit, true).await?;
        secs.push(Duration::from_secs_f64(s));
        last = (bytes, lines);
    }
    c.quit().await;
    Ok(json!({
        "count": count,
        "bytes": last.0,
        "lines": last.1,
        "p50_ms": percentile_ms(&mut secs, 50.0),
        "min_ms": secs.first().map(|d| d.as_secs_f64() * 1e3),
    }))
}

pub fn summary(runs: Vec<Value>) -> Value {
    let mut rates: Vec<f64> = runs.iter().filter_map(|r| r["mb_per_s"].as_f64()).collect();
    rates.sort_by(f64::total_cmp);
    let median = rates.get(rates.len() / 2).copied();
    json!({"runs": runs, "mb_per_s": median})
}

/// Deterministic, incompressible-looking bytes (xorshift64).
pub fn pattern(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

struct SmallSession {
    latencies: Vec<Duration>,
    bytes: u64,
    errors: Errors,
    not_done: u64,
}

async fn small_session(t: Target, path: String, files: usize) -> SmallSession {
    let mut s = SmallSession {
        latencies: Vec::with_capacity(files),
        bytes: 0,
        errors: Errors::default(),
        not_done: 0,
    };
    let mut c = match session(&t).await {
        Ok(c) => c,
        Err(e) => {
            s.errors.add(e);
            s.not_done = files as u64;
            return s;
        }
    };
    let mut buf = vec![0u8; SMALL_CHUNK];
    let command = format!("RETR {path}");
    for i in 0..files {
        match fetch(&mut c, &t, &command, &mut buf, t.op_timeout, false).await {
            Ok((bytes, _, secs)) => {
                s.bytes += bytes;
                s.latencies.push(Duration::from_secs_f64(secs));
            }
            Err(e) => {
                // The control connection's state is unknown after a failure: stop here.
                s.errors.add(e);
                s.not_done = (files - i - 1) as u64;
                return s;
            }
        }
    }
    c.quit().await;
    s
}

/// `smallfiles`: `sessions` concurrent sessions, each downloading `path` `files` times.
pub async fn smallfiles(t: Target, path: &str, sessions: usize, files: usize) -> Value {
    let start = Instant::now();
    let mut set = JoinSet::new();
    for _ in 0..sessions {
        set.spawn(small_session(t.clone(), path.to_string(), files));
    }
    let mut latencies = Vec::new();
    let mut errors = Errors::default();
    let mut bytes = 0;
    let mut not_done = 0;
    while let Some(r) = set.join_next().await {
        match r {
            Ok(s) => {
                latencies.extend(s.latencies);
                errors.merge(s.errors);
                bytes += s.bytes;
                not_done += s.not_done;
            }
            Err(e) => errors.add(format!("session: {e}")),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    json!({
        "sessions": sessions,
        "files_per_session": files,
        "files": latencies.len(),
        "bytes": bytes,
        "secs": secs,
        "files_per_s": latencies.len() as f64 / secs,
        "p50_ms": percentile_ms(&mut latencies, 50.0),
        "p99_ms": percentile_ms(&mut latencies, 99.0),
        "errors": errors.count,
        "not_done": not_done,
        "error_samples": errors.samples,
    })
}
