//! A minimal FTP client: the control connection (replies, login, AUTH TLS) and passive data
//! connections (plain or TLS). Only what the benchmark needs, with every wait bounded.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf,
};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Longest reply line accepted; a server sending more is broken for our purposes.
const MAX_REPLY_LINE: usize = 64 * 1024;
/// Most lines in one multi-line reply.
const MAX_REPLY_LINES: usize = 10_000;

/// A benchmark error: what failed, worded for the JSON report.
pub type Error = String;
pub type Result<T> = std::result::Result<T, Error>;

/// Plain TCP or TLS over TCP (or nothing, for the instant the socket moves into TLS).
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Closed,
}

fn closed<T>() -> Poll<io::Result<T>> {
    Poll::Ready(Err(io::ErrorKind::NotConnected.into()))
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
            Stream::Closed => closed(),
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
            Stream::Closed => closed(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Closed => closed(),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Closed => closed(),
        }
    }
}

/// One reply: its code and the text of its last line.
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl Reply {
    fn expect(self, ok: &[u16], what: &str) -> Result<Reply> {
        if ok.contains(&self.code) {
            Ok(self)
        } else {
            Err(format!("{what}: {} {}", self.code, self.text.trim_end()))
        }
    }
}

/// Where to connect and how to log in.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub user: String,
    pub pass: String,
    /// Set for explicit FTPS (AUTH TLS, then PBSZ 0 / PROT P once logged in).
    pub tls: Option<Tls>,
    /// Use EPSV instead of PASV.
    pub epsv: bool,
    /// Bound on every single wait (connect, one reply, one handshake).
    pub op_timeout: Duration,
}

/// A TLS connector and the name the certificate is checked against.
#[derive(Clone)]
pub struct Tls {
    pub connector: TlsConnector,
    pub name: ServerName<'static>,
}

impl Tls {
    pub fn new(config: Arc<rustls::ClientConfig>) -> Tls {
        Tls {
            connector: TlsConnector::from(config),
            name: ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into()),
        }
    }
}

/// A control connection.
pub struct Control {
    io: BufReader<Stream>,
    op_timeout: Duration,
    line: Vec<u8>,
}

async fn bounded<T, E: std::fmt::Display>(
    limit: Duration,
    what: &str,
    f: impl Future<Output = std::result::Result<T, E>>,
) -> Result<T> {
    match timeout(limit, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: timed out after {} s", limit.as_secs_f64())),
    }
}

impl Control {
    /// Connects and reads the greeting.
    pub async fn connect(t: &Target) -> Result<Control> {
        let tcp = bounded(t.op_timeout, "connect", TcpStream::connect(t.addr)).await?;
        let _ = tcp.set_nodelay(true);
        let mut c = Control {
            io: BufReader::new(Stream::Plain(tcp)),
            op_timeout: t.op_timeout,
            line: Vec::with_capacity(256),
        };
        c.reply()
            .await
            .map_err(|e| format!("greeting: {e}"))?
            .expect(&[220], "greeting")?;
        Ok(c)
    }

    /// Connects, upgrades with AUTH TLS when asked, and logs in (230).
    pub async fn login(t: &Target) -> Result<Control> {
        let mut c = Control::connect(t).await?;
        if let Some(tls) = &t.tls {
            c.auth_tls(tls).await?;
        }
        let r = c
            .cmd(&format!("USER {}", t.user))
            .await
            .map_err(|e| format!("USER: {e}"))?;
        match r.code {
            230 => {}
            331 => {
                c.cmd(&format!("PASS {}", t.pass))
                    .await
                    .map_err(|e| format!("PASS: {e}"))?
                    .expect(&[230], "PASS")?;
            }
            _ => return Err(format!("USER: {} {}", r.code, r.text.trim_end())),
        }
        Ok(c)
    }

