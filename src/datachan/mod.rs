//! Data connections: passive listeners on the configured port range, active connects, and
//! the peer checks that stop bounce attacks and connection theft.
//!
//! Defences on by default, one switch each: a passive port accepts only the control
//! connection's peer address (`passive_peer_check`); PORT/EPRT connect only to that address
//! and never below port 1024 (`active_peer_check`).
//!
//! A passive port is accepted from the moment PASV/EPSV is answered, and under PROT P its
//! TLS handshake starts at once: some clients (aioftp) finish the data handshake before
//! they send RETR/STOR, and would deadlock with a server that waits for the command.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::config::PortRange;
pub use crate::error::DataError;

mod announce;
use crate::tls::Stream;
pub use announce::Announce;

/// An address with IPv4-mapped IPv6 (`::ffff:a.b.c.d`) turned back into IPv4, so that a
/// dual-stack listener's peers compare equal to their IPv4 data connections.
pub fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// How the next transfer gets its data connection.
#[derive(Debug)]
pub enum DataSetup {
    /// PASV/EPSV: a task already accepting (and handshaking) on our port.
    Passive(PassiveAccept),
    /// PORT/EPRT: we connect to the client.
    Active(SocketAddr),
}

/// The accepting task of a passive port; dropping it closes the port.
#[derive(Debug)]
pub struct PassiveAccept {
    task: JoinHandle<Result<Stream, DataError>>,
    /// Shared with the task, which gives it back when the port closes; dropping this
    /// gives it back at once (an aborted task ends only later).
    lease: Arc<Mutex<Option<Lease>>>,
}

impl Drop for PassiveAccept {
    fn drop(&mut self) {
        self.task.abort();
        self.lease.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// Passive ports held now, per client address: each is a lease that ends when its port
/// closes, so one address cannot hold a configured range that others need.
#[derive(Debug, Default)]
pub struct Leases {
    held: Mutex<HashMap<IpAddr, usize>>,
    /// Counts the open passive ports (a metric).
    in_use: prometheus_client::metrics::gauge::Gauge,
}

/// One passive port's place in [`Leases`]; released on drop.
#[derive(Debug)]
pub struct Lease {
    leases: Arc<Leases>,
    ip: IpAddr,
}

impl Leases {
    pub fn new(in_use: prometheus_client::metrics::gauge::Gauge) -> Leases {
        Leases {
            held: Mutex::default(),
            in_use,
        }
    }

    /// Takes a lease for `ip` unless it already holds `max` (0 = no cap).
    pub fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<Lease> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let n = held.entry(ip).or_insert(0);
        if max > 0 && *n >= max {
            return None;
        }
        *n += 1;
        self.in_use.inc();
        Some(Lease {
            leases: self.clone(),
            ip,
        })
    }

    /// Ports held by `ip` now.
    pub fn held(&self, ip: IpAddr) -> usize {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut held = self.leases.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = held.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.ip);
            }
        }
        self.leases.in_use.dec();
    }
}

/// The most passive ports one address may hold at once: a quarter of a configured range
/// (at least 4), so that three other addresses' worth always remains; no cap without a
/// range, where the sessions-per-address limit bounds them.
pub fn per_address_cap(range: Option<PortRange>) -> usize {
    range.map_or(0, |r| {
        let span = usize::from(r.high - r.low) + 1;
        (span / 4).max(4).min(span)
    })
}

/// How a passive port accepts its connection.
pub struct PassiveOptions {
    /// The control connection's client.
    pub peer: IpAddr,
    /// Accept only `peer` (`passive_peer_check`).
    pub check: bool,
    /// Under PROT P, the data connection's TLS.
    pub tls: Option<TlsAcceptor>,
    /// The port's place in the per-address count, released with the port.
    pub lease: Option<Lease>,
    /// Behind a balancer: the PROXY header policy.
    pub proxy: Option<crate::proxy::ProxyPolicy>,
    /// A port nobody connects to within this is closed (and its lease ends).
    pub expires: Duration,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_tls() {
            "Stream(tls)"
        } else {
            "Stream(plain)"
        })
    }
}

