//! TLS (RFC 4217): the rustls server configuration, certificates (files, or a self-signed
//! one generated once and reused), session resumption, and [`Stream`], the one type for a
//! control or data connection that may or may not be encrypted.
//!
//! TLS 1.2 and 1.3 only. Sessions resume through both a server-side cache and tickets, so
//! data connections can reuse the control connection's session.

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert, ServerSessionMemoryCache};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

/// Sessions remembered for resumption by the server-side cache.
const SESSION_CACHE_SIZE: usize = 4096;

/// File names of the generated certificate and key inside the TLS directory.
pub const GENERATED_CERT: &str = "wharf-tls-cert.pem";
pub const GENERATED_KEY: &str = "wharf-tls-key.pem";

/// A ready TLS server side.
#[derive(Clone)]
pub struct Tls {
    /// For control connections: issues session tickets.
    pub acceptor: TlsAcceptor,
    /// For data connections: resumes sessions but issues no new tickets. A client that
    /// closes a data connection without reading a late ticket would make its kernel reset
    /// the connection, and a reset can cost the tail of an upload.
    pub data_acceptor: TlsAcceptor,
    /// Per virtual host with its own certificate (by each of its names): the acceptors
    /// that present it to a client that sent no SNI name of ours, after `HOST` chose it.
    hosts: std::collections::HashMap<String, (TlsAcceptor, TlsAcceptor)>,
    /// SHA-256 of the leaf certificate, `AB:CD:…`, for users to pin.
    pub fingerprint: String,
    /// Where the certificate came from, for the start-up log.
    pub source: String,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("fingerprint", &self.fingerprint)
            .field("source", &self.source)
            .finish()
    }
}

