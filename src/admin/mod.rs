//! The admin interface: an HTTP endpoint (off by default) with health, Prometheus metrics,
//! the sessions now connected (kick one), the bans (list, add, lift) and quota usage; plus
//! the client the `wharf who|kick|ban|reload|quota` commands use.
//!
//! axum serves it (on TCP, a Unix socket, or both); prometheus-client encodes the metrics.
//! A TCP listener on a non-loopback address needs a bearer token. Without a token, requests
//! a browser makes for a web page (cross-site requests, DNS rebinding) are refused.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::{Deserialize, Serialize};

use crate::observe::SessionInfo;

mod dashboard;
use crate::shared::{Shared, Stopping};

#[derive(Debug, Deserialize)]
struct TraceRequest {
    /// A user name or a client address.
    target: String,
    #[serde(default = "yes")]
    on: bool,
}

fn yes() -> bool {
    true
}

async fn trace_list(State(s): State<App>, h: HeaderMap) -> Response {
    if let Err(r) = guard(&s, &h).await {
        return r;
    }
    Json(s.trace.list()).into_response()
}

async fn trace_set(State(s): State<App>, h: HeaderMap, Json(req): Json<TraceRequest>) -> Response {
    if let Err(r) = guard(&s, &h).await {
        return r;
    }
    s.trace.set(&req.target, req.on);
    tracing::info!(target_ = %req.target, on = req.on, "protocol trace switched");
    "ok\n".into_response()
}

/// A ban as JSON.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct BanInfo {
    pub ip: IpAddr,
    pub seconds_left: u64,
}

/// A login's quota and what its root holds, as JSON (`GET /quota`).
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct QuotaInfo {
    pub user: String,
    /// The virtual host the user belongs to (none: the default host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub bytes: Option<u64>,
    pub files: Option<u64>,
    pub quota_bytes: Option<u64>,
    pub quota_files: Option<u64>,
    /// Why the root could not be counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct BanRequest {
    ip: IpAddr,
    #[serde(default)]
    seconds: Option<u64>,
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    let config = shared.config();
    let Some(token) = &config.admin_token else {
        return true;
    };
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| same_secret(t, token))
}

/// Compares two secrets in time that does not depend on where they differ (HMACs under a
/// fresh key compared, so no prefix of a guess is confirmed early).
fn same_secret(a: &str, b: &str) -> bool {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    use hmac::Mac;
    let mut key = [0u8; 32];
    OsRng.fill_bytes(&mut key);
    let tag = |s: &str| {
        let mut m =
            <hmac::Hmac<sha2::Sha256>>::new_from_slice(&key).expect("HMAC takes any key length");
        m.update(s.as_bytes());
        m.finalize().into_bytes()
    };
    tag(a) == tag(b)
}

type App = Arc<Shared>;

/// Set by [`same_machine`] (and only there: it is removed from what arrives) on a request
/// signed in on the dashboard.
const SIGNED_IN: &str = "x-wharf-dashboard-signed-in";

async fn guard(shared: &App, headers: &HeaderMap) -> Result<(), Response> {
    if authorized(shared, headers) || headers.contains_key(SIGNED_IN) {
        Ok(())
    } else {
        Err((StatusCode::UNAUTHORIZED, "a bearer token is required\n").into_response())
    }
}

