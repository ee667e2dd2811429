//! One control connection from greeting to QUIT: reads command lines, checks them against
//! the gate, runs them, and writes replies through the one reply encoder.
//!
//! A session owns all its state (no locks). A transfer runs as a task the session can abort,
//! so ABOR and STAT are answered mid-transfer; other commands that arrive meanwhile wait in
//! a bounded queue and run, in order, once the transfer's reply has been sent.

mod state;
mod transfer;

pub use state::{Phase, gate};

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::{JoinError, JoinHandle};
use tracing::{Instrument, info, warn};

use wharf_proto::command::{
    self, Command, EpsvArg, ListArgs, Opts, ParseError, Site, TransferType,
};
use wharf_proto::listing::{self, Entry, Facts, Kind};
use wharf_proto::reply::quote_path;
use wharf_proto::{Code, Frame, LineFramer, Reply, glob};

use crate::auth::{Grant, Perms, Rules};
use crate::config::{Collision, ListenerConfig, Sendfile, TlsData, TlsMode, TlsReuse};
use crate::datachan::{self, DataError, DataSetup};
use crate::error::{Error, Op};
use crate::limits::{self, Refusal, SessionSlot};
use crate::server::{Shared, Stopping};
use crate::tls::{SessionToken, Stream};
use crate::vfs::{Jail, Sink, Source, VPath, WriteMode};
use transfer::{Job, Outcome, Params, TransferError};

/// Runs one session to its end. Never panics on client input; if it did, only this task
/// would end.
///
/// On an implicit-TLS listener the handshake comes first; a client that fails or stalls
/// in it is dropped within `tls_handshake_timeout` without a byte in clear.
pub async fn run(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    listener: Arc<ListenerConfig>,
    slot: SessionSlot,
) {
    // Set-up runs boxed, so what it moves into the session is not kept twice in this task
    // for as long as the session lasts.
    let Some((mut session, span)) = Box::pin(open(stream, peer, shared, listener, slot)).await
    else {
        return;
    };
    if Box::pin(session.join_cluster()).await {
        session.serve().instrument(span).await;
    }
    if session.registered
        && let Some(c) = &session.shared.cluster
    {
        Box::pin(c.end(session.listed.view.id)).await;
    }
    session.shared.metrics.sessions_current.dec();
}

/// Builds the session (after the handshake on an implicit-TLS listener); `None` when the
/// connection ended first.
async fn open(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    listener: Arc<ListenerConfig>,
    slot: SessionSlot,
) -> Option<(Session, tracing::Span)> {
    let implicit = listener.implicit;
    let cfg = shared.config();
    let shared_login_timeout = cfg.login_timeout;
    let id = shared.next_session_id();
    let local = stream.local_addr().ok()?;
    let peer_ip = datachan::canonical(peer.ip());
    let span = tracing::info_span!("session", id, client = %peer_ip);
    let mut stream = Stream::Plain(stream);
    let token = SessionToken::new();
    if implicit {
        let tls = shared.tls()?;
        let limit = Duration::from_secs(cfg.tls_handshake_timeout);
        let handshake = Box::pin(stream.upgrade(&tls.acceptor, Some(&token)));
        match tokio::time::timeout(limit, handshake).await {
            Ok(Ok(s)) => {
                shared.tls_owners.handshake(token, peer_ip);
                stream = s
            }
            Ok(Err(e)) => {
                info!(parent: &span, error = %e, "implicit TLS handshake failed");
                return None;
            }
            Err(_) => {
                info!(parent: &span, "implicit TLS handshake timed out");
                return None;
            }
        }
    }
    let stopping = shared.stopping();
    let listed = shared.who.add(id, peer_ip);
    listed.view.tls.store(implicit, Ordering::Relaxed);
    shared.metrics.sessions_current.inc();
    let session = Session {
        cfg,
        listed,
        stopping,
        shared,
        ctrl: ControlReader {
            stream,
            framer: LineFramer::default(),
            pending: Vec::new(),
        },
        pbsz: implicit,
        prot_private: implicit,
        listener,
        slot,
        token,
        login_deadline: Instant::now() + Duration::from_secs(shared_login_timeout),
        peer: peer_ip,
        local: datachan::canonical(local.ip()),
        phase: Phase::Fresh,
        login: None,
        cwd: VPath::root(),
        ty: TransferType::Ascii,
        rest: 0,
        rename_from: None,
        epsv_all: false,
        data: None,
        facts: Facts::default(),
        transfer: None,
        queued: VecDeque::new(),
        verb: "",
        registered: false,
        upload_lock: None,
    };
    Some((session, span))
}

/// Answers a connection that was not admitted with 421 and the reason, then closes it.
/// On an implicit-TLS listener nothing is sent: no plain text ever goes out there.
pub async fn refuse(mut stream: TcpStream, refusal: Refusal, implicit: bool) {
    if !implicit {
        let mut out = Vec::new();
        Reply::new(Code::ServiceNotAvailable, refusal.0).encode(&mut out);
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(&out)).await;
    }
}

/// Reads control lines; cancel-safe (state changes only after a read completes).
///
/// An idle session holds no read buffer: a plain connection waits for readiness, then
/// reads into the stack; only bytes past the line returned (pipelined commands) are kept.
struct ControlReader {
    stream: Stream,
    framer: LineFramer,
    /// Bytes read but not yet framed; empty (and unallocated) between bursts.
    pending: Vec<u8>,
}

enum Event {
    Line(Vec<u8>),
    TooLong,
    Closed,
    Idle,
    Done(Result<Result<Outcome, TransferError>, JoinError>),
    /// The server is shutting down (or the shutdown went a step further).
    Stop,
    /// The administrator ended this session.
    Kick,
}

fn frame_event(frame: Option<Frame>) -> Option<Event> {
    match frame? {
        Frame::Line(l) => Some(Event::Line(l)),
        Frame::TooLong => Some(Event::TooLong),
    }
}

impl ControlReader {
    /// Whether bytes arrived after the last line returned.
    fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    async fn next(&mut self) -> Event {
        loop {
            if self.has_pending() {
                let (n, frame) = self.framer.push(&self.pending);
                self.pending.drain(..n);
                if self.pending.is_empty() {
                    self.pending = Vec::new();
                }
                if let Some(ev) = frame_event(frame) {
                    return ev;
                }
            }
            let ControlReader {
                stream,
                framer,
                pending,
            } = self;
            // Frames what was read; keeps what follows the first line.
            let mut take = |bytes: &[u8]| {
                let (used, frame) = framer.push(bytes);
                pending.extend_from_slice(&bytes[used..]);
                frame_event(frame)
            };
            let event = match stream {
                Stream::Plain(tcp) => loop {
                    if tcp.readable().await.is_err() {
                        return Event::Closed;
                    }
                    // Not held across an await, so not part of the session's task.
                    let mut buf = [0u8; limits::CONTROL_READ_BUFFER];
                    // try_read forgets readiness only on WouldBlock. A plain read would also
                    // forget it after a short read, and Linux stops a read at the TCP urgent
                    // mark (ABOR sent as urgent data) with the urgent byte still waiting.
                    match tcp.try_read(&mut buf) {
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                        Ok(0) | Err(_) => return Event::Closed,
                        Ok(n) => break take(&buf[..n]),
                    }
                },
                // A TLS read waits inside the stream: its buffer lives on the heap, for
                // the read only (TLS sessions hold rustls' buffers anyway).
                stream => {
                    let mut buf = vec![0u8; limits::CONTROL_READ_BUFFER];
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return Event::Closed,
                        Ok(n) => take(&buf[..n]),
                    }
                }
            };
            if let Some(ev) = event {
                return ev;
            }
        }
    }
}

/// What a login holds: its grant and its jail.
struct Login {
    grant: Grant,
    jail: Jail,
    /// An anonymous login's password: the e-mail address it claims.
    email: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Download,
    Upload,
    Listing,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Download => "download",
            Direction::Upload => "upload",
            Direction::Listing => "listing",
        }
    }
}

/// A transfer in flight.
struct Running {
    handle: JoinHandle<Result<Outcome, TransferError>>,
    cancel: tokio_util::sync::CancellationToken,
    progress: Arc<AtomicU64>,
    direction: Direction,
    path: VPath,
    started: Instant,
    done: Reply,
    ascii: bool,
    /// An atomic upload still to be moved under its name.
    commit: Option<Commit>,
    /// An S3 upload, to complete, keep for a resume, or abort when the transfer ends.
    upload: Option<Arc<tokio::sync::Mutex<crate::vfs::object::Upload>>>,
}

/// Where an atomic upload goes when it completes.
#[derive(Debug, Clone)]
struct Commit {
    temp: VPath,
    target: VPath,
    /// Replace an existing file (the login may overwrite), else never overwrite.
    replace: bool,
    /// On a name collision, take the next free `name.N` instead of refusing.
    unique: bool,
}

struct Session {
    shared: Arc<Shared>,
    /// The configuration this session runs with: taken at connect, renewed at each login
    /// (a reload applies from the next login on).
    cfg: Arc<crate::config::Config>,
    /// This session as the admin interface shows it (removed when the session ends).
    listed: crate::admin::Listed,
    /// The server's shutdown level.
    stopping: tokio::sync::watch::Receiver<crate::server::Stopping>,
    ctrl: ControlReader,
    /// PBSZ was sent (RFC 4217 requires it before PROT).
    pbsz: bool,
    /// PROT P: data connections are TLS.
    prot_private: bool,
    /// The listener this session came in on, with its TLS policies.
    listener: Arc<ListenerConfig>,
    /// This session's place in the admission counts.
    slot: SessionSlot,
    /// Identifies the TLS sessions issued on this control connection.
    token: SessionToken,
    /// A client must be logged in by then.
    login_deadline: Instant,
    peer: IpAddr,
    local: IpAddr,
    phase: Phase,
    login: Option<Login>,
    cwd: VPath,
    ty: TransferType,
    rest: u64,
    rename_from: Option<VPath>,
    epsv_all: bool,
    data: Option<DataSetup>,
    facts: Facts,
    /// Boxed: most of the time there is none, and the session's task stays small.
    transfer: Option<Box<Running>>,
    queued: VecDeque<Vec<u8>>,
    /// The verb being handled, for error logs.
    verb: &'static str,
    /// Counted in the cluster's shared session table (to be removed at the end).
    registered: bool,
    /// The cluster-wide lock on the name being uploaded, until the transfer ends (boxed:
    /// it holds a database connection, and most sessions never have one).
    upload_lock: Option<Box<crate::cluster::UploadLock>>,
}

