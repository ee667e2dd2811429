//! The live dashboard (`GET /`): one page, its script and style, all served by wharf
//! itself; the page polls `GET /ui/state` every second and acts through the same endpoints
//! as the CLI (kick, bans, trace, reload).
//!
//! Who may use it: without `admin_token`, whoever reaches the endpoint from this machine
//! (as for the CLI); with one, whoever signs in with it (`POST /ui/login`), which sets an
//! HttpOnly, SameSite=Strict cookie. Requests the page makes must come from the page's own
//! origin with that cookie, and those that change something carry the cookie's CSRF token
//! in `X-CSRF-Token` (checked in `same_machine`). Every text shown comes from a client and
//! goes into the page as text, never as markup; the page runs under a CSP with no inline
//! script.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form, Json};
use serde::{Deserialize, Serialize};

use super::{App, BanInfo, authorized, ban_list, guard, same_secret};
use crate::observe::SessionInfo;
use crate::shared::Shared;

/// The cookie that holds a dashboard sign-in.
pub const COOKIE: &str = "wharf_admin";
/// Sign-ins kept at once (the oldest goes first) and for how long.
const MAX_SIGN_INS: usize = 64;
const SIGNED_IN_FOR: Duration = Duration::from_secs(12 * 3600);
/// Seconds of history the charts show, one sample a second.
const HISTORY: usize = 600;
/// Rows of the sessions table: the busiest first.
const TOP_SESSIONS: usize = 200;
/// How often storage and cluster health are looked at (while the page is open).
const HEALTH_EVERY: Duration = Duration::from_secs(10);
/// A wrong token costs this long (the token is the only secret; a guess must be slow).
const WRONG_TOKEN_DELAY: Duration = Duration::from_secs(1);

const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("page.js");
const STYLE: &str = include_str!("page.css");

/// One second of activity.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Sample {
    /// Unix seconds.
    pub t: u64,
    /// Bytes per second received (uploads) and sent (downloads).
    pub up: u64,
    pub down: u64,
    pub sessions: i64,
    pub logins: u64,
    pub failures: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
struct Health {
    storages: Vec<StorageHealth>,
    cluster: Option<ClusterHealth>,
}

#[derive(Debug, Clone, Serialize)]
struct StorageHealth {
    name: String,
    location: String,
    ok: bool,
    error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct ClusterHealth {
    database: bool,
    nodes: Vec<NodeHealth>,
}

#[derive(Debug, Clone, Serialize)]
struct NodeHealth {
    name: String,
    seen_seconds_ago: f64,
}

struct SignIn {
    csrf: String,
    until: Instant,
}

/// The dashboard's own state: sign-ins, the last ten minutes, storage health.
#[derive(Default)]
pub struct Dashboard {
    sign_ins: Mutex<HashMap<String, SignIn>>,
    /// One sign-in checked at a time, a wrong one holding its turn for
    /// [`WRONG_TOKEN_DELAY`]: guesses come at one a second however many connections send
    /// them.
    guessing: tokio::sync::Mutex<()>,
    history: Mutex<VecDeque<Sample>>,
    health: Mutex<Health>,
    /// When the page last asked for the state: storages are probed only while someone
    /// looks (each probe is a request to the storage, which may be billed).
    viewed: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard").finish_non_exhaustive()
    }
}