/// Without `admin_token`, whoever reaches the endpoint may use it, so it must be someone on
/// this machine and not a web page in their browser. A page can send requests to a loopback
/// address (a form POST needs no CORS), and with DNS rebinding its own name can resolve to
/// 127.0.0.1: over TCP, requests whose Host is not a loopback name or address are refused.
/// With a token configured, the token decides, as before.
///
/// Requests a browser makes for a page (they carry `Origin`, or a `Sec-Fetch-Site` other
/// than `none`, which is a URL the user typed) are let through only from the dashboard's
/// own origin, and only signed in there (its cookie), except for the page itself and the
/// sign-in form; those that change anything must also carry the sign-in's CSRF token.
async fn same_machine(State(local): State<Local>, mut req: Request, next: Next) -> Response {
    req.headers_mut().remove(SIGNED_IN);
    let token = local.shared.config().admin_token.is_some();
    let h = req.headers();
    let host = h.get("host").and_then(|v| v.to_str().ok());
    // An absolute-form request target carries the host too, and then wins.
    let host = req.uri().authority().map(|a| a.as_str()).or(host);
    if !token && local.check_host && !host.is_some_and(loopback_host) {
        return refuse(
            "refused: Host is not a loopback name or address (set admin_token to use another)\n",
        );
    }
    let site = h.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let origin = h.get("origin").and_then(|v| v.to_str().ok());
    let from_page = origin.is_some() || site.is_some_and(|v| v != "none");
    let csrf = local.dash.csrf_of(h);
    // A bearer token is what a web page cannot send: with it, Origin does not matter.
    let bearer = token && authorized(&local.shared, h);
    if from_page && !bearer {
        let same_origin = site.is_none_or(|v| v == "same-origin" || v == "none")
            && origin.is_none_or(|o| host.is_some_and(|h| o == format!("http://{h}")));
        if !same_origin || !local.check_host {
            return refuse("refused: a request from another site\n");
        }
        let path = req.uri().path();
        let changes = !matches!(*req.method(), Method::GET | Method::HEAD);
        // The page, its script and style (no secrets in them), and the sign-in form.
        let open = (matches!(path, "/" | "/ui/app.js" | "/ui/app.css") && !changes)
            || (path == "/ui/login" && changes);
        if !open {
            let Some(expected) = &csrf else {
                return refuse("refused: sign in on the dashboard first\n");
            };
            let sent = req
                .headers()
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok());
            if changes && sent != Some(expected.as_str()) {
                return refuse("refused: missing or wrong CSRF token\n");
            }
        }
    }
    if csrf.is_some() {
        req.headers_mut()
            .insert(SIGNED_IN, axum::http::HeaderValue::from_static("1"));
    }
    next.run(req).await
}

fn refuse(why: &'static str) -> Response {
    (StatusCode::FORBIDDEN, why).into_response()
}

/// Whether an HTTP Host (`name`, `name:port`, `[v6]`, `[v6]:port`) names this machine:
/// `localhost`, 127.0.0.0/8 or ::1.
fn loopback_host(host: &str) -> bool {
    use std::net::{Ipv4Addr, Ipv6Addr};
    let port = |p: &str| p.parse::<u16>().is_ok();
    if let Some(bracketed) = host.strip_prefix('[') {
        return bracketed.split_once(']').is_some_and(|(ip, rest)| {
            (rest.is_empty() || rest.strip_prefix(':').is_some_and(port))
                && ip.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback())
        });
    }
    let (name, port_ok) = match host.split_once(':') {
        Some((name, p)) => (name, port(p)),
        None => (host, true),
    };
    port_ok
        && (name.eq_ignore_ascii_case("localhost")
            || name.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback()))
}

/// What [`same_machine`] needs: the config (for the token), the kind of listener and the
/// dashboard's sign-ins.
#[derive(Clone)]
struct Local {
    shared: App,
    check_host: bool,
    dash: Arc<dashboard::Dashboard>,
}

/// A listener the admin endpoint serves on.
pub trait AdminListener: axum::serve::Listener {
    /// Whether a browser can connect (TCP), so that the Host header must be checked.
    const BROWSER_REACHABLE: bool;
}

impl AdminListener for tokio::net::TcpListener {
    const BROWSER_REACHABLE: bool = true;
}

impl AdminListener for tokio::net::UnixListener {
    const BROWSER_REACHABLE: bool = false;
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(s): State<App>) -> Response {
    if *s.stopping().borrow() == Stopping::No {
        "ready\n".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    }
}

async fn metrics(State(s): State<App>, h: HeaderMap) -> Response {
    if let Err(r) = guard(&s, &h).await {
        return r;
    }
    let all = s.who.all();
    let encrypted = all.iter().filter(|v| v.tls.load(Ordering::Relaxed)).count() as i64;
    s.metrics
        .sessions_by_tls(encrypted, all.len() as i64 - encrypted);
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
        .into_response()
}

async fn sessions(State(s): State<App>, h: HeaderMap) -> Response {
    if let Err(r) = guard(&s, &h).await {
        return r;
    }
    let list: Vec<SessionInfo> = s.who.all().iter().map(|v| v.info()).collect();
    Json(list).into_response()
}