enum Flow {
    Continue,
    Quit,
}

/// The 421 of a banned address, at any point of its sessions.
const BANNED: &str = "Too many failed logins; your address is banned for a while.";

fn reply(code: Code, text: &str) -> Reply {
    Reply::new(code, text)
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Session {
    /// Counts this connection across the nodes (per-address limit); `false` (after a 421)
    /// when it is refused.
    async fn join_cluster(&mut self) -> bool {
        let Some(c) = self.shared.cluster.clone() else {
            return true;
        };
        match c
            .admit(self.listed.view.id, self.peer, self.cfg.max_sessions_per_ip)
            .await
        {
            Ok(registered) => {
                self.registered = registered;
                true
            }
            Err(denied) => {
                info!(reason = ?denied, "connection refused by the cluster");
                let _ = self.send(cluster_refusal(denied)).await;
                false
            }
        }
    }

    // By reference: an async fn taking `self` by value keeps two copies of it in its task.
    async fn serve(&mut self) {
        info!("connect");
        let cfg = &self.cfg;
        let greeting = if cfg.banner_version {
            format!("{} (wharf {})", cfg.banner, env!("CARGO_PKG_VERSION"))
        } else {
            cfg.banner.clone()
        };
        if self
            .send(Reply::new(Code::ServiceReady, greeting))
            .await
            .is_err()
        {
            return;
        }
        loop {
            if self.transfer.is_none() && *self.stopping.borrow() != Stopping::No {
                let _ = self
                    .send(reply(
                        Code::ServiceNotAvailable,
                        "Server shutting down; please reconnect later.",
                    ))
                    .await;
                break;
            }
            let line = match self.queued.pop_front() {
                Some(line) if self.transfer.is_none() => line,
                other => {
                    if let Some(line) = other {
                        self.queued.push_front(line);
                    }
                    match self.next_event().await {
                        Event::Line(l) => l,
                        Event::TooLong => {
                            let r = reply(Code::SyntaxError, "Command line too long.");
                            if self.send(r).await.is_err() {
                                break;
                            }
                            continue;
                        }
                        Event::Closed => break,
                        Event::Idle => {
                            let _ = self
                                .send(reply(
                                    Code::ServiceNotAvailable,
                                    "Idle timeout; closing control connection.",
                                ))
                                .await;
                            break;
                        }
                        Event::Done(res) => {
                            if Box::pin(self.finish_transfer(res)).await.is_err() {
                                break;
                            }
                            continue;
                        }
                        Event::Kick => {
                            let (why, text) = if self.address_banned() {
                                ("aborted: address banned", BANNED)
                            } else {
                                (
                                    "aborted: session kicked",
                                    "Disconnected by the administrator.",
                                )
                            };
                            Box::pin(self.cancel_transfer(why, true)).await;
                            let _ = self.send(reply(Code::ServiceNotAvailable, text)).await;
                            break;
                        }
                        Event::Stop => {
                            if *self.stopping.borrow() == Stopping::Abort
                                && Box::pin(self.cancel_transfer("aborted at shutdown", true)).await
                            {
                                let _ = self
                                    .send(reply(
                                        Code::TransferAborted,
                                        "Server shutting down; transfer aborted.",
                                    ))
                                    .await;
                            }
                            // The loop's head says goodbye once no transfer runs.
                            continue;
                        }
                    }
                }
            };
            // Boxed, like the other rare paths below: a task's size is that of its largest
            // state, and an idle session should hold only the small one that waits.
            match Box::pin(self.handle_line(line)).await {
                Ok(Flow::Continue) => {}
                Ok(Flow::Quit) | Err(_) => break,
            }
        }
        Box::pin(self.cancel_transfer("aborted: connection closed", true)).await;
        // Ends TLS with close_notify (RFC 8446 section 6.1) before the TCP close.
        let _ = tokio::time::timeout(Duration::from_secs(2), self.ctrl.stream.shutdown()).await;
        info!("disconnect");
    }

    async fn next_event(&mut self) -> Event {
        let cfg = &self.cfg;
        // Before login the deadline is fixed from connect, so a client cannot stay
        // half-logged-in by trickling commands.
        let until = if self.phase == Phase::LoggedIn {
            tokio::time::Instant::now() + Duration::from_secs(cfg.idle_timeout)
        } else {
            tokio::time::Instant::from_std(self.login_deadline)
        };
        let Session {
            ctrl,
            transfer,
            listed,
            ..
        } = self;
        tokio::select! {
            _ = listed.view.wake.notified() => {
                if listed.view.kicked.load(Ordering::Relaxed) {
                    Event::Kick
                } else {
                    Event::Stop
                }
            }
            ev = ctrl.next() => ev,
            res = async { transfer.as_mut().map(|t| &mut t.handle).expect("guarded").await }, if transfer.is_some() => Event::Done(res),
            _ = tokio::time::sleep_until(until), if transfer.is_none() => Event::Idle,
        }
    }

    /// THE writer of control-connection bytes.
    /// Whether this session writes a protocol trace now.
    fn traced(&self) -> bool {
        self.shared.trace.wants(
            self.login.as_ref().map(|l| l.grant.user.as_str()),
            self.peer,
        )
    }

    async fn send(&mut self, r: Reply) -> std::io::Result<()> {
        if self.traced() {
            for l in r.lines() {
                info!(code = r.code().number(), text = %lossy(l), "trace reply");
            }
        }
        if r.code().number() >= 400 {
            info!(
                command = self.verb,
                code = r.code().number(),
                reply = %lossy(r.lines().last().map_or(&[][..], Vec::as_slice)),
                "command error"
            );
        }
        // A fresh buffer per reply: an idle session keeps none.
        let mut out = Vec::new();
        r.encode(&mut out);
        // A client that stops reading replies must not pin the session: before login it
        // has until the login deadline, like everything else it does; after, the idle
        // timeout for each reply.
        let until = if self.phase == Phase::LoggedIn {
            tokio::time::Instant::now() + Duration::from_secs(self.cfg.idle_timeout)
        } else {
            tokio::time::Instant::from_std(self.login_deadline)
        };
        match tokio::time::timeout_at(until, self.ctrl.stream.write_all(&out)).await {
            Ok(res) => res,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "client stopped reading replies",
            )),
        }
    }

    async fn handle_line(&mut self, line: Vec<u8>) -> std::io::Result<Flow> {
        let cmd = match command::parse(&line) {
            Ok(c) => c,
            Err(ParseError::Empty) => return Ok(Flow::Continue),
            Err(e) if self.transfer.is_some() => {
                // Answer in order, after the transfer.
                let _ = e;
                return self.enqueue(line).await;
            }
            Err(e) => {
                self.verb = "";
                self.rename_from = None;
                let r = match e {
                    ParseError::Empty => return Ok(Flow::Continue),
                    ParseError::Unknown(_) => reply(Code::SyntaxError, "Unknown command."),
                    ParseError::NotImplemented(why) => Reply::new(
                        Code::NotImplemented,
                        format!("Command not implemented; {why}."),
                    ),
                    ParseError::BadArgument(why) => Reply::new(
                        Code::ArgumentError,
                        format!("Syntax error in arguments: {why}."),
                    ),
                    ParseError::Unsupported(why) => {
                        Reply::new(Code::ParameterNotImplemented, format!("{why}."))
                    }
                    ParseError::UnsupportedFamily => reply(
                        Code::NetworkProtocolNotSupported,
                        "Network protocol not supported, use (1,2)",
                    ),
                };
                self.send(r).await?;
                return Ok(Flow::Continue);
            }
        };
        self.verb = cmd.verb();
        self.listed.view.touch(self.verb);
        if self.traced() {
            // PASS shows only its verb: the trace never holds a password.
            let shown = if matches!(cmd, Command::Pass(_)) {
                "PASS ****".to_string()
            } else {
                lossy(&line)
            };
            info!(line = %shown, "trace command");
        }
        if self.transfer.is_some() {
            return match cmd {
                Command::Abor => self.abort_transfer().await.map(|_| Flow::Continue),
                Command::Stat(None) => {
                    let r = self.status();
                    self.send(r).await.map(|_| Flow::Continue)
                }
                _ => self.enqueue(line).await,
            };
        }
        if let Err(r) = gate(&self.phase, &cmd) {
            self.send(r).await?;
            return Ok(Flow::Continue);
        }
        // RNTO must come right after RNFR.
        let rename_from = self.rename_from.take();
        let r = match self.dispatch(cmd, rename_from).await {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(Flow::Continue),
            Err(Stop::Quit) => {
                self.send(reply(Code::Closing, "Goodbye.")).await?;
                return Ok(Flow::Quit);
            }
            Err(Stop::Drop) => return Ok(Flow::Quit),
        };
        self.send(r).await?;
        Ok(Flow::Continue)
    }

    async fn enqueue(&mut self, line: Vec<u8>) -> std::io::Result<Flow> {
        if self.queued.len() >= limits::MAX_QUEUED_COMMANDS {
            self.send(reply(
                Code::ServiceNotAvailable,
                "Too many commands queued during a transfer; closing.",
            ))
            .await?;
            return Ok(Flow::Quit);
        }
        self.queued.push_back(line);
        Ok(Flow::Continue)
    }

    fn login(&self) -> Result<&Login, Reply> {
        self.login
            .as_ref()
            .ok_or_else(|| reply(Code::NotLoggedIn, "Please login with USER and PASS."))
    }

    fn resolve(&self, arg: &[u8], op: Op) -> Result<VPath, Reply> {
        match self.cwd.resolve(arg) {
            Ok(p) if p.is_internal() => Err(Error::InvalidName.reply(op)),
            other => other.map_err(|e| e.reply(op)),
        }
    }

    fn reset_transfer_state(&mut self) {
        self.ty = TransferType::Ascii;
        self.rest = 0;
        self.rename_from = None;
        self.epsv_all = false;
        self.data = None;
        self.facts = Facts::default();
    }

    fn logout(&mut self) {
        self.slot.logout();
        self.login = None;
        self.cwd = VPath::root();
        self.phase = Phase::Fresh;
        self.reset_transfer_state();
    }

    /// Runs one gated command. `Ok(None)` means the handler already replied.
    async fn dispatch(
        &mut self,
        cmd: Command,
        rename_from: Option<VPath>,
    ) -> Result<Option<Reply>, Stop> {
        use Command as C;
        let r = match cmd {
            C::Quit => return Err(Stop::Quit),
            C::Noop => reply(Code::Ok, "NOOP ok."),
            C::Syst => reply(Code::SystemType, "UNIX Type: L8"),
            C::Feat => self.feat(),
            C::Help(topic) => help(topic.as_deref()),
            C::Stat(None) => self.status(),
            C::Clnt => reply(Code::Ok, "Noted."),
            C::Acct => reply(Code::Superfluous, "No account needed."),
            C::Allo => reply(Code::Superfluous, "ALLO not needed."),
            C::Mode => reply(Code::Ok, "Mode set to S."),
            C::Stru => reply(Code::Ok, "Structure set to F."),
            C::Abor => {
                self.data = None;
                reply(Code::ClosingData, "No transfer to abort.")
            }
            C::Host(_) => reply(Code::ServiceReady, "Host accepted."),
            C::Auth(mech) => return self.auth(&mech).await,
            C::Pbsz(_) if !self.ctrl.stream.is_tls() => {
                reply(Code::BadSequence, "Use AUTH TLS first.")
            }
            C::Pbsz(_) => {
                self.pbsz = true;
                reply(Code::Ok, "PBSZ=0")
            }
            C::Prot(_) if !self.ctrl.stream.is_tls() => {
                reply(Code::BadSequence, "Use AUTH TLS first.")
            }
            C::Prot(_) if !self.pbsz => reply(Code::BadSequence, "Send PBSZ 0 before PROT."),
            C::Prot(level) => match level.trim_ascii().to_ascii_uppercase().as_slice() {
                b"C" => {
                    self.prot_private = false;
                    reply(Code::Ok, "Protection level set to Clear.")
                }
                b"P" => {
                    self.prot_private = true;
                    reply(Code::Ok, "Protection level set to Private.")
                }
                b"S" | b"E" => reply(
                    Code::ProtNotSupported,
                    "Only PROT C and PROT P are supported.",
                ),
                _ => reply(Code::ParameterNotImplemented, "PROT takes C or P."),
            },
            C::Ccc if !self.ctrl.stream.is_tls() => reply(
                Code::BadSequence,
                "The control connection is not encrypted.",
            ),
            C::Ccc => reply(
                Code::PolicyDenied,
                "CCC refused: the control connection stays encrypted.",
            ),
            C::Opts(Opts::Utf8(_)) => reply(Code::Ok, "UTF8 mode is always on."),
            C::Opts(Opts::Mlst(names)) => {
                self.facts = Facts::select(&names);
                let enabled = self.facts.enabled();
                if enabled.is_empty() {
                    reply(Code::Ok, "MLST OPTS")
                } else {
                    Reply::new(Code::Ok, format!("MLST OPTS {enabled}"))
                }
            }
            C::Type(t) => {
                self.ty = t;
                match t {
                    TransferType::Ascii => reply(Code::Ok, "Type set to A."),
                    TransferType::Image => reply(Code::Ok, "Type set to I."),
                }
            }
            C::Rein => {
                self.logout();
                reply(Code::ServiceReady, "Service ready for new user.")
            }
            C::User(name) => {
                if !self.ctrl.stream.is_tls() && self.control_policy(&name) == TlsMode::Required {
                    self.logout();
                    return Ok(Some(reply(
                        Code::PolicyDenied,
                        "TLS required: send AUTH TLS first (tls = \"required\").",
                    )));
                }
                self.logout();
                let text = if crate::auth::is_anonymous_name(&name) {
                    "Anonymous login okay, send your e-mail address as password."
                } else {
                    "Password required."
                };
                self.phase = Phase::NeedPass { user: name };
                reply(Code::NeedPassword, text)
            }
            C::Pass(pw) => match self.pass(pw.expose()).await {
                Ok(r) => r,
                Err(r) => {
                    // Refused for a limit or a ban: say why, then close.
                    let _ = self.send(r).await;
                    return Err(Stop::Drop);
                }
            },
            C::Rest(n) => {
                self.rest = n;
                Reply::new(
                    Code::PendingFurtherInfo,
                    format!("Restarting at {n}. Send STOR or RETR."),
                )
            }
            C::Pasv => self.pasv(),
            C::Epsv(arg) => self.epsv(arg),
            C::Port(addr) | C::Eprt(addr) => self.port(addr),
            other => match self.file_command(other, rename_from).await {
                Ok(Some(r)) => r,
                Ok(None) => return Ok(None),
                Err(r) => r,
            },
        };
        Ok(Some(r))
    }

    fn address_banned(&self) -> bool {
        self.shared
            .guard
            .banned(self.peer, Instant::now())
            .is_some()
    }

    /// PASS. `Err` carries a 421 after which the session closes (ban, session limit).
    async fn pass(&mut self, password: &[u8]) -> Result<Reply, Reply> {
        let Phase::NeedPass { user } = std::mem::replace(&mut self.phase, Phase::Fresh) else {
            return Ok(reply(Code::BadSequence, "Login with USER first."));
        };
        self.cfg = self.shared.config();
        let name = lossy(&user);
        let policy = self.cfg.ban_policy();
        // Every PASS, not only every connection: a client connected before its address
        // was banned gets no more guesses.
        if self.address_banned() {
            info!(user = %name, "login refused: address banned");
            return Err(reply(Code::ServiceNotAvailable, BANNED));
        }
        let locked = self.shared.guard.locked(&name, Instant::now());
        let granted = if locked {
            None
        } else {
            let auth = self.shared.auth();
            match auth
                .login(&user, password, self.peer, &self.shared.password_checks)
                .await
            {
                Ok(g) => g,
                Err(limits::Busy) => {
                    warn!(user = %name, "login refused: too many password checks waiting");
                    return Err(reply(
                        Code::ServiceNotAvailable,
                        "Too many logins being checked; try again shortly.",
                    ));
                }
            }
        };
        // The check may have waited its turn while another session got the address
        // banned: its answer, right or wrong, is not told.
        if self.address_banned() {
            return Err(reply(Code::ServiceNotAvailable, BANNED));
        }
        let Some(grant) = granted else {
            let (delay, mut banned) =
                self.shared
                    .guard
                    .failed(self.peer, &name, &policy, Instant::now());
            if !banned && let Some(c) = self.shared.cluster.clone() {
                // The count of every node: three nodes must not give three times the
                // guesses.
                let window = policy.window;
                if let Some(n) = Box::pin(c.failed(self.peer, &name, window)).await
                    && policy.bans(n)
                {
                    self.shared
                        .guard
                        .ban(self.peer, policy.ban_for, Instant::now());
                    banned = true;
                }
            }
            if !locked
                && self.shared.guard.user_failed(
                    &name,
                    self.cfg.max_user_failures,
                    &policy,
                    Instant::now(),
                )
            {
                warn!(user = %name, lock_seconds = policy.ban_for.as_secs(), "user locked out after repeated login failures");
            }
            info!(user = %name, locked, "login failed");
            self.shared.metrics.login(false);
            // Slows password guessing; other sessions are not held up.
            tokio::time::sleep(delay).await;
            if banned {
                self.shared.metrics.bans.inc();
                if let Some(c) = self.shared.cluster.clone() {
                    let (ip, ban_for) = (self.peer, policy.ban_for);
                    tokio::spawn(async move { c.publish_ban(ip, ban_for).await });
                }
                warn!(
                    ban_seconds = policy.ban_for.as_secs(),
                    "address banned after repeated login failures"
                );
                return Err(reply(Code::ServiceNotAvailable, BANNED));
            }
            return Ok(reply(Code::NotLoggedIn, "Login incorrect."));
        };
        if !grant.anonymous {
            self.shared.guard.succeeded(self.peer, &name);
            if let Some(c) = self.shared.cluster.clone() {
                let (ip, user) = (self.peer, name.clone());
                tokio::spawn(async move { c.forgive(ip, &user).await });
            }
        }
        let max = grant
            .config
            .as_ref()
            .and_then(|u| u.max_sessions)
            .unwrap_or(self.cfg.max_sessions_per_user);
        if let Err(refusal) = self.slot.login(&grant.user, max) {
            info!(user = %grant.user, reason = %refusal.0, "login refused");
            return Err(Reply::new(Code::ServiceNotAvailable, refusal.0));
        }
        if let Some(c) = self.shared.cluster.clone() {
            // Boxed, like every rare and big future here: the session's task stays small.
            match Box::pin(c.login(self.listed.view.id, self.peer, &grant.user, max)).await {
                Ok(registered) => self.registered |= registered,
                Err(denied) => {
                    info!(user = %grant.user, reason = ?denied, "login refused by the cluster");
                    self.slot.logout();
                    return Err(cluster_refusal(denied));
                }
            }
        }
        let jail = match self.shared.jail(&grant.root).await {
            Ok(j) => j.with_ownership(self.shared.ownership()),
            Err(e) => {
                warn!(user = %name, root = %grant.root.display(), error = %e, "cannot open the user's root");
                self.slot.logout();
                // Out of file descriptors is the server's trouble, not the password's.
                if matches!(
                    e.raw_os_error(),
                    Some(nix::libc::ENFILE | nix::libc::EMFILE)
                ) {
                    return Err(reply(
                        Code::ServiceNotAvailable,
                        "Server busy (out of resources); try again later.",
                    ));
                }
                return Ok(reply(Code::NotLoggedIn, "Login incorrect."));
            }
        };
        let home = VPath::root().resolve(&grant.home).unwrap_or_default();
        // The root is a directory by construction: no trip to the blocking pool for the
        // common case (anonymous, and most users).
        self.cwd = if home == VPath::root() {
            home
        } else {
            match jail.stat(&home).await {
                Ok(e) if e.kind == Kind::Dir => home,
                _ => VPath::root(),
            }
        };
        if grant.anonymous {
            // The password of an anonymous login is the client's claimed e-mail address.
            let email: String = lossy(password).chars().take(100).collect();
            info!(user = %grant.user, anonymous = true, email = %email, "login");
        } else {
            info!(user = %grant.user, anonymous = false, "login");
        }
        // Only a TLS control connection can have TLS data connections to vouch for (and
        // AUTH after a login starts a new one).
        if self.ctrl.stream.is_tls() {
            self.shared
                .tls_owners
                .login(self.token, self.peer, &grant.user);
        }
        self.shared.metrics.login(true);
        if let Ok(mut u) = self.listed.view.user.lock() {
            *u = Some(grant.user.clone());
        }
        let email = grant
            .anonymous
            .then(|| lossy(password).chars().take(100).collect::<String>());
        self.login = Some(Login { grant, jail, email });
        self.phase = Phase::LoggedIn;
        Ok(reply(Code::LoggedIn, "Login successful."))
    }

    /// AUTH TLS (RFC 4217): 234, then the handshake on the same socket.
    async fn auth(&mut self, mech: &[u8]) -> Result<Option<Reply>, Stop> {
        let Some(tls) = self.shared.tls() else {
            return Ok(Some(reply(
                Code::NotImplemented,
                "TLS is not enabled on this server.",
            )));
        };
        if self.listener_tls() == TlsMode::Off {
            return Ok(Some(reply(
                Code::NotImplemented,
                "AUTH TLS is not enabled on this listener.",
            )));
        }
        if self.ctrl.stream.is_tls() {
            return Ok(Some(reply(Code::BadSequence, "TLS is already active.")));
        }
        let mech = mech.trim_ascii().to_ascii_uppercase();
        // curl sends AUTH SSL first; TLS-C and TLS-P are old spellings of the same.
        if !matches!(mech.as_slice(), b"TLS" | b"SSL" | b"TLS-C" | b"TLS-P") {
            return Ok(Some(reply(
                Code::ParameterNotImplemented,
                "Unknown security mechanism; use AUTH TLS.",
            )));
        }
        let r = reply(
            Code::AuthOk,
            "AUTH TLS successful; start the TLS handshake.",
        );
        if self.send(r).await.is_err() {
            return Err(Stop::Drop);
        }
        if self.ctrl.has_pending() {
            // Bytes pipelined after AUTH would be read as a ClientHello; refuse the mess.
            info!("data sent after AUTH before the handshake; closing");
            return Err(Stop::Drop);
        }
        let plain = std::mem::replace(&mut self.ctrl.stream, Stream::Closed);
        let limit = Duration::from_secs(self.cfg.tls_handshake_timeout);
        match tokio::time::timeout(limit, plain.upgrade(&tls.acceptor, Some(&self.token))).await {
            Ok(Ok(stream)) => {
                self.ctrl.stream = stream;
                self.shared.tls_owners.handshake(self.token, self.peer);
                self.listed.view.tls.store(true, Ordering::Relaxed);
                // RFC 4217 section 4: a new security context starts a new login.
                if self.phase == Phase::LoggedIn {
                    self.logout();
                }
                Ok(None)
            }
            Ok(Err(e)) => {
                info!(error = %e, "TLS handshake after AUTH failed");
                Err(Stop::Drop)
            }
            Err(_) => {
                info!("TLS handshake after AUTH timed out");
                Err(Stop::Drop)
            }
        }
    }

    /// PASV/EPSV: leases a passive port and starts accepting on it; returns the port.
    fn open_passive(&mut self) -> Result<u16, Reply> {
        // The port this session held before is given back first: one at a time.
        self.data = None;
        let cap = datachan::per_address_cap(self.cfg.passive_ports);
        let Some(lease) = self.shared.leases.take(self.peer, cap) else {
            warn!(
                held = cap,
                "passive ports refused: this address holds its share"
            );
            return Err(reply(
                Code::CantOpenData,
                "Too many passive ports held by your address; try again later.",
            ));
        };
        let listener =
            datachan::listen_passive(self.local, self.cfg.passive_ports).map_err(|e| {
                warn!(error = %e, "cannot open a passive port");
                reply(Code::CantOpenData, "Cannot open a passive port; try again.")
            })?;
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        self.data = Some(datachan::accept_passive(
            listener,
            datachan::PassiveOptions {
                peer: self.peer,
                check: self.cfg.passive_peer_check,
                tls: self.data_tls(),
                lease: Some(lease),
                proxy: Some(self.cfg.proxy_policy(&self.listener)).filter(|p| p.enabled()),
                expires: Duration::from_secs(self.cfg.data_connect_timeout),
            },
        ));
        Ok(port)
    }

    /// The TLS acceptor for data connections, when PROT P is in force.
    fn data_tls(&self) -> Option<tokio_rustls::TlsAcceptor> {
        if !self.prot_private {
            return None;
        }
        self.shared.tls().map(|t| t.data_acceptor.clone())
    }

    fn exempt(&self, anonymous: bool) -> bool {
        anonymous && self.cfg.tls_exempt_anonymous
    }

    /// The control-connection TLS policy for a login name.
    fn control_policy(&self, name: &[u8]) -> TlsMode {
        let user = self.shared.auth().user(name);
        if user.is_none() && self.exempt(crate::auth::is_anonymous_name(name)) {
            return TlsMode::Optional;
        }
        user.and_then(|u| u.tls).unwrap_or(self.listener_tls())
    }

    /// The listener's control-connection policy (its own, else the global one).
    fn listener_tls(&self) -> TlsMode {
        self.listener.tls.unwrap_or(self.cfg.tls)
    }

    fn user_config(&self) -> Option<&crate::config::UserConfig> {
        self.login.as_ref()?.grant.config.as_deref()
    }

    /// The data-connection TLS policy for this login.
    fn data_policy(&self) -> TlsData {
        let cfg = &self.cfg;
        if self.exempt(self.login.as_ref().is_some_and(|l| l.grant.anonymous)) {
            return TlsData::Optional;
        }
        self.user_config()
            .and_then(|u| u.tls_data)
            .or(self.listener.tls_data)
            .unwrap_or(cfg.tls_data)
    }

    /// The data-connection session-reuse policy for this login.
    fn reuse_policy(&self) -> TlsReuse {
        self.user_config()
            .and_then(|u| u.tls_data_reuse)
            .or(self.listener.tls_data_reuse)
            .unwrap_or(self.cfg.tls_data_reuse)
    }

    fn feat(&self) -> Reply {
        let mut lines: Vec<Vec<u8>> = vec![b"Features:".to_vec()];
        for f in [
            " EPRT".to_string(),
            " EPSV".into(),
            " HOST".into(),
            " MDTM".into(),
            " MFMT".into(),
            format!(" MLST {}", self.facts.feat()),
            " REST STREAM".into(),
            " SIZE".into(),
            " TVFS".into(),
            " UTF8".into(),
        ] {
            lines.push(f.into_bytes());
        }
        if self.shared.tls().is_some()
            && (self.listener_tls() != TlsMode::Off || self.ctrl.stream.is_tls())
        {
            // RFC 4217 section 6: AUTH TLS, PBSZ and PROT.
            let end = lines.len() - 1;
            lines.splice(end..end, [b" PBSZ".to_vec(), b" PROT".to_vec()]);
            lines.insert(1, b" AUTH TLS".to_vec());
        }
        lines.push(b"End".to_vec());
        Reply::multi(Code::SystemStatus, lines)
    }

    fn status(&self) -> Reply {
        let mut lines = vec![b"wharf FTP server status:".to_vec()];
        lines.push(format!(" Connected from {}", self.peer).into_bytes());
        match &self.login {
            Some(l) => lines.push(format!(" Logged in as {}", l.grant.user).into_bytes()),
            None => lines.push(b" Not logged in".to_vec()),
        }
        let ty = match self.ty {
            TransferType::Ascii => "ASCII",
            TransferType::Image => "BINARY",
        };
        lines.push(format!(" TYPE: {ty}; STRU: File; MODE: Stream").into_bytes());
        lines.push(
            format!(
                " Control connection: {}; data protection: {}",
                if self.ctrl.stream.is_tls() {
                    "TLS"
                } else {
                    "plain"
                },
                if self.prot_private {
                    "private"
                } else {
                    "clear"
                }
            )
            .into_bytes(),
        );
        match (&self.transfer, &self.data) {
            (Some(t), _) => lines.push(
                format!(
                    " Transfer in progress: {} bytes",
                    t.progress.load(Ordering::Relaxed)
                )
                .into_bytes(),
            ),
            (None, Some(DataSetup::Passive(_))) => lines.push(b" Passive mode set".to_vec()),
            (None, Some(DataSetup::Active(_))) => lines.push(b" Active mode set".to_vec()),
            (None, None) => lines.push(b" No data connection".to_vec()),
        }
        lines.push(b"End of status.".to_vec());
        Reply::multi(Code::SystemStatus, lines)
    }

    fn pasv(&mut self) -> Reply {
        if self.epsv_all {
            return reply(Code::BadSequence, "EPSV ALL in effect; use EPSV.");
        }
        let announce = match (self.cfg.public_address, self.local) {
            (Some(IpAddr::V4(public)), _) => public,
            (_, IpAddr::V4(local)) => local,
            _ => {
                return reply(
                    Code::ArgumentError,
                    "PASV is for IPv4; use EPSV on IPv6 connections.",
                );
            }
        };
        if !self.local.is_ipv4() {
            return reply(
                Code::ArgumentError,
                "PASV is for IPv4; use EPSV on IPv6 connections.",
            );
        }
        let port = match self.open_passive() {
            Ok(p) => p,
            Err(r) => return r,
        };
        let o = announce.octets();
        Reply::new(
            Code::PassiveMode,
            format!(
                "Entering Passive Mode ({},{},{},{},{},{}).",
                o[0],
                o[1],
                o[2],
                o[3],
                port >> 8,
                port & 0xff
            ),
        )
    }

    fn epsv(&mut self, arg: EpsvArg) -> Reply {
        let family = if self.local.is_ipv4() { 1 } else { 2 };
        match arg {
            EpsvArg::All => {
                self.epsv_all = true;
                return reply(Code::Ok, "EPSV ALL ok.");
            }
            EpsvArg::Family(f) if f != family => {
                return Reply::new(
                    Code::NetworkProtocolNotSupported,
                    format!("Network protocol not supported, use ({family})"),
                );
            }
            _ => {}
        }
        let port = match self.open_passive() {
            Ok(p) => p,
            Err(r) => return r,
        };
        Reply::new(
            Code::ExtendedPassiveMode,
            format!("Entering Extended Passive Mode (|||{port}|)"),
        )
    }

    fn port(&mut self, target: SocketAddr) -> Reply {
        if self.epsv_all {
            return reply(Code::BadSequence, "EPSV ALL in effect; use EPSV.");
        }
        if !datachan::active_target_allowed(target, self.peer, self.cfg.active_peer_check) {
            return reply(
                Code::ParameterNotImplemented,
                "Refused: data connections go only to your own address, on port 1024 or above.",
            );
        }
        self.data = Some(DataSetup::Active(target));
        reply(Code::Ok, "PORT command successful.")
    }

    /// Commands that work on files and need a login.
    async fn file_command(
        &mut self,
        cmd: Command,
        rename_from: Option<VPath>,
    ) -> Result<Option<Reply>, Reply> {
        use Command as C;
        let login = self.login()?;
        let rules = login.grant.rules.clone();
        let jail = login.jail.clone();
        let deny = |op: Op| Error::Denied.reply(op);
        Ok(Some(match cmd {
            C::Pwd => {
                let mut text = quote_path(self.cwd.as_bytes());
                text.extend_from_slice(b" is the current directory.");
                Reply::new(Code::PathCreated, text)
            }
            C::Cwd(arg) => {
                let target = self.resolve(&arg, Op::Other)?;
                self.change_dir(&jail, target).await?
            }
            C::Cdup => {
                let target = self.cwd.parent();
                self.change_dir(&jail, target).await?
            }
            C::Mkd(arg) => {
                let target = self.resolve(&arg, Op::Other)?;
                let perms = rules.at(&target);
                if !perms.mkdir {
                    return Err(deny(Op::Other));
                }
                jail.mkdir(&target).await.map_err(|e| e.reply(Op::Other))?;
                let mut text = quote_path(target.as_bytes());
                text.extend_from_slice(b" created.");
                Reply::new(Code::PathCreated, text)
            }
            C::Rmd(arg) => {
                let target = self.resolve(&arg, Op::Other)?;
                let perms = rules.at(&target);
                if !perms.rmdir {
                    return Err(deny(Op::Other));
                }
                jail.rmdir(&target).await.map_err(|e| e.reply(Op::Other))?;
                reply(Code::FileActionOk, "Directory removed.")
            }
            C::Dele(arg) => {
                let target = self.resolve(&arg, Op::Other)?;
                let perms = rules.at(&target);
                if !perms.delete {
                    return Err(deny(Op::Other));
                }
                jail.remove_file(&target)
                    .await
                    .map_err(|e| e.reply(Op::Other))?;
                reply(Code::FileActionOk, "File deleted.")
            }
            C::Rnfr(arg) => {
                let target = self.resolve(&arg, Op::Other)?;
                let perms = rules.at(&target);
                if !perms.rename {
                    return Err(deny(Op::Other));
                }
                if !jail.exists(&target).await.map_err(|e| e.reply(Op::Other))? {
                    return Err(Error::NotFound.reply(Op::Other));
                }
                self.rename_from = Some(target);
                reply(Code::PendingFurtherInfo, "Ready for RNTO.")
            }
            C::Rnto(arg) => {
                let Some(from) = rename_from else {
                    return Err(reply(Code::BadSequence, "RNFR required first."));
                };
                let to = self.resolve(&arg, Op::Store)?;
                if !rules.may_rename(&from, &to) {
                    return Err(deny(Op::Store));
                }
                jail.rename(&from, &to)
                    .await
                    .map_err(|e| e.reply(Op::Store))?;
                reply(Code::FileActionOk, "Rename successful.")
            }
            C::Size(arg) => {
                let target = self.resolve(&arg, Op::Other)?;
                let perms = rules.at(&target);
                if !(perms.read || perms.list) {
                    return Err(deny(Op::Other));
                }
                if let (Some(store), TransferType::Image) = (jail.object(), self.ty) {
                    // On S3, what an interrupted upload of this name has stored, so
                    // that `curl -C -` and lftp resume it.
                    let size = Box::pin(store.size(&target))
                        .await
                        .map_err(|e| e.reply(Op::Other))?;
                    return Ok(Some(Reply::new(Code::FileStatus, size.to_string())));
                }
                let e = jail.stat(&target).await.map_err(|e| e.reply(Op::Other))?;
                if e.kind != Kind::File {
                    return Err(reply(Code::FileUnavailable, "Not a regular file."));
                }
                let size = match self.ty {
                    TransferType::Image => e.size,
                    TransferType::Ascii => ascii_size(&jail, &target, e.size).await?,
                };
                Reply::new(Code::FileStatus, size.to_string())
            }
            C::Mdtm(arg) => self.mdtm(&jail, &rules, &arg).await?,
            C::Mfmt { mtime, path } => {
                let target = self.resolve(&path, Op::Other)?;
                let perms = rules.at(&target);
                if !perms.mtime {
                    return Err(deny(Op::Other));
                }
                let now = jail
                    .set_mtime(&target, SystemTime::from(mtime))
                    .await
                    .map_err(|e| e.reply(Op::Other))?;
                let mut text = b"Modify=".to_vec();
                listing::time_val(now, &mut text);
                text.extend_from_slice(b"; ");
                text.extend_from_slice(&path);
                Reply::new(Code::FileStatus, text)
            }
            C::Site(Site::Help) => Reply::multi(
                Code::Help,
                vec![
                    b"SITE commands:".to_vec(),
                    b" CHMOD <octal-mode> <path>".to_vec(),
                    b" UTIME <YYYYMMDDHHMMSS> <path>".to_vec(),
                    b" HELP".to_vec(),
                    b"End.".to_vec(),
                ],
            ),
            C::Site(Site::Chmod { mode, path }) => {
                let target = self.resolve(&path, Op::Other)?;
                let perms = rules.at(&target);
                if !perms.chmod {
                    return Err(deny(Op::Other));
                }
                jail.chmod(&target, mode)
                    .await
                    .map_err(|e| e.reply(Op::Other))?;
                reply(Code::Ok, "SITE CHMOD command ok.")
            }
            C::Site(Site::Utime { mtime, path }) => {
                let target = self.resolve(&path, Op::Other)?;
                let perms = rules.at(&target);
                if !perms.mtime {
                    return Err(deny(Op::Other));
                }
                jail.set_mtime(&target, SystemTime::from(mtime))
                    .await
                    .map_err(|e| e.reply(Op::Other))?;
                reply(Code::Ok, "Modification time set.")
            }
            C::Stat(Some(arg)) => {
                let args = command_list_args(&arg);
                let target = self.resolve(args.path.as_deref().unwrap_or(b""), Op::Status)?;
                let perms = rules.at(&target);
                if !perms.list {
                    return Err(deny(Op::Status));
                }
                let top = jail.stat(&target).await.map_err(|e| e.reply(Op::Status))?;
                let body = self
                    .listing(&jail, &target, ListFormat::List, b"")
                    .await
                    .map_err(|e| e.reply(Op::Status))?;
                let mut lines =
                    vec![format!("Status of {}:", lossy(target.as_bytes())).into_bytes()];
                lines.extend(
                    body.split(|b| *b == b'\n')
                        .filter(|l| !l.is_empty())
                        .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec()),
                );
                lines.push(b"End of status.".to_vec());
                // RFC 959: 212 directory status, 213 file status.
                let code = if top.kind == Kind::Dir {
                    Code::DirectoryStatus
                } else {
                    Code::FileStatus
                };
                Reply::multi(code, lines)
            }
            C::Mlst(arg) => {
                let target = self.resolve(arg.as_deref().unwrap_or(b""), Op::Other)?;
                let perms = rules.at(&target);
                if !perms.list {
                    return Err(deny(Op::Other));
                }
                let e = jail.stat(&target).await.map_err(|e| e.reply(Op::Other))?;
                let mut line = b" ".to_vec();
                listing::facts_line(
                    &e,
                    self.facts,
                    &perm_fact(&e, perms),
                    target.as_bytes(),
                    &mut line,
                );
                Reply::multi(
                    Code::FileActionOk,
                    vec![
                        format!("Listing {}", lossy(target.as_bytes())).into_bytes(),
                        line,
                        b"End.".to_vec(),
                    ],
                )
            }
            C::List(args) => {
                return self
                    .list_command(&jail, &rules, args, ListFormat::List)
                    .await;
            }
            C::Nlst(args) => {
                return self
                    .list_command(&jail, &rules, args, ListFormat::Nlst)
                    .await;
            }
            C::Mlsd(arg) => {
                let args = ListArgs {
                    flags: Vec::new(),
                    path: arg,
                };
                return self
                    .list_command(&jail, &rules, args, ListFormat::Mlsd)
                    .await;
            }
            C::Retr(arg) => return self.retr(&jail, &rules, &arg).await,
            C::Stor(arg) => return self.store(&jail, &rules, Store::Stor(arg)).await,
            C::Appe(arg) => return self.store(&jail, &rules, Store::Appe(arg)).await,
            C::Stou(hint) => return self.store(&jail, &rules, Store::Stou(hint)).await,
            // Everything else was handled by `dispatch`.
            _ => reply(Code::NotImplemented, "Command not implemented."),
        }))
    }

    async fn change_dir(&mut self, jail: &Jail, target: VPath) -> Result<Reply, Reply> {
        let e = jail.stat(&target).await.map_err(|e| e.reply(Op::Other))?;
        if e.kind != Kind::Dir {
            return Err(Error::NotADirectory.reply(Op::Other));
        }
        self.cwd = target;
        Ok(reply(Code::FileActionOk, "Directory successfully changed."))
    }

    async fn mdtm(&mut self, jail: &Jail, rules: &Rules, arg: &[u8]) -> Result<Reply, Reply> {
        // The set form `MDTM <time> <path>` (rclone, lftp) unless the whole argument names a file.
        let whole = self.resolve(arg, Op::Other)?;
        let existing = jail.stat(&whole).await;
        if existing.is_err()
            && let Some((mtime, path)) = command::split_time_prefix(arg)
        {
            let target = self.resolve(path, Op::Other)?;
            if !rules.at(&target).mtime {
                return Err(Error::Denied.reply(Op::Other));
            }
            let now = jail
                .set_mtime(&target, SystemTime::from(mtime))
                .await
                .map_err(|e| e.reply(Op::Other))?;
            let mut text = Vec::new();
            listing::time_val(now, &mut text);
            return Ok(Reply::new(Code::FileStatus, text));
        }
        let perms = rules.at(&whole);
        if !(perms.read || perms.list) {
            return Err(Error::Denied.reply(Op::Other));
        }
        let e = existing.map_err(|e| e.reply(Op::Other))?;
        let mut text = Vec::new();
        listing::time_val(e.mtime, &mut text);
        Ok(Reply::new(Code::FileStatus, text))
    }

    /// Formats the listing of `target`. For LIST and NLST, a last component that names
    /// nothing but holds `*`, `?` or `[` is matched against the parent's entries (NLST
    /// names then carry `prefix`, the directory part the client typed).
    async fn listing(
        &self,
        jail: &Jail,
        target: &VPath,
        format: ListFormat,
        prefix: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let rules = self.login.as_ref().map(|l| l.grant.rules.clone());
        let mut name_prefix: &[u8] = b"";
        // The directory the entries' names are relative to.
        let mut base_dir = target.parent();
        let entries = match jail.stat(target).await {
            Ok(top) if top.kind == Kind::Dir => {
                base_dir = target.clone();
                jail.list(target).await?
            }
            Ok(_) if format == ListFormat::Mlsd => return Err(Error::NotADirectory),
            Ok(top) => vec![top],
            Err(Error::NotFound)
                if format != ListFormat::Mlsd
                    && target.file_name().is_some_and(glob::is_pattern) =>
            {
                let pattern = target.file_name().unwrap_or_default();
                let matched: Vec<Entry> = jail
                    .list(&target.parent())
                    .await?
                    .into_iter()
                    .filter(|e| glob::matches(pattern, &e.name))
                    .collect();
                if matched.is_empty() {
                    return Err(Error::NotFound);
                }
                name_prefix = prefix;
                matched
            }
            Err(e) => return Err(e),
        };
        let lines = Lines {
            format,
            facts: self.facts,
            rules,
            base_dir,
            name_prefix: name_prefix.to_vec(),
            now: unix_now(),
        };
        let mut out = Vec::with_capacity(entries.len() * 80);
        for e in &entries {
            lines.push(e, &mut out);
        }
        Ok(out)
    }

    /// A directory of an S3 root, listed page by page while the data connection sends
    /// what is formatted: memory stays bounded however many objects there are.
    fn streamed_listing(
        &self,
        store: Arc<crate::vfs::object::ObjectStore>,
        dir: VPath,
        format: ListFormat,
    ) -> Job {
        let lines = Lines {
            format,
            facts: self.facts,
            rules: self.login.as_ref().map(|l| l.grant.rules.clone()),
            base_dir: dir.clone(),
            name_prefix: Vec::new(),
            now: unix_now(),
        };
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        tokio::spawn(async move {
            const CHUNK: usize = 64 << 10;
            let mut entries = match store.entries(&dir).await {
                Ok(e) => e,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            let mut out = Vec::with_capacity(CHUNK + 512);
            loop {
                match entries.next().await {
                    Ok(Some(e)) => lines.push(&e, &mut out),
                    Ok(None) => break,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
                if out.len() >= CHUNK {
                    let full = std::mem::replace(&mut out, Vec::with_capacity(CHUNK + 512));
                    if tx.send(Ok(full)).await.is_err() {
                        return; // the transfer ended
                    }
                }
            }
            let _ = tx.send(Ok(out)).await;
        });
        Job::ListingStream(rx)
    }

    fn need_data(&self) -> Result<(), Reply> {
        if self.data.is_none() {
            return Err(reply(
                Code::CantOpenData,
                "Use PASV, EPSV, PORT or EPRT first.",
            ));
        }
        Ok(())
    }

    async fn list_command(
        &mut self,
        jail: &Jail,
        rules: &Rules,
        args: ListArgs,
        format: ListFormat,
    ) -> Result<Option<Reply>, Reply> {
        self.rest = 0;
        let arg = args.path.as_deref().unwrap_or(b"");
        let target = self.resolve(arg, Op::Other)?;
        if !rules.at(&target).list {
            return Err(Error::Denied.reply(Op::Other));
        }
        self.need_data()?;
        // The directory part the client typed, kept on NLST names of a pattern match.
        let prefix = match arg.iter().rposition(|b| *b == b'/') {
            Some(i) => arg[..=i].to_vec(),
            None => Vec::new(),
        };
        if let Some(store) = jail.object()
            && jail.stat(&target).await.is_ok_and(|e| e.kind == Kind::Dir)
        {
            let job = self.streamed_listing(store.clone(), target.clone(), format);
            let opening = reply(Code::OpeningData, "Here comes the directory listing.");
            return self
                .start(
                    job,
                    opening,
                    Direction::Listing,
                    target,
                    reply(Code::ClosingData, "Directory send OK."),
                    None,
                )
                .await;
        }
        let body = match self.listing(jail, &target, format, &prefix).await {
            Ok(b) => b,
            Err(Error::NotADirectory) if format == ListFormat::Mlsd => {
                return Err(reply(Code::ArgumentError, "Not a directory; use MLST."));
            }
            Err(e) => return Err(e.reply(Op::Other)),
        };
        let opening = reply(Code::OpeningData, "Here comes the directory listing.");
        self.start(
            Job::Listing(body),
            opening,
            Direction::Listing,
            target,
            reply(Code::ClosingData, "Directory send OK."),
            None,
        )
        .await
    }

    async fn retr(
        &mut self,
        jail: &Jail,
        rules: &Rules,
        arg: &[u8],
    ) -> Result<Option<Reply>, Reply> {
        let rest = std::mem::take(&mut self.rest);
        let target = self.resolve(arg, Op::Other)?;
        if !rules.at(&target).read {
            return Err(Error::Denied.reply(Op::Other));
        }
        self.need_data()?;
        let ascii = self.ty == TransferType::Ascii;
        let offset = if ascii { 0 } else { rest };
        let (source, size) = jail
            .open_read(&target, offset)
            .await
            .map_err(|e| e.reply(Op::Other))?;
        let mode = if ascii { "ASCII" } else { "BINARY" };
        let opening = Reply::new(
            Code::OpeningData,
            format!("Opening {mode} mode data connection ({size} bytes)."),
        );
        let skip = if ascii { rest } else { 0 };
        let job = match source {
            Source::Stream(stream) => Job::SendStream {
                stream,
                ascii,
                skip,
            },
            Source::File(file) => Job::Send {
                file,
                ascii,
                skip,
                left: size.saturating_sub(offset),
                // On loopback the kernel saves no copy with sendfile and a buffered copy of a
                // big file measured faster; a small one is still best sent in one call.
                sendfile: match self.cfg.sendfile {
                    Sendfile::Always => true,
                    Sendfile::Never => false,
                    Sendfile::Auto => {
                        !self.peer.is_loopback() || size <= limits::TRANSFER_BUFFER as u64
                    }
                },
            },
        };
        self.start(
            job,
            opening,
            Direction::Download,
            target,
            reply(Code::ClosingData, "Transfer complete."),
            None,
        )
        .await
    }

    async fn store(
        &mut self,
        jail: &Jail,
        rules: &Rules,
        how: Store,
    ) -> Result<Option<Reply>, Reply> {
        let rest = std::mem::take(&mut self.rest);
        let ascii = self.ty == TransferType::Ascii;
        let collision = self
            .login
            .as_ref()
            .map(|l| l.grant.collision)
            .unwrap_or_default();
        let deny = || Error::Denied.reply(Op::Store);
        let (target, mode, unique) = match &how {
            Store::Stor(arg) => {
                let target = self.resolve(arg, Op::Store)?;
                let perms = rules.at(&target);
                let exists = jail.exists(&target).await.map_err(|e| e.reply(Op::Store))?;
                if rest > 0 {
                    if !perms.resume {
                        return Err(deny());
                    }
                    if ascii {
                        return Err(reply(
                            Code::InvalidRestart,
                            "Resuming an upload needs TYPE I.",
                        ));
                    }
                    (target, WriteMode::At(rest), false)
                } else if perms.overwrite && (exists || perms.upload) {
                    (target, WriteMode::Truncate, false)
                } else if perms.upload {
                    // The name may be taken: refused (553) or stored under a unique name.
                    (target, WriteMode::CreateNew, collision == Collision::Unique)
                } else {
                    return Err(deny());
                }
            }
            Store::Appe(arg) => {
                let target = self.resolve(arg, Op::Store)?;
                let perms = rules.at(&target);
                let exists = jail.exists(&target).await.map_err(|e| e.reply(Op::Store))?;
                if !perms.append || (!exists && !perms.upload) {
                    return Err(deny());
                }
                (target, WriteMode::Append, false)
            }
            Store::Stou(hint) => {
                let base = hint.as_deref().filter(|h| !h.is_empty()).unwrap_or(b"stou");
                let target = self.resolve(base, Op::Store)?;
                if !rules.at(&target).upload {
                    return Err(deny());
                }
                (target, WriteMode::CreateNew, true)
            }
        };
        self.need_data()?;
        if let Some(c) = self.shared.cluster.clone() {
            // One writer per name across the nodes, held until the transfer ends.
            let lock = Box::pin(c.lock_upload(&jail.lock_key(&target)))
                .await
                .map_err(|e| e.reply(Op::Store))?;
            self.upload_lock = lock.map(Box::new);
        }
        let requested = target.clone();
        // S3 uploads are atomic by themselves: the object appears when complete.
        let object = jail.object().is_some();
        let atomic = self.login.as_ref().is_some_and(|l| l.grant.atomic)
            && matches!(mode, WriteMode::Truncate | WriteMode::CreateNew)
            && !object;
        let (sink, target, commit) = if object && mode == WriteMode::CreateNew {
            let target = claim_name(jail, target, unique).await?;
            let sink = jail
                .open_write(&target, mode)
                .await
                .map_err(|e| e.reply(Op::Store))?;
            (sink, target, None)
        } else if atomic {
            // Refuse a taken name now rather than after the whole upload.
            let target = if mode == WriteMode::CreateNew {
                claim_name(jail, target, unique).await?
            } else {
                target
            };
            let temp = target.upload_temp();
            let sink = jail
                .open_write(&temp, WriteMode::CreateNew)
                .await
                .map_err(|e| e.reply(Op::Store))?;
            let commit = Commit {
                temp,
                target: target.clone(),
                replace: mode == WriteMode::Truncate,
                unique,
            };
            (sink, target, Some(commit))
        } else {
            match jail.open_write(&target, mode).await {
                Ok(f) => (f, target, None),
                Err(Error::Exists) if unique => {
                    let (f, t) = unique_create(jail, &target).await?;
                    (f, t, None)
                }
                Err(e) => return Err(e.reply(Op::Store)),
            }
        };
        let stou = matches!(how, Store::Stou(_));
        let name = target.file_name().unwrap_or(b"").to_vec();
        let opening = if stou {
            let mut text = b"FILE: ".to_vec();
            text.extend_from_slice(&name);
            Reply::new(Code::OpeningData, text)
        } else {
            reply(Code::OpeningData, "Ok to send data.")
        };
        let done = done_reply(&target, stou || target != requested);
        let job = match sink {
            Sink::File(file) => Job::Receive { file, ascii },
            Sink::Object(upload) => {
                let upload = Arc::new(tokio::sync::Mutex::new(*upload));
                Job::ReceiveObject { upload, ascii }
            }
        };
        self.start(job, opening, Direction::Upload, target, done, commit)
            .await
    }

    /// Sends the opening reply and spawns the transfer task.
    async fn start(
        &mut self,
        job: Job,
        opening: Reply,
        direction: Direction,
        path: VPath,
        done: Reply,
        commit: Option<Commit>,
    ) -> Result<Option<Reply>, Reply> {
        if !self.prot_private && self.data_policy() == TlsData::Required {
            return Err(reply(
                Code::ProtRefused,
                "Data connections must be encrypted: send PBSZ 0 and PROT P (tls_data = \"required\").",
            ));
        }
        let Some(setup) = self.data.take() else {
            return Err(reply(
                Code::CantOpenData,
                "Use PASV, EPSV, PORT or EPRT first.",
            ));
        };
        // A failed write means the control connection is gone; the loop notices on read.
        let _ = self.send(opening).await;
        let cfg = &self.cfg;
        let progress = Arc::new(AtomicU64::new(0));
        let cancel = tokio_util::sync::CancellationToken::new();
        let params = Params {
            cancel: cancel.clone(),
            setup,
            local: self.local,
            connect_timeout: Duration::from_secs(cfg.data_connect_timeout),
            stall: Duration::from_secs(cfg.data_stall_timeout),
            progress: progress.clone(),
            tls: self.data_tls(),
            reuse: self.reuse_policy(),
            token: self.token,
            user: self
                .login
                .as_ref()
                .map(|l| l.grant.user.clone())
                .unwrap_or_default(),
            peer: self.peer,
            owners: self.shared.tls_owners.clone(),
            bucket: self.login.as_ref().and_then(|l| {
                let g = &l.grant;
                match direction {
                    Direction::Upload => self.shared.buckets.get(&g.user, true, g.rate_up),
                    Direction::Download => self.shared.buckets.get(&g.user, false, g.rate_down),
                    Direction::Listing => None,
                }
            }),
        };
        let upload = match &job {
            Job::ReceiveObject { upload, .. } => Some(upload.clone()),
            _ => None,
        };
        let handle = tokio::spawn(transfer::run(params, job).in_current_span());
        if let Ok(mut v) = self.listed.view.transfer.lock() {
            *v = Some(crate::admin::TransferView {
                direction: direction.as_str(),
                path: lossy(path.as_bytes()),
                progress: progress.clone(),
                started: Instant::now(),
            });
        }
        self.transfer = Some(Box::new(Running {
            handle,
            cancel,
            progress,
            direction,
            path,
            started: Instant::now(),
            done,
            ascii: self.ty == TransferType::Ascii,
            commit,
            upload,
        }));
        Ok(None)
    }

    /// Tells the upload hooks about a stored file.
    async fn upload_hook(&self, path: &VPath) {
        let hooks = self.shared.hooks();
        let (Some(login), true) = (&self.login, hooks.enabled()) else {
            return;
        };
        let size = login.jail.stat(path).await.map(|e| e.size).unwrap_or(0);
        hooks.uploaded(crate::hooks::UploadEvent {
            event: "upload",
            path: lossy(path.as_bytes()),
            file: login.jail.host_path(path),
            user: login.grant.user.clone(),
            client: self.peer.to_string(),
            size,
        });
    }

    /// Whether the client has closed the control connection, without waiting. A line that
    /// is already there is queued, not lost.
    async fn control_closed_now(&mut self) -> bool {
        match tokio::time::timeout(Duration::ZERO, self.ctrl.next()).await {
            Ok(Event::Closed) => true,
            Ok(Event::Line(line)) => {
                self.queued.push_front(line);
                false
            }
            _ => false,
        }
    }

    /// Ends an atomic upload: moves it under its name when it completed (or when failed
    /// uploads are kept), else removes it. Returns the name it was stored under.
    async fn settle_upload(&self, c: &Commit, completed: bool) -> Result<Option<VPath>, Reply> {
        let Some(login) = &self.login else {
            return Ok(None);
        };
        let keep = self.cfg.failed_uploads == crate::config::FailedUploads::Keep;
        if completed || keep {
            return commit_upload(&login.jail, c).await.map(Some);
        }
        let _ = login.jail.remove_file(&c.temp).await;
        Ok(None)
    }

    fn log_transfer(&self, t: &Running, bytes: u64, result: &str, tls: Option<Outcome>) {
        if let Ok(mut v) = self.listed.view.transfer.lock() {
            *v = None;
        }
        self.shared.metrics.transfer(
            t.direction.as_str(),
            result.starts_with("ok"),
            bytes,
            t.started.elapsed().as_secs_f64(),
        );
        info!(
            user = self.login.as_ref().map_or("", |l| l.grant.user.as_str()),
            path = %lossy(t.path.as_bytes()),
            direction = t.direction.as_str(),
            bytes,
            duration_ms = t.started.elapsed().as_millis() as u64,
            result,
            tls = tls.is_some_and(|o| o.tls),
            tls_resumed = tls.is_some_and(|o| o.resumed),
            "transfer"
        );
        if let (Some(x), Some(login), true) = (
            &self.shared.xferlog,
            &self.login,
            t.direction != Direction::Listing,
        ) {
            let end = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            x.record(&crate::observe::XferRecord {
                end,
                seconds: t.started.elapsed().as_secs_f64().round() as u64,
                client: self.peer.to_string(),
                bytes,
                path: t.path.as_bytes().to_vec(),
                ascii: t.ascii,
                incoming: t.direction == Direction::Upload,
                anonymous: login.grant.anonymous,
                user: login
                    .email
                    .clone()
                    .unwrap_or_else(|| login.grant.user.clone()),
                complete: result.starts_with("ok"),
            });
        }
    }

    async fn finish_transfer(
        &mut self,
        res: Result<Result<Outcome, TransferError>, JoinError>,
    ) -> std::io::Result<()> {
        let Some(mut t) = self.transfer.take() else {
            return Ok(());
        };
        // Released once the upload is settled, before the reply.
        let lock = self.upload_lock.take();
        let bytes = t.progress.load(Ordering::Relaxed);
        let mut ok = matches!(&res, Ok(Ok(_)))
            || matches!(&res, Ok(Err(TransferError::Data(DataError::Tls(e))))
                if t.direction == Direction::Upload
                    && e.kind() == std::io::ErrorKind::UnexpectedEof);
        // A client killed mid-upload closes both connections; the data connection's end
        // looks like a complete file. If the control connection is gone too, it was not.
        if ok && (t.commit.is_some() || t.upload.is_some()) && self.control_closed_now().await {
            ok = false;
        }
        if let Some(upload) = t.upload.take() {
            let mut upload = upload.lock().await;
            if ok {
                if let Err(e) = Box::pin(upload.finish()).await {
                    Box::pin(upload.abort()).await;
                    self.log_transfer(&t, bytes, "commit failed", None);
                    return self.send(e.reply(Op::Store)).await;
                }
            } else if matches!(&res, Ok(Err(TransferError::File(_)))) {
                Box::pin(upload.abort()).await;
            } else {
                // The client went away: what is stored stays resumable.
                Box::pin(upload.interrupt()).await;
            }
        }
        let mut done = t.done.clone();
        if let Some(commit) = t.commit.take() {
            match self.settle_upload(&commit, ok).await {
                Ok(Some(stored)) if stored != commit.target => {
                    t.path = stored.clone();
                    done = done_reply(&stored, true);
                }
                Ok(_) => {}
                Err(r) if ok => {
                    self.log_transfer(&t, bytes, "commit failed", None);
                    return self.send(r).await;
                }
                Err(_) => {}
            }
        }
        if let Some(lock) = lock {
            Box::pin(lock.release()).await;
        }
        if ok && t.direction == Direction::Upload {
            self.upload_hook(&t.path).await;
        }
        let r = match res {
            Ok(Ok(o)) => {
                self.log_transfer(&t, o.bytes, "ok", Some(o));
                done
            }
            // A client that ends a 0-byte TLS upload before the data handshake completes
            // (Node basic-ftp) has sent an empty file; the file is already there.
            Ok(Err(TransferError::Data(DataError::Tls(e))))
                if t.direction == Direction::Upload
                    && e.kind() == std::io::ErrorKind::UnexpectedEof =>
            {
                self.log_transfer(&t, 0, "ok (empty, data TLS cut short)", None);
                done
            }
            Ok(Err(e)) => {
                self.log_transfer(&t, bytes, &e.to_string(), None);
                match e {
                    TransferError::Data(DataError::Timeout | DataError::Connect(_)) => {
                        reply(Code::CantOpenData, "Can't open data connection.")
                    }
                    TransferError::Data(DataError::Tls(_)) => reply(
                        Code::TlsDataFailed,
                        "TLS negotiation on the data connection failed.",
                    ),
                    TransferError::Data(DataError::NotResumed) => reply(
                        Code::CantOpenData,
                        "Data connection refused: it must resume a TLS session of this login (tls_data_reuse = \"require\").",
                    ),
                    TransferError::Stalled(_) => reply(
                        Code::TransferAborted,
                        "Transfer aborted: no progress on the data connection.",
                    ),
                    TransferError::Network(_) => reply(
                        Code::TransferAborted,
                        "Connection closed; transfer aborted.",
                    ),
                    TransferError::File(e) => match t.direction {
                        Direction::Upload => e.reply(Op::Store),
                        _ => reply(Code::LocalError, "Local error reading the file."),
                    },
                    TransferError::Cancelled => reply(
                        Code::TransferAborted,
                        "Connection closed; transfer aborted.",
                    ),
                }
            }
            Err(_) => {
                self.log_transfer(&t, bytes, "failed", None);
                reply(Code::LocalError, "Local error in processing.")
            }
        };
        self.send(r).await
    }

    /// Stops the running transfer, if any: its task is aborted (closing the data
    /// connection), an atomic upload is removed, and the transfer is logged with `why`.
    /// An S3 upload stays `resumable` (the session ends under it) or is aborted (ABOR).
    /// Returns whether there was one.
    async fn cancel_transfer(&mut self, why: &str, resumable: bool) -> bool {
        let Some(mut t) = self.transfer.take() else {
            return false;
        };
        let lock = self.upload_lock.take();
        t.cancel.cancel();
        // An upload first writes out what it has received (bounded); anything else, and
        // an upload that does not stop in time, ends at once.
        let stopped = t.direction == Direction::Upload
            && tokio::time::timeout(Duration::from_secs(2), &mut t.handle)
                .await
                .is_ok();
        if !stopped {
            t.handle.abort();
            let _ = (&mut t.handle).await;
        }
        if let Some(commit) = t.commit.take() {
            let _ = self.settle_upload(&commit, false).await;
        }
        if let Some(upload) = t.upload.take() {
            let mut upload = upload.lock().await;
            if resumable {
                Box::pin(upload.interrupt()).await;
            } else {
                Box::pin(upload.abort()).await;
            }
        }
        if let Some(lock) = lock {
            Box::pin(lock.release()).await;
        }
        self.log_transfer(&t, t.progress.load(Ordering::Relaxed), why, None);
        true
    }

    async fn abort_transfer(&mut self) -> std::io::Result<()> {
        let Some(mut t) = self.transfer.take() else {
            return self
                .send(reply(Code::ClosingData, "No transfer to abort."))
                .await;
        };
        if t.handle.is_finished() {
            let res = (&mut t.handle).await;
            self.transfer = Some(t);
            self.finish_transfer(res).await?;
            return self
                .send(reply(Code::ClosingData, "No transfer to abort."))
                .await;
        }
        self.transfer = Some(t);
        self.cancel_transfer("aborted", false).await;
        self.send(reply(
            Code::TransferAborted,
            "Connection closed; transfer aborted.",
        ))
        .await?;
        self.send(reply(Code::ClosingData, "ABOR successful."))
            .await
    }
}

/// Why a session ends from a command.
enum Stop {
    /// QUIT: after a 221.
    Quit,
    /// At once, without a reply (a failed TLS upgrade).
    Drop,
}

enum Store {
    Stor(Vec<u8>),
    Appe(Vec<u8>),
    Stou(Option<Vec<u8>>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListFormat {
    List,
    Nlst,
    Mlsd,
}

/// STAT's argument takes `ls` flags like LIST's.
fn command_list_args(arg: &[u8]) -> ListArgs {
    let mut line = b"LIST ".to_vec();
    line.extend_from_slice(arg);
    match command::parse(&line) {
        Ok(Command::List(a)) => a,
        _ => ListArgs::default(),
    }
}

/// The 421 for a session or login the cluster refused.
fn cluster_refusal(denied: crate::cluster::Denied) -> Reply {
    match denied {
        crate::cluster::Denied::Limit(r) => Reply::new(Code::ServiceNotAvailable, r.0),
        crate::cluster::Denied::Unavailable => reply(
            Code::ServiceNotAvailable,
            "Service unavailable: shared state unreachable; try again later.",
        ),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// How one listing formats its entries (LIST, NLST or MLSD lines).
struct Lines {
    format: ListFormat,
    facts: Facts,
    rules: Option<Arc<Rules>>,
    /// The directory the entries' names are relative to (for their permissions).
    base_dir: VPath,
    /// NLST of a pattern: the directory part the client typed.
    name_prefix: Vec<u8>,
    now: i64,
}

impl Lines {
    /// Appends the line of `e`; uploads in progress are not there yet.
    fn push(&self, e: &Entry, out: &mut Vec<u8>) {
        if e.name
            .starts_with(crate::vfs::UPLOAD_TEMP_PREFIX.as_bytes())
        {
            return;
        }
        match self.format {
            ListFormat::List => listing::list_line(e, self.now, out),
            ListFormat::Nlst => {
                out.extend_from_slice(&self.name_prefix);
                listing::nlst_line(&e.name, out)
            }
            ListFormat::Mlsd => {
                let perms = match &self.rules {
                    None => Perms::NONE,
                    Some(rules) => self
                        .base_dir
                        .resolve(&e.name)
                        .map_or(rules.base, |p| rules.at(&p)),
                };
                listing::facts_line(e, self.facts, &perm_fact(e, perms), &e.name, out);
                out.extend_from_slice(b"\r\n");
            }
        }
    }
}

fn perm_fact(e: &Entry, perms: Perms) -> Vec<u8> {
    if e.kind == Kind::Dir {
        perms.dir_fact()
    } else {
        perms.file_fact()
    }
}

/// The 226 of an upload; names the stored file when it is not the one asked for.
fn done_reply(target: &VPath, name_it: bool) -> Reply {
    if !name_it {
        return reply(Code::ClosingData, "Transfer complete.");
    }
    let mut text = b"Transfer complete; stored as ".to_vec();
    text.extend_from_slice(target.file_name().unwrap_or(b""));
    text.push(b'.');
    Reply::new(Code::ClosingData, text)
}

/// The first of `name.1`, `name.2`, … next to `target` that does not exist.
async fn free_name(jail: &Jail, target: &VPath) -> Result<VPath, Reply> {
    let base = target.file_name().unwrap_or(b"file").to_vec();
    for i in 1..=limits::MAX_UNIQUE_TRIES {
        let mut name = base.clone();
        name.extend_from_slice(format!(".{i}").as_bytes());
        let candidate = target.with_name(&name).map_err(|e| e.reply(Op::Store))?;
        if !jail
            .exists(&candidate)
            .await
            .map_err(|e| e.reply(Op::Store))?
        {
            return Ok(candidate);
        }
    }
    Err(Error::Exists.reply(Op::Store))
}

/// The name a no-overwrite upload goes to: `target` if free, else (with `unique`) the
/// first free `name.N`, else refused.
async fn claim_name(jail: &Jail, target: VPath, unique: bool) -> Result<VPath, Reply> {
    if !jail.exists(&target).await.map_err(|e| e.reply(Op::Store))? {
        return Ok(target);
    }
    if !unique {
        return Err(Error::Exists.reply(Op::Store));
    }
    free_name(jail, &target).await
}

/// Moves a finished atomic upload under its name. Returns the name it got.
async fn commit_upload(jail: &Jail, c: &Commit) -> Result<VPath, Reply> {
    if c.replace {
        jail.rename(&c.temp, &c.target)
            .await
            .map_err(|e| e.reply(Op::Store))?;
        return Ok(c.target.clone());
    }
    // A hard link never replaces: a name taken meanwhile is refused or skipped.
    let mut target = c.target.clone();
    loop {
        match jail.link(&c.temp, &target).await {
            Ok(()) => break,
            Err(Error::Exists) if c.unique => target = free_name(jail, &c.target).await?,
            Err(e) => {
                let _ = jail.remove_file(&c.temp).await;
                return Err(e.reply(Op::Store));
            }
        }
    }
    let _ = jail.remove_file(&c.temp).await;
    Ok(target)
}

/// Creates `name.1`, `name.2`, … next to `target`, whichever is free first.
async fn unique_create(jail: &Jail, target: &VPath) -> Result<(Sink, VPath), Reply> {
    let base = target.file_name().unwrap_or(b"file").to_vec();
    for i in 1..=limits::MAX_UNIQUE_TRIES {
        let mut name = base.clone();
        name.extend_from_slice(format!(".{i}").as_bytes());
        let candidate = target.with_name(&name).map_err(|e| e.reply(Op::Store))?;
        match jail.open_write(&candidate, WriteMode::CreateNew).await {
            Ok(f) => return Ok((f, candidate)),
            Err(Error::Exists) => continue,
            Err(e) => return Err(e.reply(Op::Store)),
        }
    }
    Err(Error::Exists.reply(Op::Store))
}

/// SIZE in TYPE A: the bytes a download would send (every LF becomes CRLF).
async fn ascii_size(jail: &Jail, target: &VPath, size: u64) -> Result<u64, Reply> {
    if size > limits::MAX_ASCII_SIZE_SCAN {
        return Err(reply(
            Code::FileUnavailable,
            "SIZE in TYPE A is not offered for files this large; use TYPE I.",
        ));
    }
    let (source, _) = jail
        .open_read(target, 0)
        .await
        .map_err(|e| e.reply(Op::Other))?;
    let file = match source {
        Source::File(f) => f,
        Source::Stream(mut stream) => {
            use futures_util::StreamExt;
            let mut total = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|_| Error::Storage.reply(Op::Other))?;
                total += wharf_proto::ascii::encoded_len(&chunk);
            }
            return Ok(total);
        }
    };
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut file = file;
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            match file.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => total += wharf_proto::ascii::encoded_len(&buf[..n]),
                Err(e) => return Err(Error::from(e).reply(Op::Other)),
            }
        }
    })
    .await
    .unwrap_or_else(|_| Err(reply(Code::LocalError, "Local error in processing.")))
}

fn help(topic: Option<&[u8]>) -> Reply {
    if let Some(t) = topic {
        let t = t.trim_ascii().to_ascii_uppercase();
        if command::VERBS.iter().any(|v| v.as_bytes() == t.as_slice()) {
            let mut text = t;
            text.extend_from_slice(b" is supported.");
            return Reply::new(Code::Help, text);
        }
        return reply(Code::ArgumentError, "Unknown command.");
    }
    let mut lines = vec![b"The following commands are recognized:".to_vec()];
    for chunk in command::VERBS.chunks(8) {
        let mut l = Vec::new();
        for v in chunk {
            l.extend_from_slice(format!(" {v:<5}").as_bytes());
        }
        lines.push(l);
    }
    lines.push(b"Help OK.".to_vec());
    Reply::multi(Code::Help, lines)
}