fn random_hex() -> String {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    let mut b = [0u8; 24];
    OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The dashboard cookie's value in `headers`, if any.
fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

impl Dashboard {
    /// The CSRF token of the sign-in `headers` carry, if it is valid.
    pub fn csrf_of(&self, headers: &HeaderMap) -> Option<String> {
        let value = cookie_value(headers)?;
        let map = self.sign_ins.lock().ok()?;
        map.get(value)
            .filter(|s| s.until > Instant::now())
            .map(|s| s.csrf.clone())
    }

    /// A new sign-in; returns its cookie header.
    fn sign_in(&self) -> HeaderValue {
        let value = random_hex();
        if let Ok(mut map) = self.sign_ins.lock() {
            let now = Instant::now();
            map.retain(|_, s| s.until > now);
            if map.len() >= MAX_SIGN_INS
                && let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, s)| s.until)
                    .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
            map.insert(
                value.clone(),
                SignIn {
                    csrf: random_hex(),
                    until: now + SIGNED_IN_FOR,
                },
            );
        }
        HeaderValue::from_str(&format!(
            "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
            SIGNED_IN_FOR.as_secs()
        ))
        .unwrap_or(HeaderValue::from_static(""))
    }

    fn sign_out(&self, headers: &HeaderMap) {
        if let (Some(v), Ok(mut map)) = (cookie_value(headers), self.sign_ins.lock()) {
            map.remove(v);
        }
    }

    /// Samples activity every second and health every ten, until dropped.
    pub fn spawn_sampler(self: &Arc<Self>, shared: &Arc<Shared>) -> tokio::task::JoinHandle<()> {
        let (dash, shared) = (Arc::downgrade(self), Arc::downgrade(shared));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut last: Option<(u64, u64, u64, u64)> = None;
            let mut health_at: Option<Instant> = None;
            loop {
                tick.tick().await;
                let (Some(dash), Some(shared)) = (dash.upgrade(), shared.upgrade()) else {
                    return;
                };
                let now = totals(&shared);
                if let Some(before) = last {
                    dash.push(Sample {
                        t: SystemTime::now()
                            .duration_since(SystemTime::UNIX_EPOCH)
                            .map_or(0, |d| d.as_secs()),
                        up: now.0.saturating_sub(before.0),
                        down: now.1.saturating_sub(before.1),
                        sessions: shared.metrics.sessions_current.get(),
                        logins: now.2.saturating_sub(before.2),
                        failures: now.3.saturating_sub(before.3),
                    });
                }
                last = Some(now);
                let looked_at = dash
                    .viewed
                    .lock()
                    .ok()
                    .and_then(|v| *v)
                    .is_some_and(|t| t.elapsed() < HEALTH_EVERY * 6);
                if looked_at && health_at.is_none_or(|t| t.elapsed() >= HEALTH_EVERY) {
                    health_at = Some(Instant::now());
                    let h = health(&shared).await;
                    if let Ok(mut g) = dash.health.lock() {
                        *g = h;
                    }
                }
            }
        })
    }

    fn push(&self, s: Sample) {
        if let Ok(mut h) = self.history.lock() {
            if h.len() >= HISTORY {
                h.pop_front();
            }
            h.push_back(s);
        }
    }
}

/// Bytes up and down so far (finished transfers and the progress of running ones), and
/// logins ok and failed.
fn totals(shared: &Shared) -> (u64, u64, u64, u64) {
    let (mut up, mut down, ok, failed) = shared.metrics.totals();
    for v in shared.who.all() {
        if let Ok(t) = v.transfer.lock()
            && let Some(t) = t.as_ref()
        {
            let n = t.progress.load(Ordering::Relaxed);
            match t.direction {
                "upload" => up += n,
                "download" => down += n,
                _ => {}
            }
        }
    }
    (up, down, ok, failed)
}

/// Whether each S3 storage answers, and the cluster's database and nodes.
async fn health(shared: &Shared) -> Health {
    let mut storages = Vec::new();
    for (name, store) in shared.stores().iter() {
        let r = tokio::time::timeout(Duration::from_secs(5), store.probe()).await;
        let (ok, error) = match r {
            Ok(Ok(())) => (true, None),
            Ok(Err(e)) => (false, Some(e.to_string())),
            Err(_) => (false, Some("no answer within 5 s".into())),
        };
        storages.push(StorageHealth {
            name: name.clone(),
            location: store.location.clone(),
            ok,
            error,
        });
    }
    let cluster = match &shared.cluster {
        Some(c) => Some(match c.nodes().await {
            Some(nodes) => ClusterHealth {
                database: true,
                nodes: nodes
                    .into_iter()
                    .map(|(name, seen_seconds_ago)| NodeHealth {
                        name,
                        seen_seconds_ago,
                    })
                    .collect(),
            },
            None => ClusterHealth {
                database: false,
                nodes: Vec::new(),
            },
        }),
        None => None,
    };
    Health { storages, cluster }
}

/// What the page shows, polled every second.
#[derive(Debug, Serialize)]
struct State_ {
    csrf: String,
    node: String,
    sessions_total: usize,
    sessions: Vec<SessionInfo>,
    bans: Vec<BanInfo>,
    passive_in_use: i64,
    passive_range: Option<(u16, u16)>,
    history: Vec<Sample>,
    health: Health,
    traced: Vec<String>,
}