async fn kick(State(s): State<App>, h: HeaderMap, Path(id): Path<u64>) -> Response {
    if let Err(r) = guard(&s, &h).await {
        return r;
    }
    match s.who.get(id) {
        Some(v) => {
            v.kick();
            tracing::info!(session = id, "session kicked by the administrator");
            "kicked\n".into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such session\n").into_response(),
    }
}

/// Usage and limits of every login with a quota (`GET /quota`).
async fn quota_all(State(s): State<App>, h: HeaderMap) -> Response {
    quota(s, h, None).await
}

/// Usage and limits of one user, with a quota or not (`GET /quota/{user}`).
async fn quota_one(State(s): State<App>, h: HeaderMap, Path(user): Path<String>) -> Response {
    quota(s, h, Some(user)).await
}

/// Counts the roots asked for now if no one has yet.
async fn quota(s: App, h: HeaderMap, user: Option<String>) -> Response {
    if let Err(r) = guard(&s, &h).await {
        return r;
    }
    // The default host's logins, then each virtual host's.
    let mut all: Vec<_> = s.auth().quotas().into_iter().map(|q| (None, q)).collect();
    for h in s.hosts().iter() {
        all.extend(
            h.auth
                .quotas()
                .into_iter()
                .map(|q| (Some(h.name.clone()), q)),
        );
    }
    let wanted: Vec<_> = all
        .into_iter()
        .filter(|(_, (name, _, quota))| match &user {
            Some(u) => u == name,
            None => quota.is_set(),
        })
        .collect();
    if wanted.is_empty() && user.is_some() {
        return (StatusCode::NOT_FOUND, "no such user\n").into_response();
    }
    let mut out = Vec::new();
    for (host, (user, root, limit)) in wanted {
        let counted = match s.jail(&root).await {
            Ok(jail) => s.quotas.usage(&jail).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        out.push(QuotaInfo {
            user,
            host,
            bytes: counted.as_ref().ok().map(|u| u.bytes),
            files: counted.as_ref().ok().map(|u| u.files),
            quota_bytes: limit.bytes,
            quota_files: limit.files,
            error: counted.err(),
        });
    }
    Json(out).into_response()
}

/// The bans in force, with their time left.
fn ban_list(s: &Shared) -> Vec<BanInfo> {
    s.guard
        .bans(Instant::now())
        .into_iter()
        .map(|b| BanInfo {
            ip: b.ip,
            seconds_left: b.remaining.as_secs(),
        })
        .collect()
}

async fn bans(State(s): State<App>, h: HeaderMap) -> Response {
    if let Err(r) = guard(&s, &h).await {
        return r;
    }
    Json(ban_list(&s)).into_response()
}

async fn add_ban(State(s): State<App>, h: HeaderMap, Json(req): Json<BanRequest>) -> Response {
    if let Err(r) = guard(&s, &h).await {
        return r;
    }
    let secs = req.seconds.unwrap_or(s.config().ban_time);
    s.guard
        .ban(req.ip, Duration::from_secs(secs), Instant::now());
    s.metrics.bans.inc();
    if let Some(c) = &s.cluster {
        c.publish_ban(req.ip, Duration::from_secs(secs)).await;
    }
    tracing::warn!(ip = %req.ip, seconds = secs, "address banned by the administrator");
    "banned\n".into_response()
}

async fn lift_ban(State(s): State<App>, h: HeaderMap, Path(ip): Path<IpAddr>) -> Response {
    if let Err(r) = guard(&s, &h).await {
        return r;
    }
    let clustered = match &s.cluster {
        Some(c) => {
            c.lift_ban(ip).await;
            true
        }
        None => false,
    };
    if s.guard.unban(ip) || clustered {
        tracing::info!(%ip, "ban lifted by the administrator");
        "lifted\n".into_response()
    } else {
        (StatusCode::NOT_FOUND, "not banned\n").into_response()
    }
}

async fn reload(State(s): State<App>, h: HeaderMap) -> Response {
    if let Err(r) = guard(&s, &h).await {
        return r;
    }
    let shared = s.clone();
    let result = tokio::task::spawn_blocking(move || shared.reload())
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
    match result {
        Ok(()) => "reloaded\n".into_response(),
        Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, format!("{e}\n")).into_response(),
    }
}

/// Serves the admin interface on `addr` until the task is dropped.
pub async fn serve<L>(listener: L, shared: Arc<Shared>)
where
    L: AdminListener,
    L::Addr: std::fmt::Debug,
{
    let dash = Arc::new(dashboard::Dashboard::default());
    // Only a browser-reachable endpoint shows the dashboard's charts.
    let sampler = L::BROWSER_REACHABLE.then(|| dash.spawn_sampler(&shared));
    let _stop_sampler = sampler.map(|h| h.abort_handle()).map(AbortOnDrop);
    let local = Local {
        shared: shared.clone(),
        check_host: L::BROWSER_REACHABLE,
        dash: dash.clone(),
    };
    let app = axum::Router::new()
        .route("/", get(dashboard::page))
        .route("/ui/app.js", get(dashboard::script))
        .route("/ui/app.css", get(dashboard::style))
        .route("/ui/login", post(dashboard::login))
        .route("/ui/logout", post(dashboard::logout))
        .route("/ui/state", get(dashboard::state))
        .route("/sessions/{id}/trace", get(dashboard::trace_lines))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/sessions", get(sessions))
        .route("/sessions/{id}/kick", post(kick))
        .route("/quota", get(quota_all))
        .route("/quota/{user}", get(quota_one))
        .route("/bans", get(bans).post(add_ban))
        .route("/bans/{ip}", delete(lift_ban))
        .route("/reload", post(reload))
        .route("/trace", get(trace_list).post(trace_set))
        .with_state(shared)
        .layer(axum::Extension(dash))
        // On every route and on the 404 of unknown ones.
        .layer(axum::middleware::from_fn_with_state(local, same_machine));
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "admin endpoint failed");
    }
}

