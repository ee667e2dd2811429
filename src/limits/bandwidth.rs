//! Bandwidth: token buckets shared by the transfers of one user.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;

/// A token bucket: `rate` bytes per second, shared by every transfer that holds it, so
/// concurrent transfers of one user split the allowance between them.
#[derive(Debug)]
pub struct Bucket {
    rate: f64,
    /// Tokens (may go negative: debt that the next taker waits out) and when last filled.
    state: Mutex<(f64, tokio::time::Instant)>,
}

impl Bucket {
    pub fn new(rate: u64) -> Bucket {
        Bucket {
            rate: rate as f64,
            state: Mutex::new((0.0, tokio::time::Instant::now())),
        }
    }

    /// A chunk size that keeps the flow smooth at this rate (about 1/8 s of data).
    pub fn chunk(&self) -> usize {
        ((self.rate / 8.0) as usize).clamp(4096, TRANSFER_BUFFER)
    }

    /// Accounts for `n` bytes, waiting as long as the rate requires.
    pub async fn take(&self, n: usize) {
        let wait = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let now = tokio::time::Instant::now();
            // At most a tenth of a second of burst builds up while idle.
            let burst = self.rate / 10.0;
            st.0 = (st.0 + now.duration_since(st.1).as_secs_f64() * self.rate).min(burst);
            st.1 = now;
            st.0 -= n as f64;
            if st.0 < 0.0 {
                Duration::from_secs_f64(-st.0 / self.rate)
            } else {
                Duration::ZERO
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// The buckets of every user, created on first use.
#[derive(Debug, Default)]
pub struct Buckets {
    inner: Mutex<HashMap<(String, bool), Arc<Bucket>>>,
}

impl Buckets {
    /// The shared bucket for `user`'s uploads (`up`) or downloads; `None` when `rate` is 0.
    pub fn get(&self, user: &str, up: bool, rate: u64) -> Option<Arc<Bucket>> {
        if rate == 0 {
            return None;
        }
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let b = m
            .entry((user.to_string(), up))
            .or_insert_with(|| Arc::new(Bucket::new(rate)));
        if b.rate != rate as f64 {
            // The limit changed (reload): start a fresh bucket.
            *b = Arc::new(Bucket::new(rate));
        }
        Some(b.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bucket_paces_and_shares() {
        let b = Arc::new(Bucket::new(1000));
        let start = tokio::time::Instant::now();
        for _ in 0..10 {
            b.take(100).await;
        }
        let one = start.elapsed();
        assert!(one >= Duration::from_millis(900), "{one:?}");
        assert!(one <= Duration::from_millis(1100), "{one:?}");
        // Two takers share the same rate.
        let start = tokio::time::Instant::now();
        let (x, y) = (b.clone(), b.clone());
        let a = tokio::spawn(async move {
            for _ in 0..5 {
                x.take(100).await;
            }
        });
        let c = tokio::spawn(async move {
            for _ in 0..5 {
                y.take(100).await;
            }
        });
        a.await.unwrap();
        c.await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(900));
        assert!(start.elapsed() <= Duration::from_millis(1100));
    }
}
