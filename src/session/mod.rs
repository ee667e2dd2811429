//! One control connection from greeting to QUIT: reads command lines, checks them against
//! the gate, runs them, and writes replies through the one reply encoder.
//!
//! A session owns all its state (no locks). A transfer runs as a task the session can abort,
//! so ABOR and STAT are answered mid-transfer; other commands that arrive meanwhile wait in
//! a bounded queue and run, in order, once the transfer's reply has been sent.

mod datacmd;
mod files;
mod hosts;
mod info;
mod lifecycle;
mod list;
mod login;
mod reader;
mod security;
mod state;
mod transfer;
mod upload;
mod zerocopy;

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
use crate::error::{Error, Op, TransferError, replies};
use crate::limits::{self, Refusal, SessionSlot};
use crate::quota::Footprint;
use crate::shared::{Shared, Stopping};
use crate::tls::{SessionToken, Stream};
use crate::vfs::{Authorized, Jail, Sink, Source, VPath, WriteMode};
use transfer::{Job, Listing, Outcome, Params, Receiving, Sending};

use files::perm_fact;
use info::help;
use lifecycle::{Commit, Direction, Running};
use list::{ListFormat, command_list_args};
use reader::{ControlReader, Event};
use upload::{Store, done_reply};

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
    if session.listed.view.registered.load(Ordering::Relaxed)
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
        arg: String::new(),
        upload_lock: None,
        upload_quota: None,
        host: None,
        host_by_sni: false,
    };
    let mut session = session;
    // Implicit FTPS: the SNI name picks the virtual host before the greeting.
    session.host_from_sni();
    Some((session, span))
}

/// Answers a connection that was not admitted with 421 and the reason, then closes it.
/// On an implicit-TLS listener nothing is sent: no plain text ever goes out there.
pub async fn refuse(mut stream: TcpStream, refusal: Refusal, implicit: bool) {
    if !implicit {
        let mut out = Vec::new();
        crate::error::refused(refusal.0).encode(&mut out);
        let _ =
            tokio::time::timeout(crate::limits::REFUSAL_WRITE_WITHIN, stream.write_all(&out)).await;
    }
}

/// What a login holds: its grant and its jail.
struct Login {
    grant: Grant,
    jail: Jail,
    /// An anonymous login's password: the e-mail address it claims.
    email: Option<String>,
}

struct Session {
    shared: Arc<Shared>,
    /// The configuration this session runs with: taken at connect, renewed at each login
    /// (a reload applies from the next login on).
    cfg: Arc<crate::config::Config>,
    /// This session as the admin interface shows it (removed when the session ends).
    listed: crate::observe::Listed,
    /// The server's shutdown level.
    stopping: tokio::sync::watch::Receiver<crate::shared::Stopping>,
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
    /// The verb being handled and its argument (never PASS's), for error logs; empty for
    /// what the server says on its own (shutdown, idle timeout, kick).
    verb: &'static str,
    arg: String,
    /// The cluster-wide lock on the name being uploaded, until the transfer ends (boxed:
    /// it holds a database connection, and most sessions never have one).
    upload_lock: Option<Box<crate::cluster::UploadLock>>,
    /// The quota bookkeeping of the upload about to start (moved into its `Running`).
    upload_quota: Option<Box<lifecycle::UploadQuota>>,
    /// The virtual host chosen by HOST or SNI; `None` is the default host.
    host: Option<Arc<crate::shared::Host>>,
    /// The host was chosen by the TLS name (a HOST naming another is refused).
    host_by_sni: bool,
}

enum Flow {
    Continue,
    Quit,
}

