//! Password checks: one per core at a time, the rest queued round-robin by address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use super::*;

/// The password checks running and waiting: at most one per core runs; the others wait
/// in a bounded queue served round-robin across client addresses, so an address with
/// hundreds waiting delays another address's check by one turn, not by hundreds.
#[derive(Debug, Clone)]
pub struct PasswordChecks {
    inner: Arc<Mutex<Checks>>,
}

#[derive(Debug)]
struct Checks {
    /// Turns free now (none while anyone waits).
    free: usize,
    waiting: usize,
    queues: HashMap<IpAddr, std::collections::VecDeque<tokio::sync::oneshot::Sender<Turn>>>,
    /// Addresses with waiters, in serving order.
    order: std::collections::VecDeque<IpAddr>,
}

/// The queue (or an address's share of it) is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// A turn to check a password; the next waiter goes when it is dropped (also when it is
/// dropped unseen, by a waiter that left).
#[derive(Debug)]
pub struct Turn {
    checks: Option<Arc<Mutex<Checks>>>,
}

impl PasswordChecks {
    /// `parallel` checks at once (the number of cores).
    pub fn new(parallel: usize) -> PasswordChecks {
        PasswordChecks {
            inner: Arc::new(Mutex::new(Checks {
                free: parallel.max(1),
                waiting: 0,
                queues: HashMap::new(),
                order: Default::default(),
            })),
        }
    }

    /// One per core.
    pub fn per_core() -> PasswordChecks {
        PasswordChecks::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    /// Waits for a turn, or `Busy` at once when the queue or `ip`'s share of it is full.
    pub async fn turn(&self, ip: IpAddr) -> Result<Turn, Busy> {
        let rx = {
            let mut c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            if c.free > 0 {
                c.free -= 1;
                return Ok(Turn {
                    checks: Some(self.inner.clone()),
                });
            }
            let mine = c.queues.get(&ip).map_or(0, |q| q.len());
            if mine >= QUEUED_PASSWORD_CHECKS_PER_ADDRESS || c.waiting >= MAX_QUEUED_PASSWORD_CHECKS
            {
                return Err(Busy);
            }
            let (tx, rx) = tokio::sync::oneshot::channel();
            c.waiting += 1;
            let q = c.queues.entry(ip).or_default();
            q.push_back(tx);
            if q.len() == 1 {
                c.order.push_back(ip);
            }
            rx
        };
        // The sender is dropped only with a turn in it, never empty.
        rx.await.map_err(|_| Busy)
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let Some(inner) = self.checks.take() else {
            return;
        };
        let mut c = inner.lock().unwrap_or_else(|e| e.into_inner());
        // Hand the turn to the next address in rotation; waiters that left are skipped.
        while let Some(ip) = c.order.pop_front() {
            let Some(q) = c.queues.get_mut(&ip) else {
                continue;
            };
            let next = q.pop_front();
            if q.is_empty() {
                c.queues.remove(&ip);
            } else {
                c.order.push_back(ip);
            }
            let Some(tx) = next else { continue };
            c.waiting -= 1;
            match tx.send(Turn {
                checks: Some(inner.clone()),
            }) {
                Ok(()) => return,
                // Disarmed: it would take this lock again.
                Err(mut unseen) => unseen.checks = None,
            }
        }
        c.free += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    #[tokio::test]
    async fn password_checks_run_one_per_core_and_take_turns_across_addresses() {
        let checks = PasswordChecks::new(1);
        let first = checks.turn(A).await.unwrap();
        // A floods: its share waits, the rest is refused at once.
        let mut flood: Vec<_> = (0..QUEUED_PASSWORD_CHECKS_PER_ADDRESS)
            .map(|_| Box::pin(checks.turn(A)))
            .collect();
        for w in &mut flood {
            assert!(futures_poll(w).is_none(), "one check at a time");
        }
        assert_eq!(checks.turn(A).await.unwrap_err(), Busy);
        // B queues behind all of A's, but is served after one of them.
        let mut b = Box::pin(checks.turn(B));
        assert!(futures_poll(&mut b).is_none());
        drop(first);
        let a1 = flood.remove(0).await.unwrap();
        assert!(futures_poll(&mut b).is_none());
        drop(a1);
        let turn_b = futures_poll(&mut b).expect("B's turn came second").unwrap();
        // A waiter that leaves is skipped; one given a turn it never saw gives it back.
        flood.truncate(1);
        drop(turn_b);
        drop(flood);
        assert!(futures_poll(&mut Box::pin(checks.turn(B))).is_some());
    }

    /// Polls a future once without a runtime waker of its own.
    fn futures_poll<F: std::future::Future + Unpin>(f: &mut F) -> Option<F::Output> {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        match std::pin::Pin::new(f).poll(&mut cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        }
    }
}