/// Aborts a task when dropped (the sampler ends with the endpoint).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Where the admin endpoint listens: TCP, or a Unix socket.
#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint {
    Tcp(SocketAddr),
    Unix(std::path::PathBuf),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Tcp(a) => write!(f, "http://{a}"),
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

impl std::str::FromStr for Endpoint {
    type Err = std::convert::Infallible;

    /// `ADDR:PORT` is TCP; anything else is a socket path.
    fn from_str(s: &str) -> Result<Endpoint, Self::Err> {
        Ok(match s.parse() {
            Ok(addr) => Endpoint::Tcp(addr),
            Err(_) => Endpoint::Unix(s.into()),
        })
    }
}

/// Binds the admin Unix socket with mode 0600, replacing a stale socket left by a previous
/// run (but never another kind of file).
pub fn bind_unix(path: &std::path::Path) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
    // /run is emptied at boot: its directory (e.g. /run/wharf) is made when missing, as
    // systemd's RuntimeDirectory= does; only that one level, never a whole tree.
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.exists()
    {
        std::fs::DirBuilder::new().mode(0o755).create(parent)?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "exists and is not a socket",
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// The admin client of the CLI commands.
pub struct Client {
    endpoint: Endpoint,
    token: Option<String>,
}

impl Client {
    pub fn new(endpoint: Endpoint, token: Option<String>) -> Client {
        Client { endpoint, token }
    }

    /// Sends a request; returns the status and the body.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<(u16, String), String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(self.request(method, path, body))
            .map_err(|e| format!("admin endpoint {}: {e}", self.endpoint))
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<(u16, String), String> {
        // Over TCP the address itself is the Host (a loopback one passes the Host check
        // without a token); over the socket, whose Host nobody checks, `localhost`.
        let builder = crate::http::client().timeout(crate::limits::ADMIN_CLIENT_WITHIN);
        let (builder, base) = match &self.endpoint {
            Endpoint::Tcp(a) => (builder, format!("http://{a}")),
            Endpoint::Unix(p) => (builder.unix_socket(p.clone()), "http://localhost".into()),
        };
        let http = builder.build().map_err(|e| crate::http::error_text(&e))?;
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let mut req = http.request(method, format!("{base}{path}"));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let res = req.send().await.map_err(|e| crate::http::error_text(&e))?;
        let status = res.status().as_u16();
        let text = res.text().await.map_err(|e| crate::http::error_text(&e))?;
        Ok((status, text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for ok in [
            "localhost",
            "LocalHost:9021",
            "127.0.0.1",
            "127.0.0.1:9021",
            "127.1.2.3:80",
            "[::1]",
            "[::1]:9021",
        ] {
            assert!(loopback_host(ok), "{ok}");
        }
        for refused in [
            "",
            "evil.example",
            "evil.example:9021",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "10.0.0.1:9021",
            "0.0.0.0:9021",
            "[::2]:9021",
            "[::1]evil",
            "[::1]:x",
            "[::1",
            "::1",
            "localhost:9021:1",
            "localhost:",
            "[::ffff:127.0.0.1]",
            "wharf",
        ] {
            assert!(!loopback_host(refused), "{refused}");
        }
    }
}