fn secure(mut r: Response, content_type: &'static str) -> Response {
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
             img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

const LOGIN_FORM: &str = include_str!("login.html");

/// `GET /`: the page (signing in whoever may use the endpoint), or the sign-in form.
pub async fn page(
    State(s): State<App>,
    Extension(d): Extension<Arc<Dashboard>>,
    h: HeaderMap,
) -> Response {
    let signed_in = d.csrf_of(&h).is_some();
    if !signed_in && !authorized(&s, &h) {
        return secure(LOGIN_FORM.into_response(), "text/html; charset=utf-8");
    }
    let mut r = secure(PAGE.into_response(), "text/html; charset=utf-8");
    if !signed_in {
        r.headers_mut().insert(header::SET_COOKIE, d.sign_in());
    }
    r
}

pub async fn script() -> Response {
    secure(SCRIPT.into_response(), "text/javascript; charset=utf-8")
}

pub async fn style() -> Response {
    secure(STYLE.into_response(), "text/css; charset=utf-8")
}

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    token: String,
}

/// `POST /ui/login`: the admin token, from the sign-in form.
pub async fn login(
    State(s): State<App>,
    Extension(d): Extension<Arc<Dashboard>>,
    Form(f): Form<SignInForm>,
) -> Response {
    let turn = d.guessing.lock().await;
    let good = s
        .config()
        .admin_token
        .as_deref()
        .is_some_and(|t| same_secret(t, &f.token));
    if !good {
        tokio::time::sleep(WRONG_TOKEN_DELAY).await;
        drop(turn);
        tracing::warn!("dashboard sign-in with a wrong token");
        let r = (StatusCode::UNAUTHORIZED, LOGIN_FORM).into_response();
        return secure(r, "text/html; charset=utf-8");
    }
    drop(turn);
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    r.headers_mut().insert(header::SET_COOKIE, d.sign_in());
    r
}

/// `POST /ui/logout`.
pub async fn logout(Extension(d): Extension<Arc<Dashboard>>, h: HeaderMap) -> Response {
    d.sign_out(&h);
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("wharf_admin=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    r
}

/// `GET /ui/state`: sessions (the busiest first), bans, ports, history and health.
pub async fn state(
    State(s): State<App>,
    Extension(d): Extension<Arc<Dashboard>>,
    h: HeaderMap,
) -> Response {
    if let Err(r) = guard(&s, &h).await {
        return r;
    }
    if let Ok(mut v) = d.viewed.lock() {
        *v = Some(Instant::now());
    }
    let mut sessions: Vec<SessionInfo> = s.who.all().iter().map(|v| v.info()).collect();
    let sessions_total = sessions.len();
    sessions.sort_by(|a, b| {
        let rate = |x: &SessionInfo| x.transfer.as_ref().map(|t| t.bytes_per_second + 1);
        rate(b).cmp(&rate(a)).then(a.id.cmp(&b.id))
    });
    sessions.truncate(TOP_SESSIONS);
    let bans = ban_list(&s);
    let config = s.config();
    let body = State_ {
        csrf: d.csrf_of(&h).unwrap_or_default(),
        node: s
            .cluster
            .as_ref()
            .map(|c| c.node.clone())
            .unwrap_or_default(),
        sessions_total,
        sessions,
        bans,
        passive_in_use: s.metrics.passive_ports.get(),
        passive_range: config.passive_ports.map(|r| (r.low, r.high)),
        history: d
            .history
            .lock()
            .map(|h| h.iter().copied().collect())
            .unwrap_or_default(),
        health: d.health.lock().map(|h| h.clone()).unwrap_or_default(),
        traced: s.trace.list(),
    };
    Json(body).into_response()
}

/// `GET /sessions/{id}/trace`: the session's last protocol trace lines.
pub async fn trace_lines(State(s): State<App>, h: HeaderMap, Path(id): Path<u64>) -> Response {
    if let Err(r) = guard(&s, &h).await {
        return r;
    }
    match s.who.get(id) {
        Some(v) => Json(v.trace_lines()).into_response(),
        None => (StatusCode::NOT_FOUND, "no such session\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; wharf_admin=abc; b=2"),
        );
        assert_eq!(cookie_value(&h), Some("abc"));
        let d = Dashboard::default();
        assert_eq!(d.csrf_of(&h), None, "an unknown cookie signs nobody in");
        let set = d.sign_in();
        let value = set.to_str().unwrap().split(';').next().unwrap().to_string();
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(&value).unwrap());
        assert!(d.csrf_of(&h).is_some());
        assert!(set.to_str().unwrap().contains("HttpOnly; SameSite=Strict"));
    }

    #[test]
    fn sign_ins_are_bounded() {
        let d = Dashboard::default();
        for _ in 0..(MAX_SIGN_INS + 10) {
            d.sign_in();
        }
        assert_eq!(d.sign_ins.lock().unwrap().len(), MAX_SIGN_INS);
    }

    #[test]
    fn secrets_compare() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
