//! `idle`: opens N logged-in sessions (a bounded number logging in at once), says when they
//! are all up, holds them idle until the hold time ends or SIGTERM/SIGINT arrives, then
//! quits them all. Counts sessions that failed to log in and sessions the server dropped.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::ftp::{Control, Target};
use crate::stats::Errors;

/// How often the set-up phase checks its counters.
const POLL: Duration = Duration::from_millis(20);
/// How long the final QUITs may take in all.
const QUIT_GRACE: Duration = Duration::from_secs(30);

enum Outcome {
    Held,
    Failed(String),
    Dropped(String),
    Released,
}

struct Counters {
    up: AtomicU64,
    failed: AtomicU64,
}

async fn session(
    t: Target,
    gate: Arc<Semaphore>,
    mut release: watch::Receiver<bool>,
    n: Arc<Counters>,
) -> Outcome {
    let permit = tokio::select! {
        p = gate.acquire_owned() => p.ok(),
        _ = release.wait_for(|r| *r) => None,
    };
    let Some(permit) = permit else {
        return Outcome::Released;
    };
    let login = tokio::select! {
        r = Control::login(&t) => Some(r),
        _ = release.wait_for(|r| *r) => None,
    };
    let Some(login) = login else {
        return Outcome::Released;
    };
    drop(permit);
    let mut c = match login {
        Ok(c) => c,
        Err(e) => {
            n.failed.fetch_add(1, Ordering::Relaxed);
            return Outcome::Failed(e);
        }
    };
    n.up.fetch_add(1, Ordering::Relaxed);
    let released = tokio::select! {
        _ = release.wait_for(|r| *r) => None,
        why = c.wait_closed() => Some(why),
    };
    match released {
        None => {
            c.quit().await;
            Outcome::Held
        }
        Some(why) => Outcome::Dropped(why),
    }
}

pub struct Options {
    pub sessions: usize,
    pub connect_concurrency: usize,
    pub hold: Duration,
    pub setup_timeout: Duration,
    pub ready_file: Option<PathBuf>,
}

pub async fn run(t: Target, o: Options) -> Value {
    let start = Instant::now();
    let gate = Arc::new(Semaphore::new(o.connect_concurrency.max(1)));
    let (release_tx, release_rx) = watch::channel(false);
    let n = Arc::new(Counters {
        up: AtomicU64::new(0),
        failed: AtomicU64::new(0),
    });
    let mut set = JoinSet::new();
    for _ in 0..o.sessions {
        set.spawn(session(
            t.clone(),
            gate.clone(),
            release_rx.clone(),
            n.clone(),
        ));
    }
    let mut term = signal(SignalKind::terminate()).ok();
    let mut int = signal(SignalKind::interrupt()).ok();
    let total = o.sessions as u64;
    let mut stopped_early = false;
    while n.up.load(Ordering::Relaxed) + n.failed.load(Ordering::Relaxed) < total
        && start.elapsed() < o.setup_timeout
    {
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = recv(&mut term) => { stopped_early = true; break; }
            _ = recv(&mut int) => { stopped_early = true; break; }
        }
    }
    let setup_s = start.elapsed().as_secs_f64();
    let up = n.up.load(Ordering::Relaxed);
    let ready = json!({
        "event": "ready",
        "up": up,
        "failed": n.failed.load(Ordering::Relaxed),
        "setup_s": setup_s,
    });
    eprintln!("{ready}");
    if let Some(path) = &o.ready_file {
        let tmp = path.with_extension("tmp");
        if std::fs::write(&tmp, format!("{ready}\n")).is_ok() {
            let _ = std::fs::rename(&tmp, path);
        }
    }
    if !stopped_early {
        tokio::select! {
            _ = tokio::time::sleep(o.hold) => {}
            _ = recv(&mut term) => {}
            _ = recv(&mut int) => {}
        }
    }
    let held_s = start.elapsed().as_secs_f64() - setup_s;
    let _ = release_tx.send(true);
    let mut errors = Errors::default();
    let mut dropped = Errors::default();
    let (mut held, mut released) = (0u64, 0u64);
    let deadline = tokio::time::sleep(QUIT_GRACE);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            r = set.join_next() => match r {
                None => break,
                Some(Ok(Outcome::Held)) => held += 1,
                Some(Ok(Outcome::Released)) => released += 1,
                Some(Ok(Outcome::Failed(e))) => errors.add(e),
                Some(Ok(Outcome::Dropped(e))) => dropped.add(e),
                Some(Err(e)) => errors.add(format!("session: {e}")),
            },
            _ = &mut deadline => {
                set.abort_all();
                break;
            }
        }
    }
    json!({
        "sessions": o.sessions,
        "up": up,
        "setup_s": setup_s,
        "held_s": held_s,
        "held_to_end": held,
        "never_started": released,
        "errors": errors.count,
        "dropped": dropped.count,
        "error_samples": errors.samples,
        "drop_samples": dropped.samples,
    })
}

async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}