/// Starts accepting on a passive listener: the first connection from the peer (any
/// address when `check` is off) is taken, and with `tls` its handshake runs immediately.
/// Behind a balancer (`proxy` enabled) the connection must come from a trusted balancer
/// with a PROXY header, and the header's client is the one checked. A port not connected
/// within `expires` is closed.
pub fn accept_passive(listener: TcpListener, o: PassiveOptions) -> DataSetup {
    let PassiveOptions {
        peer,
        check,
        tls,
        lease,
        proxy,
        expires,
    } = o;
    let lease = Arc::new(Mutex::new(lease));
    let held = lease.clone();
    let task = tokio::spawn(async move {
        let accept = async {
            loop {
                let (mut stream, mut from) = listener.accept().await.map_err(DataError::Connect)?;
                if let Some(p) = &proxy {
                    match p
                        .read(&mut stream, from, crate::limits::PROXY_HEADER_WITHIN)
                        .await
                    {
                        Ok(client) => from = client.unwrap_or(from),
                        Err(e) => {
                            tracing::warn!(%from, error = %e, "refused passive data connection");
                            continue;
                        }
                    }
                }
                if !check || canonical(from.ip()) == canonical(peer) {
                    break Ok(stream);
                }
                tracing::warn!(%from, expected = %peer, "refused passive data connection from another address");
            }
        };
        let tcp = tokio::time::timeout(expires, accept).await;
        // The port closes here, connected or not, and its lease with it.
        drop(listener);
        held.lock().unwrap_or_else(|e| e.into_inner()).take();
        let tcp = tcp.map_err(|_| DataError::Timeout)??;
        let _ = tcp.set_nodelay(true);
        let stream = Stream::Plain(tcp);
        match tls {
            Some(acceptor) => stream
                .upgrade(&acceptor, None)
                .await
                .map_err(DataError::Tls),
            None => Ok(stream),
        }
    });
    DataSetup::Passive(PassiveAccept { task, lease })
}

/// Opens a passive listener on `local` (the control connection's local address), on a port
/// from `range` when one is configured.
pub fn listen_passive(local: IpAddr, range: Option<PortRange>) -> io::Result<TcpListener> {
    let Some(range) = range else {
        return bind_listener(SocketAddr::new(local, 0));
    };
    let span = u32::from(range.high - range.low) + 1;
    // Start at a random port so concurrent sessions do not all probe the same ones.
    let start = (std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        % u64::from(span)) as u32;
    for i in 0..span {
        let port = range.low + ((start + i) % span) as u16;
        match bind_listener(SocketAddr::new(local, port)) {
            Ok(l) => return Ok(l),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("every passive port in {range} is in use"),
    ))
}

fn bind_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(8)
}

/// Checks a PORT/EPRT target: the control connection's peer, port 1024 or above.
pub fn active_target_allowed(target: SocketAddr, peer: IpAddr, check: bool) -> bool {
    !check || (canonical(target.ip()) == canonical(peer) && target.port() >= 1024)
}

