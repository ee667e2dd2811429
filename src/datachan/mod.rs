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

use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::config::PortRange;
use crate::tls::Stream;

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
    /// Counts the open passive ports (a metric); decremented on drop.
    in_use: Option<prometheus_client::metrics::gauge::Gauge>,
}

impl Drop for PassiveAccept {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(g) = &self.in_use {
            g.dec();
        }
    }
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

/// Why a data connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("the client did not connect in time")]
    Timeout,
    #[error("cannot connect: {0}")]
    Connect(io::Error),
    #[error("TLS handshake on the data connection failed: {0}")]
    Tls(io::Error),
    #[error("the data connection did not resume the control connection's TLS session")]
    NotResumed,
}

/// Starts accepting on a passive listener: the first connection from `peer` (any address
/// when `check` is off) is taken, and with `tls` its handshake runs immediately. Behind a
/// balancer (`proxy` enabled) the connection must come from a trusted balancer with a
/// PROXY header, and the header's client is the one checked.
pub fn accept_passive(
    listener: TcpListener,
    peer: IpAddr,
    check: bool,
    tls: Option<TlsAcceptor>,
    in_use: Option<prometheus_client::metrics::gauge::Gauge>,
    proxy: Option<crate::proxy::ProxyPolicy>,
) -> DataSetup {
    if let Some(g) = &in_use {
        g.inc();
    }
    let task = tokio::spawn(async move {
        let tcp = loop {
            let (mut stream, mut from) = listener.accept().await.map_err(DataError::Connect)?;
            if let Some(p) = &proxy {
                match p.read(&mut stream, from, Duration::from_secs(5)).await {
                    Ok(client) => from = client.unwrap_or(from),
                    Err(e) => {
                        tracing::warn!(%from, error = %e, "refused passive data connection");
                        continue;
                    }
                }
            }
            if !check || canonical(from.ip()) == canonical(peer) {
                break stream;
            }
            tracing::warn!(%from, expected = %peer, "refused passive data connection from another address");
        };
        drop(listener);
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
    DataSetup::Passive(PassiveAccept { task, in_use })
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
        let r = accept_passive(l, lo, true, None, None, None)
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