    /// AUTH TLS and the handshake on the control connection.
    pub async fn auth_tls(&mut self, tls: &Tls) -> Result<()> {
        self.cmd("AUTH TLS")
            .await
            .map_err(|e| format!("AUTH TLS: {e}"))?
            .expect(&[234], "AUTH TLS")?;
        if !self.io.buffer().is_empty() {
            return Err("AUTH TLS: bytes after 234".into());
        }
        let tcp = match std::mem::replace(self.io.get_mut(), Stream::Closed) {
            Stream::Plain(s) => s,
            _ => return Err("AUTH TLS: not a plain connection".into()),
        };
        let s = bounded(
            self.op_timeout,
            "control TLS handshake",
            tls.connector.connect(tls.name.clone(), tcp),
        )
        .await?;
        self.io = BufReader::new(Stream::Tls(Box::new(s)));
        Ok(())
    }

    /// PBSZ 0 and PROT P (after login).
    pub async fn prot_p(&mut self) -> Result<()> {
        self.cmd("PBSZ 0").await?.expect(&[200], "PBSZ")?;
        self.cmd("PROT P").await?.expect(&[200], "PROT P")?;
        Ok(())
    }

    /// Sends one command line.
    pub async fn send(&mut self, line: &str) -> Result<()> {
        let mut buf = Vec::with_capacity(line.len() + 2);
        buf.extend_from_slice(line.as_bytes());
        buf.extend_from_slice(b"\r\n");
        let io = self.io.get_mut();
        bounded(self.op_timeout, "send", async {
            io.write_all(&buf).await?;
            io.flush().await
        })
        .await
    }

    /// Sends a command and reads its reply.
    pub async fn cmd(&mut self, line: &str) -> Result<Reply> {
        self.send(line).await?;
        self.reply().await
    }

    /// Reads one (possibly multi-line) reply.
    pub async fn reply(&mut self) -> Result<Reply> {
        let limit = self.op_timeout;
        match timeout(limit, self.reply_unbounded()).await {
            Ok(r) => r,
            Err(_) => Err(format!("reply: timed out after {} s", limit.as_secs_f64())),
        }
    }

    /// Reads one reply, however long it takes.
    async fn reply_unbounded(&mut self) -> Result<Reply> {
        let mut first: Option<u16> = None;
        for _ in 0..MAX_REPLY_LINES {
            self.line.clear();
            let n = (&mut self.io)
                .take(MAX_REPLY_LINE as u64)
                .read_until(b'\n', &mut self.line)
                .await
                .map_err(|e| format!("reply: {e}"))?;
            if n == 0 {
                return Err("reply: connection closed".into());
            }
            let l = &self.line;
            let code = if l.len() >= 4 && l[..3].iter().all(u8::is_ascii_digit) {
                Some((
                    u16::from(l[0] - b'0') * 100
                        + u16::from(l[1] - b'0') * 10
                        + u16::from(l[2] - b'0'),
                    l[3],
                ))
            } else {
                None
            };
            match (first, code) {
                (None, Some((c, b' '))) => return Ok(self.reply_of(c)),
                (None, Some((c, b'-'))) => first = Some(c),
                (None, _) => {
                    if l.len() == 3 && l.iter().all(u8::is_ascii_digit) {
                        return Ok(self.reply_of(u16::from(l[0] - b'0') * 100));
                    }
                    return Err(format!(
                        "reply: not a reply line: {:?}",
                        String::from_utf8_lossy(l)
                    ));
                }
                (Some(f), Some((c, b' '))) if c == f => return Ok(self.reply_of(c)),
                (Some(_), _) => {}
            }
        }
        Err("reply: too many lines".into())
    }

    fn reply_of(&self, code: u16) -> Reply {
        let text = String::from_utf8_lossy(self.line.get(4..).unwrap_or_default()).into_owned();
        Reply { code, text }
    }

    /// Waits for the server to close the connection (or for anything it sends); used by idle
    /// sessions to notice a drop. Returns what ended the wait.
    pub async fn wait_closed(&mut self) -> String {
        self.line.clear();
        match (&mut self.io)
            .take(MAX_REPLY_LINE as u64)
            .read_until(b'\n', &mut self.line)
            .await
        {
            Ok(0) => "closed by server".into(),
            Ok(_) => format!(
                "unexpected: {}",
                String::from_utf8_lossy(&self.line).trim_end()
            ),
            Err(e) => format!("read: {e}"),
        }
    }