impl DataSetup {
    /// Establishes the data connection within `timeout`, encrypted when `tls` is given
    /// (wharf takes the TLS server role in passive and active mode alike).
    pub async fn open(
        self,
        local: IpAddr,
        timeout: Duration,
        tls: Option<&TlsAcceptor>,
    ) -> Result<Stream, DataError> {
        let fut = async {
            let stream = match self {
                DataSetup::Passive(mut accept) => (&mut accept.task)
                    .await
                    .map_err(|e| DataError::Connect(io::Error::other(e.to_string())))??,
                DataSetup::Active(target) => {
                    let socket = if target.is_ipv4() {
                        TcpSocket::new_v4()
                    } else {
                        TcpSocket::new_v6()
                    }
                    .map_err(DataError::Connect)?;
                    // Leave from the address the client reached us on.
                    if local.is_ipv4() == target.is_ipv4() {
                        let _ = socket.bind(SocketAddr::new(local, 0));
                    }
                    let tcp = socket.connect(target).await.map_err(DataError::Connect)?;
                    let _ = tcp.set_nodelay(true);
                    Stream::Plain(tcp)
                }
            };
            match tls {
                // Also covers a passive port opened before PROT P was sent.
                Some(acceptor) if !stream.is_tls() => {
                    stream.upgrade(acceptor, None).await.map_err(DataError::Tls)
                }
                _ => Ok(stream),
            }
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| DataError::Timeout)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(peer: IpAddr, lease: Option<Lease>, expires: Duration) -> PassiveOptions {
        PassiveOptions {
            peer,
            check: true,
            tls: None,
            lease,
            proxy: None,
            expires,
        }
    }

    #[tokio::test]
    async fn a_lease_ends_when_nobody_connects_in_time() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let leases = Arc::new(Leases::default());
        let first = leases.take(lo, 2).unwrap();
        let _second = leases.take(lo, 2).unwrap();
        assert!(leases.take(lo, 2).is_none(), "two per address");
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        assert!(
            leases.take(other, 2).is_some(),
            "another address is not held up"
        );
        drop(first);
        let l = listen_passive(lo, None).unwrap();
        let port = l.local_addr().unwrap().port();
        let lease = leases.take(lo, 2).unwrap();
        assert_eq!(leases.held(lo), 2);
        let setup = accept_passive(l, options(lo, Some(lease), Duration::from_millis(100)));
        // Kept by the session, unconnected: the lease still ends, and the port closes.
        let mut released = false;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if leases.held(lo) == 1 {
                released = true;
                break;
            }
        }
        assert!(released, "the lease outlived its expiry");
        assert!(tokio::net::TcpStream::connect((lo, port)).await.is_err());
        let r = setup.open(lo, Duration::from_secs(5), None).await;
        assert!(matches!(r, Err(DataError::Timeout)));
    }

    #[test]
    fn per_address_share_of_a_range() {
        let r = |low, high| Some(PortRange { low, high });
        assert_eq!(per_address_cap(None), 0);
        assert_eq!(per_address_cap(r(50000, 50099)), 25);
        assert_eq!(per_address_cap(r(50000, 50009)), 4);
        assert_eq!(per_address_cap(r(50000, 50001)), 2);
    }

    #[test]
    fn canonical_unmaps() {
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(canonical(mapped), "127.0.0.1".parse::<IpAddr>().unwrap());
        let v6: IpAddr = "::1".parse().unwrap();
        assert_eq!(canonical(v6), v6);
    }

    #[test]
    fn bounce_rules() {
        let peer: IpAddr = "::ffff:10.0.0.5".parse().unwrap();
        assert!(active_target_allowed(
            "10.0.0.5:2000".parse().unwrap(),
            peer,
            true
        ));
        assert!(!active_target_allowed(
            "10.0.0.6:2000".parse().unwrap(),
            peer,
            true
        ));
        assert!(!active_target_allowed(
            "10.0.0.5:25".parse().unwrap(),
            peer,
            true
        ));
        assert!(active_target_allowed(
            "10.0.0.6:25".parse().unwrap(),
            peer,
            false
        ));
    }

    #[tokio::test]
    async fn range_is_honoured_and_exhaustion_is_an_error() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        // Find two free adjacent-ish ports by asking the kernel, then use a range of one.
        let probe = bind_listener(SocketAddr::new(lo, 0)).unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let range = PortRange {
            low: port,
            high: port,
        };
        let l = listen_passive(lo, Some(range)).unwrap();
        assert_eq!(l.local_addr().unwrap().port(), port);
        let err = listen_passive(lo, Some(range)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }

    #[tokio::test]
    async fn passive_times_out_and_dropping_closes_the_port() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let l = listen_passive(lo, None).unwrap();
        let port = l.local_addr().unwrap().port();
        let r = accept_passive(l, options(lo, None, Duration::from_secs(60)))
            .open(lo, Duration::from_millis(50), None)
            .await;
        assert!(matches!(r, Err(DataError::Timeout)));
        // The aborted task releases the listener once the runtime drops it.
        let mut closed = false;
        for _ in 0..1000 {
            tokio::task::yield_now().await;
            if tokio::net::TcpStream::connect((lo, port)).await.is_err() {
                closed = true;
                break;
            }
        }
        assert!(closed, "the passive port stayed open");
    }
}
