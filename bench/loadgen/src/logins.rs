//! `logins`: N concurrent clients, each looping connect + (AUTH TLS) + USER/PASS + QUIT until
//! the time is up. Reports completed logins per second and the connect-to-230 latency.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::ftp::{Control, Target};
use crate::stats::{Errors, percentile_ms};

/// Pause after a failed attempt so a refusing server is not hammered in a tight loop.
const BACKOFF: Duration = Duration::from_millis(10);

struct Worker {
    latencies: Vec<Duration>,
    errors: Errors,
}

async fn worker(t: Target, deadline: Instant) -> Worker {
    let mut w = Worker {
        latencies: Vec::new(),
        errors: Errors::default(),
    };
    while Instant::now() < deadline {
        let t0 = Instant::now();
        match Control::login(&t).await {
            Ok(c) => {
                let latency = t0.elapsed();
                c.quit().await;
                // Only whole cycles that ended inside the window count.
                if Instant::now() <= deadline {
                    w.latencies.push(latency);
                }
            }
            Err(e) => {
                w.errors.add(e);
                tokio::time::sleep(BACKOFF).await;
            }
        }
    }
    w
}

pub async fn run(t: Target, concurrency: usize, duration: Duration) -> Value {
    let start = Instant::now();
    let deadline = start + duration;
    let mut set = JoinSet::new();
    for _ in 0..concurrency {
        set.spawn(worker(t.clone(), deadline));
    }
    let mut latencies = Vec::new();
    let mut errors = Errors::default();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(w) => {
                latencies.extend(w.latencies);
                errors.merge(w.errors);
            }
            Err(e) => errors.add(format!("worker: {e}")),
        }
    }
    let secs = duration.as_secs_f64();
    json!({
        "concurrency": concurrency,
        "duration_s": secs,
        "logins": latencies.len(),
        "logins_per_s": latencies.len() as f64 / secs,
        "p50_ms": percentile_ms(&mut latencies, 50.0),
        "p99_ms": percentile_ms(&mut latencies, 99.0),
        "errors": errors.count,
        "error_samples": errors.samples,
        "wall_s": start.elapsed().as_secs_f64(),
    })
}
