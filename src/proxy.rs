//! The PROXY protocol (v1 text, v2 binary) in front of control and passive connections, as
//! a load balancer such as HAProxy sends it: the header names the real client, which then
//! counts everywhere (logs, limits, bans, peer checks). Parsing is the `proxy-header`
//! crate's; this module only reads exactly the header's bytes off the socket (peeking
//! first, so the client's own bytes that follow stay in the socket) and applies the policy.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

pub use crate::config::{ProxyPolicy, ProxyProtocol};

/// Why a connection was refused before the session began.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("PROXY header from {0}, which is not in proxy_trusted")]
    Untrusted(IpAddr),
    #[error("no PROXY header within {0:?}")]
    Timeout(Duration),
    #[error("malformed or missing PROXY header: {0}")]
    Malformed(String),
    #[error("connection error before the PROXY header: {0}")]
    Io(std::io::Error),
}

/// The longest header accepted: v1 is at most 107 bytes; v2 carries TLVs, which HAProxy
/// keeps short.
const MAX_HEADER: usize = 1024;

impl ProxyPolicy {
    pub fn enabled(&self) -> bool {
        self.mode != ProxyProtocol::Off
    }

    /// Reads the header of a connection from `peer` and returns the client it names;
    /// `None` for a v2 LOCAL header (the balancer's own health check, not a client).
    pub async fn read(
        &self,
        stream: &mut TcpStream,
        peer: SocketAddr,
        within: Duration,
    ) -> Result<Option<SocketAddr>, ProxyError> {
        let from = peer.ip().to_canonical();
        if !self.trusted.iter().any(|n| n.contains(&from)) {
            return Err(ProxyError::Untrusted(from));
        }
        tokio::time::timeout(within, self.read_header(stream))
            .await
            .map_err(|_| ProxyError::Timeout(within))?
    }

    async fn read_header(&self, stream: &mut TcpStream) -> Result<Option<SocketAddr>, ProxyError> {
        let config = proxy_header::ParseConfig {
            include_tlvs: false,
            allow_v1: matches!(self.mode, ProxyProtocol::V1 | ProxyProtocol::Any),
            allow_v2: matches!(self.mode, ProxyProtocol::V2 | ProxyProtocol::Any),
        };
        let mut buf = vec![0u8; MAX_HEADER];
        let mut seen = 0;
        loop {
            let n = stream.peek(&mut buf).await.map_err(ProxyError::Io)?;
            if n == 0 {
                return Err(ProxyError::Malformed("connection closed".into()));
            }
            match proxy_header::ProxyHeader::parse(&buf[..n], config) {
                Ok((header, len)) => {
                    let source = header.proxied_address().map(|a| a.source);
                    let mut used = vec![0u8; len];
                    stream.read_exact(&mut used).await.map_err(ProxyError::Io)?;
                    return Ok(source);
                }
                Err(proxy_header::Error::BufferTooShort) if n < MAX_HEADER => {
                    if n == seen {
                        // A header cut across segments (rare). Peeked bytes keep the
                        // socket readable, so readiness cannot signal more: look again
                        // shortly, within the caller's timeout.
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    seen = n;
                }
                Err(e) => return Err(ProxyError::Malformed(e.to_string())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    async fn pair() -> (TcpStream, TcpStream, SocketAddr) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (b, peer) = l.accept().await.unwrap();
        (a, b, peer)
    }

    fn policy(mode: ProxyProtocol) -> ProxyPolicy {
        ProxyPolicy {
            mode,
            trusted: vec!["127.0.0.0/8".parse().unwrap()],
        }
    }

    #[tokio::test]
    async fn v1_names_the_client_and_leaves_what_follows() {
        let (mut client, mut server, peer) = pair().await;
        client
            .write_all(b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 21\r\nUSER x\r\n")
            .await
            .unwrap();
        let got = policy(ProxyProtocol::Any)
            .read(&mut server, peer, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(got, Some("192.0.2.7:40000".parse().unwrap()));
        let mut rest = [0u8; 8];
        server.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"USER x\r\n");
    }

    #[tokio::test]
    async fn v2_in_pieces_and_local() {
        let (mut client, mut server, peer) = pair().await;
        let mut hdr = Vec::new();
        proxy_header::ProxyHeader::with_address(proxy_header::ProxiedAddress::stream(
            "[2001:db8::5]:5000".parse().unwrap(),
            "[2001:db8::1]:21".parse().unwrap(),
        ))
        .encode_v2(&mut hdr)
        .unwrap();
        let p = policy(ProxyProtocol::V2);
        let reader = tokio::spawn(async move {
            let got = p.read(&mut server, peer, Duration::from_secs(2)).await;
            (got, server)
        });
        client.write_all(&hdr[..10]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        client.write_all(&hdr[10..]).await.unwrap();
        client.write_all(b"data").await.unwrap();
        let (got, mut server) = reader.await.unwrap();
        assert_eq!(got.unwrap(), Some("[2001:db8::5]:5000".parse().unwrap()));
        let mut rest = [0u8; 4];
        server.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"data");
        // LOCAL (a health check): no client.
        let (mut client, mut server, peer) = pair().await;
        let mut hdr = Vec::new();
        proxy_header::ProxyHeader::with_local()
            .encode_v2(&mut hdr)
            .unwrap();
        client.write_all(&hdr).await.unwrap();
        let got = policy(ProxyProtocol::V2)
            .read(&mut server, peer, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(got, None);
    }

    #[tokio::test]
    async fn refusals() {
        // A version the listener does not take.
        let (mut client, mut server, peer) = pair().await;
        client
            .write_all(b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 21\r\n")
            .await
            .unwrap();
        let e = policy(ProxyProtocol::V2)
            .read(&mut server, peer, Duration::from_secs(1))
            .await;
        assert!(matches!(e, Err(ProxyError::Malformed(_))), "{e:?}");
        // No header at all: an FTP client talking straight to the node.
        let (mut client, mut server, peer) = pair().await;
        client.write_all(b"USER anonymous\r\n").await.unwrap();
        let e = policy(ProxyProtocol::Any)
            .read(&mut server, peer, Duration::from_secs(1))
            .await;
        assert!(matches!(e, Err(ProxyError::Malformed(_))), "{e:?}");
        // Silence.
        let (_client, mut server, peer) = pair().await;
        let e = policy(ProxyProtocol::Any)
            .read(&mut server, peer, Duration::from_millis(100))
            .await;
        assert!(matches!(e, Err(ProxyError::Timeout(_))), "{e:?}");
        // A source outside proxy_trusted, however good its header.
        let (mut client, mut server, peer) = pair().await;
        client
            .write_all(b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 21\r\n")
            .await
            .unwrap();
        let strict = ProxyPolicy {
            mode: ProxyProtocol::Any,
            trusted: vec!["10.0.0.0/8".parse().unwrap()],
        };
        let e = strict.read(&mut server, peer, Duration::from_secs(1)).await;
        assert!(matches!(e, Err(ProxyError::Untrusted(_))), "{e:?}");
    }
}
