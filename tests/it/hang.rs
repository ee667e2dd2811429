//! A TCP relay in front of a server that a test can hang: while hung it keeps every
//! connection open and accepts new ones, but passes no byte either way, as a storage that
//! stopped answering does. Unlike stopping the server's process with a signal, nothing is
//! left to the scheduler: a byte read after `hang(true)` returns is held.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub struct Relay {
    /// Where clients connect (127.0.0.1).
    pub port: u16,
    hung: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
}

impl Relay {
    /// Relays 127.0.0.1:`port` (a new one) to 127.0.0.1:`to`.
    pub fn start(to: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hung = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        let (h, d) = (hung.clone(), done.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if d.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", to)) else {
                    continue;
                };
                for (from, into) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let h = h.clone();
                    std::thread::spawn(move || pipe(from, into, &h));
                }
            }
        });
        Relay { port, hung, done }
    }

    /// Hangs (or resumes) every connection, open and future.
    pub fn hang(&self, on: bool) {
        self.hung.store(on, Ordering::SeqCst);
    }
}

/// Copies `from` into `into`, holding each chunk while hung.
fn pipe(mut from: TcpStream, mut into: TcpStream, hung: &AtomicBool) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        while hung.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
        }
        if into.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = into.shutdown(Shutdown::Write);
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.hung.store(false, Ordering::SeqCst);
        self.done.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees `done`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}