    /// QUIT, reading 221 if it comes in time; errors are ignored (the session is over).
    pub async fn quit(mut self) {
        if self.send("QUIT").await.is_ok() {
            let _ = self.reply().await;
        }
        let _ = timeout(self.op_timeout, self.io.get_mut().shutdown()).await;
    }

    /// PASV or EPSV, then a TCP connection to the announced port.
    pub async fn open_passive(&mut self, t: &Target) -> Result<TcpStream> {
        let addr = if t.epsv {
            let r = self.cmd("EPSV").await?.expect(&[229], "EPSV")?;
            SocketAddr::new(t.addr.ip(), parse_epsv(&r.text)?)
        } else {
            let r = self.cmd("PASV").await?.expect(&[227], "PASV")?;
            parse_pasv(&r.text)?
        };
        let tcp = bounded(self.op_timeout, "data connect", TcpStream::connect(addr)).await?;
        let _ = tcp.set_nodelay(true);
        Ok(tcp)
    }

    /// Sends a transfer command (RETR, STOR, LIST) on a fresh passive connection and returns
    /// the data stream once the server said 150/125 and, under TLS, the handshake is done.
    /// The handshake runs beside the wait for 150: some servers accept TLS only after 150,
    /// others before they send it.
    pub async fn transfer(&mut self, t: &Target, command: &str, tls: bool) -> Result<Stream> {
        let tcp = self.open_passive(t).await?;
        self.send(command).await?;
        let data = match (&t.tls, tls) {
            (Some(tls), true) => {
                let hs = tokio::spawn(tls.connector.connect(tls.name.clone(), tcp));
                if let Err(e) = self
                    .reply()
                    .await
                    .and_then(|r| r.expect(&[150, 125], command))
                {
                    hs.abort();
                    return Err(e);
                }
                let s = match timeout(self.op_timeout, hs).await {
                    Ok(Ok(Ok(s))) => s,
                    Ok(Ok(Err(e))) => return Err(format!("data TLS handshake: {e}")),
                    Ok(Err(e)) => return Err(format!("data TLS handshake task: {e}")),
                    Err(_) => return Err("data TLS handshake: timed out".into()),
                };
                Stream::Tls(Box::new(s))
            }
            _ => {
                self.reply().await?.expect(&[150, 125], command)?;
                Stream::Plain(tcp)
            }
        };
        Ok(data)
    }
}

/// `227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)`: the six numbers, wherever they sit.
pub fn parse_pasv(text: &str) -> Result<SocketAddr> {
    let nums: Vec<u16> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect();
    if nums.len() < 6 {
        return Err(format!("PASV: cannot parse {text:?}"));
    }
    let n = &nums[nums.len() - 6..];
    if n.iter().any(|&x| x > 255) {
        return Err(format!("PASV: cannot parse {text:?}"));
    }
    let ip = Ipv4Addr::new(n[0] as u8, n[1] as u8, n[2] as u8, n[3] as u8);
    Ok(SocketAddr::new(IpAddr::V4(ip), n[4] * 256 + n[5]))
}

/// `229 Entering Extended Passive Mode (|||port|)`.
pub fn parse_epsv(text: &str) -> Result<u16> {
    let open = text
        .find('(')
        .ok_or_else(|| format!("EPSV: cannot parse {text:?}"))?;
    let inner = &text[open + 1..];
    inner
        .split('|')
        .filter(|s| !s.is_empty())
        .find_map(|s| s.trim_end_matches(')').parse().ok())
        .ok_or_else(|| format!("EPSV: cannot parse {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasv_and_epsv() {
        assert_eq!(
            parse_pasv("Entering Passive Mode (127,0,0,1,39,16).").unwrap(),
            "127.0.0.1:10000".parse().unwrap()
        );
        assert_eq!(parse_pasv("=127,0,0,1,0,21").unwrap().port(), 21);
        assert!(parse_pasv("nothing").is_err());
        assert_eq!(
            parse_epsv("Entering Extended Passive Mode (|||6446|)").unwrap(),
            6446
        );
        assert!(parse_epsv("(|||x|)").is_err());
    }
}