/// Where the certificate comes from.
#[derive(Debug, Clone)]
pub enum CertSource {
    /// PEM files: the full chain and the private key.
    Files { cert: PathBuf, key: PathBuf },
    /// A self-signed certificate kept in this directory (generated on first use).
    Generated { dir: PathBuf },
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Reads a certificate chain and its key; with the chain's leaf fingerprint and path.
fn read_pair(source: &CertSource) -> io::Result<(Arc<CertifiedKey>, String, String)> {
    let (cert_path, key_path, what) = match source {
        CertSource::Files { cert, key } => (cert.clone(), key.clone(), "configured"),
        CertSource::Generated { dir } => {
            let (cert, key) = ensure_generated(dir)?;
            (cert, key, "self-signed")
        }
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| invalid(format!("{}: {e}", cert_path.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(format!("{}: {e}", cert_path.display())))?;
    if chain.is_empty() {
        return Err(invalid(format!(
            "{}: no certificate found",
            cert_path.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| invalid(format!("{}: {e}", key_path.display())))?;
    let fingerprint = fingerprint(&chain[0]);
    let provider = rustls::crypto::ring::default_provider();
    let certified = CertifiedKey::from_der(chain, key, &provider)
        .map_err(|e| invalid(format!("{}: {e}", key_path.display())))?;
    Ok((
        Arc::new(certified),
        fingerprint,
        format!("{what} certificate {}", cert_path.display()),
    ))
}

/// Picks the certificate by the SNI name a client sends: a virtual host's own, else the
/// default one (also for clients that send no name, or an address).
#[derive(Debug)]
struct ByName {
    default: Arc<CertifiedKey>,
    hosts: std::collections::HashMap<String, Arc<CertifiedKey>>,
}

impl ResolvesServerCert for ByName {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let named = hello.server_name().and_then(|n| {
            self.hosts
                .get(&n.trim_end_matches('.').to_ascii_lowercase())
        });
        Some(named.unwrap_or(&self.default).clone())
    }
}

/// Builds the TLS server side from `source`, with the virtual hosts' own certificates
/// (`hosts`: each host's names and certificate), chosen by SNI.
pub fn load(source: &CertSource, hosts: &[(Vec<String>, CertSource)]) -> io::Result<Tls> {
    let (default, fingerprint, from) = read_pair(source)?;
    let mut own = Vec::new();
    for (names, source) in hosts {
        own.push((names, read_pair(source)?.0));
    }
    let by_name = |default: Arc<CertifiedKey>| {
        let mut r = ByName {
            default,
            hosts: Default::default(),
        };
        for (names, cert) in &own {
            for n in *names {
                r.hosts.insert(n.to_ascii_lowercase(), cert.clone());
            }
        }
        Arc::new(r)
    };
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| invalid(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(by_name(default));
    config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE_SIZE);
    config.ticketer = rustls::crypto::ring::Ticketer::new().map_err(|e| invalid(e.to_string()))?;
    // More than one ticket lets a client resume several data connections in parallel.
    config.send_tls13_tickets = 4;
    let pair = |config: &ServerConfig| {
        let mut data = config.clone();
        data.send_tls13_tickets = 0;
        (
            TlsAcceptor::from(Arc::new(config.clone())),
            TlsAcceptor::from(Arc::new(data)),
        )
    };
    // A host's own acceptors differ only in the certificate shown without SNI; sessions
    // and tickets are shared, so data connections resume as with the default.
    let mut per_host = std::collections::HashMap::new();
    for (names, cert) in &own {
        let mut c = config.clone();
        c.cert_resolver = by_name(cert.clone());
        let acceptors = pair(&c);
        for n in *names {
            per_host.insert(n.to_ascii_lowercase(), acceptors.clone());
        }
    }
    let (acceptor, data_acceptor) = pair(&config);
    Ok(Tls {
        acceptor,
        data_acceptor,
        hosts: per_host,
        fingerprint,
        source: from,
    })
}

impl Tls {
    /// The control and data acceptors for a session on virtual host `host` (its name):
    /// its own certificate when it has one, else the default.
    pub fn for_host(&self, host: Option<&str>) -> (&TlsAcceptor, &TlsAcceptor) {
        match host.and_then(|h| self.hosts.get(&h.to_ascii_lowercase())) {
            Some((c, d)) => (c, d),
            None => (&self.acceptor, &self.data_acceptor),
        }
    }
}

/// Returns the generated certificate and key paths in `dir`, creating them (key 0600) if
/// they do not exist yet.
fn ensure_generated(dir: &Path) -> io::Result<(PathBuf, PathBuf)> {
    let cert = dir.join(GENERATED_CERT);
    let key = dir.join(GENERATED_KEY);
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    std::fs::create_dir_all(dir)?;
    let names = vec!["localhost".to_string(), "wharf".to_string()];
    let generated = rcgen::generate_simple_self_signed(names)
        .map_err(|e| invalid(format!("cannot generate a certificate: {e}")))?;
    write_private(&key, generated.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(&cert, generated.cert.pem())?;
    Ok((cert, key))
}

/// Gives the generated certificate and key in `dir`, where they exist, to `uid`/`gid`: they
/// are made as root before `run_as` drops it, and every reload after re-reads them.
pub fn hand_generated_to(dir: &Path, uid: u32, gid: u32) -> io::Result<()> {
    for name in [GENERATED_CERT, GENERATED_KEY] {
        match std::os::unix::fs::lchown(dir.join(name), Some(uid), Some(gid)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = Sha256::digest(cert.as_ref());
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

/// A random identity of one control connection's TLS sessions, embedded in the tickets it
/// is issued so a data connection can prove it resumed *that* session.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionToken([u8; 16]);

impl SessionToken {
    pub fn new() -> SessionToken {
        use argon2::password_hash::rand_core::{OsRng, RngCore};
        let mut b = [0u8; 16];
        OsRng.fill_bytes(&mut b);
        SessionToken(b)
    }
}

impl Default for SessionToken {
    fn default() -> Self {
        SessionToken::new()
    }
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(..)")
    }
}

/// Who holds each control connection's session token: the client address from the
/// handshake, and the user once logged in. A data connection may resume a session of its
/// own control connection, of any connection of the same user (rclone runs several and
/// shares its session cache), or of a connection from the same address that has not
/// logged in yet (a client's next connection racing its login) — never one of another user
/// or another address: anyone can get a TLS session without a password.
#[derive(Debug, Default)]
pub struct TokenOwners {
    inner: std::sync::Mutex<std::collections::HashMap<SessionToken, Owner>>,
}

#[derive(Debug, Clone)]
struct Owner {
    ip: IpAddr,
    user: Option<String>,
    since: Instant,
}

/// Owners remembered at most; past that the oldest half is forgotten.
const MAX_TOKEN_OWNERS: usize = 100_000;

impl TokenOwners {
    /// Records a control connection's handshake from `ip`.
    pub fn handshake(&self, token: SessionToken, ip: IpAddr) {
        self.put(
            token,
            Owner {
                ip,
                user: None,
                since: Instant::now(),
            },
        );
    }

    /// Records the login on the connection holding `token`.
    pub fn login(&self, token: SessionToken, ip: IpAddr, user: &str) {
        self.put(
            token,
            Owner {
                ip,
                user: Some(user.to_string()),
                since: Instant::now(),
            },
        );
    }

    fn put(&self, token: SessionToken, owner: Owner) {
        if let Ok(mut m) = self.inner.lock() {
            if m.len() >= MAX_TOKEN_OWNERS && !m.contains_key(&token) {
                let mut ages: Vec<Instant> = m.values().map(|o| o.since).collect();
                ages.sort();
                let cut = ages[ages.len() / 2];
                m.retain(|_, o| o.since > cut);
            }
            m.insert(token, owner);
        }
    }

    /// Whether a data connection of `user` at `ip`, on the control connection holding
    /// `own`, may resume the session that carries `resumed`.
    pub fn accepts(
        &self,
        resumed: &SessionToken,
        own: &SessionToken,
        user: &str,
        ip: IpAddr,
    ) -> bool {
        if resumed == own {
            return true;
        }
        let Ok(m) = self.inner.lock() else {
            return false;
        };
        match m.get(resumed) {
            Some(Owner { user: Some(u), .. }) => u == user,
            Some(Owner {
                user: None, ip: at, ..
            }) => *at == ip,
            None => false,
        }
    }
}

/// A control or data connection, plain or encrypted.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// Left behind while the connection is being upgraded; reads see EOF.
    Closed,
}

impl Stream {
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// The token of the control connection whose session this handshake resumed, if it
    /// resumed one issued by wharf.
    pub fn resumed_token(&self) -> Option<SessionToken> {
        match self {
            Stream::Tls(t) => {
                let conn = t.get_ref().1;
                if conn.handshake_kind() != Some(rustls::HandshakeKind::Resumed) {
                    return None;
                }
                let data: [u8; 16] = conn.received_resumption_data()?.try_into().ok()?;
                Some(SessionToken(data))
            }
            _ => None,
        }
    }

    /// How the TLS handshake went (full or resumed), for logs.
    pub fn handshake_kind(&self) -> Option<rustls::HandshakeKind> {
        match self {
            Stream::Tls(t) => t.get_ref().1.handshake_kind(),
            _ => None,
        }
    }

    /// The name the client asked for by SNI, on a TLS connection.
    pub fn sni(&self) -> Option<String> {
        match self {
            Stream::Tls(t) => t.get_ref().1.server_name().map(str::to_ascii_lowercase),
            _ => None,
        }
    }

    /// The TCP socket underneath.
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Stream::Plain(t) => Some(t),
            Stream::Tls(t) => Some(t.get_ref().0),
            Stream::Closed => None,
        }
    }

    /// Runs the server side of a TLS handshake on a plain stream. With `token` (control
    /// connections), every session ticket issued on it carries the token.
    pub async fn upgrade(
        self,
        acceptor: &TlsAcceptor,
        token: Option<&SessionToken>,
    ) -> io::Result<Stream> {
        match self {
            Stream::Plain(tcp) => {
                let tls = match token {
                    Some(t) => {
                        let data = t.0;
                        acceptor
                            .accept_with(tcp, move |c| c.set_resumption_data(&data))
                            .await?
                    }
                    None => acceptor.accept(tcp).await?,
                };
                Ok(Stream::Tls(Box::new(tls)))
            }
            other => Ok(other),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Closed => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Closed => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Closed => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Closed => Poll::Ready(Ok(())),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            Stream::Closed => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
            Stream::Closed => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_certificate_is_reused_and_key_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let src = CertSource::Generated {
            dir: dir.path().to_path_buf(),
        };
        let a = load(&src, &[]).unwrap();
        let b = load(&src, &[]).unwrap();
        assert_eq!(a.fingerprint, b.fingerprint, "reused on restart");
        assert_eq!(a.fingerprint.len(), 32 * 3 - 1);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(GENERATED_KEY))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // The files work as configured files too.
        let c = load(
            &CertSource::Files {
                cert: dir.path().join(GENERATED_CERT),
                key: dir.path().join(GENERATED_KEY),
            },
            &[],
        )
        .unwrap();
        assert_eq!(c.fingerprint, a.fingerprint);
    }

    #[test]
    fn bad_files_are_reported_with_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("c.pem");
        std::fs::write(&cert, "not a pem").unwrap();
        let err = load(
            &CertSource::Files {
                cert: cert.clone(),
                key: dir.path().join("k.pem"),
            },
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().contains("c.pem"), "{err}");
    }
}
