//! Binding control listeners.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Socket, Type};

/// Binds one control listener. `[::]` is made dual-stack so IPv4 clients reach it too, and
/// falls back to `0.0.0.0` on a host without IPv6.
pub fn bind_listener(addr: SocketAddr) -> Result<std::net::TcpListener, String> {
    let l = match bind(addr) {
        // Only a host without IPv6 falls back; a port in use is reported as itself.
        Err(e)
            if addr.ip().is_unspecified()
                && addr.is_ipv6()
                && e.kind() != std::io::ErrorKind::AddrInUse =>
        {
            tracing::warn!(%addr, error = %e, "IPv6 unavailable; listening on IPv4 only");
            bind(SocketAddr::from(([0, 0, 0, 0], addr.port())))
        }
        other => other,
    };
    l.map_err(|e| format!("cannot listen on {addr}: {e}"))
}

fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if let SocketAddr::V6(v6) = addr {
        socket.set_only_v6(!v6.ip().is_unspecified())?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}