/// A client's bytes fit for a text log line: at most `max` characters, control characters
/// (a CR, an escape sequence) shown as `?`, so no argument can forge or hide a log line.
fn loggable(b: &[u8], max: usize) -> String {
    lossy(b)
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Session {
    // By reference: an async fn taking `self` by value keeps two copies of it in its task.
    async fn serve(&mut self) {
        info!("connect");
        let greeting = self.banner();
        if self
            .send(Reply::new(Code::ServiceReady, greeting))
            .await
            .is_err()
        {
            return;
        }
        loop {
            if self.transfer.is_none() && *self.stopping.borrow() != Stopping::No {
                self.verb = "";
                let _ = self.send(replies::SHUTTING_DOWN.reply()).await;
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
                            (self.verb, self.arg) = ("(line too long)", String::new());
                            let r = replies::LINE_TOO_LONG.reply();
                            if self.send(r).await.is_err() {
                                break;
                            }
                            continue;
                        }
                        Event::Closed => break,
                        Event::Idle => {
                            self.verb = "";
                            let _ = self.send(replies::IDLE_TIMEOUT.reply()).await;
                            break;
                        }
                        Event::Done(res) => {
                            if Box::pin(self.finish_transfer(res)).await.is_err() {
                                break;
                            }
                            continue;
                        }
                        Event::Kick => {
                            let (why, told) = if self.address_banned() {
                                ("aborted: address banned", replies::BANNED)
                            } else {
                                ("aborted: session kicked", replies::KICKED)
                            };
                            Box::pin(self.cancel_transfer(why, true)).await;
                            self.verb = "";
                            let _ = self.send(told.reply()).await;
                            break;
                        }
                        Event::Stop => {
                            if *self.stopping.borrow() == Stopping::Abort
                                && Box::pin(self.cancel_transfer("aborted at shutdown", true)).await
                            {
                                self.verb = "";
                                let _ = self.send(replies::SHUTDOWN_ABORTED_TRANSFER.reply()).await;
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
        let _ = tokio::time::timeout(
            crate::limits::CONTROL_CLOSE_WITHIN,
            self.ctrl.stream.shutdown(),
        )
        .await;
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
                self.listed
                    .view
                    .traced(format!("< {} {}", r.code().number(), lossy(l)));
            }
        }
        if r.code().number() >= 400 && !self.verb.is_empty() {
            // Every refusal says what was asked, by whom, and why (the client is the span's).
            info!(
                command = self.verb,
                path = %self.arg,
                user = self.login.as_ref().map_or("-", |l| l.grant.user.as_str()),
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
                // Logged with the verb as typed and no argument: a mistyped verb may be
                // followed by a password.
                self.verb = "(unparsed)";
                let token = line.split(|b| *b == b' ').next().unwrap_or_default();
                self.arg = loggable(token, 16);
                self.rename_from = None;
                if let Some(r) = crate::error::parse_failure(&e) {
                    self.send(r).await?;
                }
                return Ok(Flow::Continue);
            }
        };
        self.verb = cmd.verb();
        self.arg = match (&cmd, line.iter().position(|b| *b == b' ')) {
            (Command::Pass(_), _) | (_, None) => String::new(),
            (_, Some(i)) => loggable(&line[i + 1..], 256),
        };
        self.listed.view.touch(self.verb);
        if self.traced() {
            // PASS shows only its verb: the trace never holds a password.
            let shown = if matches!(cmd, Command::Pass(_)) {
                "PASS ****".to_string()
            } else {
                lossy(&line)
            };
            info!(line = %shown, "trace command");
            self.listed.view.traced(format!("> {shown}"));
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
                self.send(replies::GOODBYE.reply()).await?;
                return Ok(Flow::Quit);
            }
            Err(Stop::Drop) => return Ok(Flow::Quit),
        };
        self.send(r).await?;
        Ok(Flow::Continue)
    }

    async fn enqueue(&mut self, line: Vec<u8>) -> std::io::Result<Flow> {
        if self.queued.len() >= limits::MAX_QUEUED_COMMANDS {
            self.send(replies::TOO_MANY_QUEUED.reply()).await?;
            return Ok(Flow::Quit);
        }
        self.queued.push_back(line);
        Ok(Flow::Continue)
    }

    fn login(&self) -> Result<&Login, Reply> {
        self.login
            .as_ref()
            .ok_or_else(|| replies::LOGIN_FIRST.reply())
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

    /// Runs one gated command: one arm per verb, so a new `Command` does not compile
    /// without its handler. `Ok(None)` means the handler already replied.
    async fn dispatch(
        &mut self,
        cmd: Command,
        rename_from: Option<VPath>,
    ) -> Result<Option<Reply>, Stop> {
        use Command as C;
        // Handlers answer `Err` with their refusal; both are the reply.
        let one = |r: Result<Reply, Reply>| Some(r.unwrap_or_else(|e| e));
        let maybe = |r: Result<Option<Reply>, Reply>| r.unwrap_or_else(Some);
        Ok(match cmd {
            C::Quit => return Err(Stop::Quit),
            C::Noop => Some(replies::NOOP_OK.reply()),
            C::Syst => Some(replies::SYSTEM_TYPE.reply()),
            C::Feat => Some(self.feat()),
            C::Help(topic) => Some(help(topic.as_deref())),
            C::Clnt => Some(replies::NOTED.reply()),
            C::Acct => Some(replies::NO_ACCOUNT_NEEDED.reply()),
            C::Allo => Some(replies::ALLO_NOT_NEEDED.reply()),
            C::Mode => Some(replies::MODE_STREAM.reply()),
            C::Stru => Some(replies::STRUCTURE_FILE.reply()),
            C::Host(name) => Some(self.host_command(&name)),
            C::Abor => {
                self.data = None;
                Some(replies::NO_TRANSFER_TO_ABORT.reply())
            }
            C::Auth(mech) => return self.auth(&mech).await,
            C::Pbsz(_) => Some(self.pbsz()),
            C::Prot(level) => Some(self.prot(&level)),
            C::Ccc => Some(self.ccc()),
            C::Opts(o) => Some(self.opts(o)),
            C::Type(t) => Some(self.set_type(t)),
            C::Rein => {
                self.logout();
                // Back to the default host, unless the TLS name chose this one.
                if !self.host_by_sni {
                    self.set_host(None);
                }
                Some(replies::REINITIALIZED.reply())
            }
            C::User(name) => Some(self.user(name)),
            C::Pass(pw) => match self.pass(pw.expose()).await {
                Ok(r) => Some(r),
                Err(r) => {
                    // Refused for a limit or a ban: say why, then close.
                    let _ = self.send(r).await;
                    return Err(Stop::Drop);
                }
            },
            C::Rest(n) => {
                self.rest = n;
                Some(Reply::new(
                    Code::PendingFurtherInfo,
                    format!("Restarting at {n}. Send STOR or RETR."),
                ))
            }
            C::Pasv => Some(self.pasv()),
            C::Epsv(arg) => Some(self.epsv(arg)),
            C::Port(addr) | C::Eprt(addr) => Some(self.port(addr)),
            C::Pwd => one(self.pwd()),
            C::Cwd(arg) => one(self.cwd_to(Some(&arg)).await),
            C::Cdup => one(self.cwd_to(None).await),
            C::Mkd(arg) => one(self.mkd(&arg).await),
            C::Rmd(arg) => one(self.rmd(&arg).await),
            C::Dele(arg) => one(self.dele(&arg).await),
            C::Rnfr(arg) => one(self.rnfr(&arg).await),
            C::Rnto(arg) => one(self.rnto(&arg, rename_from).await),
            C::Size(arg) => one(self.size(&arg).await),
            C::Mdtm(arg) => one(self.mdtm(&arg).await),
            C::Mfmt { mtime, path } => one(self.mfmt(mtime, &path).await),
            C::Site(site) => one(self.site(site).await),
            C::Stat(None) => Some(self.status()),
            C::Stat(Some(arg)) => one(self.stat_path(&arg).await),
            C::Mlst(arg) => one(self.mlst(arg.as_deref()).await),
            C::List(args) => maybe(self.list_command(args, ListFormat::List).await),
            C::Nlst(args) => maybe(self.list_command(args, ListFormat::Nlst).await),
            C::Mlsd(path) => {
                let args = ListArgs {
                    flags: Vec::new(),
                    path,
                };
                maybe(self.list_command(args, ListFormat::Mlsd).await)
            }
            C::Retr(arg) => maybe(self.retr(&arg).await),
            C::Stor(arg) => maybe(self.store(Store::Stor(arg)).await),
            C::Appe(arg) => maybe(self.store(Store::Appe(arg)).await),
            C::Stou(hint) => maybe(self.store(Store::Stou(hint)).await),
        })
    }
}

/// Why a session ends from a command.
enum Stop {
    /// QUIT: after a 221.
    Quit,
    /// At once, without a reply (a failed TLS upgrade).
    Drop,
}
