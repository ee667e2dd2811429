//! The admin dashboard in a real browser (headless Chromium driven by Selenium from
//! `py/dashboard.py`), against a `wharf serve` with a slow upload under way; and the
//! dashboard's guards over plain HTTP (sign-in, cookie, CSRF token, Origin).

use std::process::Command;

use crate::processes::{Wharf, serve};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/py/dashboard.py");

/// Whether Chromium, its driver and Selenium are here; in CI they must be.
fn browser() -> bool {
    let here = std::path::Path::new("/usr/bin/chromium").exists()
        && std::path::Path::new("/usr/bin/chromedriver").exists()
        && Command::new("python3")
            .args(["-c", "import selenium"])
            .output()
            .is_ok_and(|o| o.status.success());
    assert!(
        here || std::env::var_os("CI").is_none(),
        "CI must have chromium, chromium-driver and selenium"
    );
    here
}

/// `wharf serve` with the admin endpoint, user judge/pw limited to `rate_up` bytes/s, and
/// `extra` configuration lines.
fn start(dir: &std::path::Path, extra: &str) -> Wharf {
    let hash = wharf::auth::hash_password(b"pw");
    let root = dir.join("srv");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        dir.join("wharf.toml"),
        format!(
            "root = \"{}\"\nadmin_listen = \"127.0.0.1:0\"\n{extra}\n\
             [[user]]\nname = \"judge\"\npassword = \"{hash}\"\nrate_up = 200000\n",
            root.display()
        ),
    )
    .unwrap();
    Wharf::start(
        serve()
            .args(["--listen", "127.0.0.1:0", "--config", "wharf.toml"])
            .env_remove("RUST_LOG")
            .current_dir(dir),
        &dir.join("stderr.log"),
    )
}

/// Where CI keeps what a run leaves for people to look at.
fn artifacts() -> std::path::PathBuf {
    let dir = std::env::var_os("WHARF_ARTIFACTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/target/ci-artifacts").into());
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_dashboard_shows_a_live_upload_and_kicks_it_in_a_browser() {
    if !browser() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut wharf = start(dir.path(), "");
    let (ftp, admin) = (wharf.ftp(), wharf.admin());
    let shot = artifacts().join("dashboard.png");
    let out = Command::new("python3")
        .arg(SCRIPT)
        .arg(format!("http://{admin}"))
        .args([
            &ftp.ip().to_string(),
            &ftp.port().to_string(),
            "judge",
            "pw",
        ])
        .arg(&shot)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.lines().last() == Some("ok"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(shot.metadata().unwrap().len() > 10_000, "no screenshot");
    wharf.stop();
}

/// The value of the dashboard cookie a response sets.
fn cookie_in(answer: &str) -> String {
    answer
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .and_then(|l| l.split("wharf_admin=").nth(1))
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("no cookie in {answer}"))
        .to_string()
}

#[test]
fn with_a_token_the_dashboard_needs_a_sign_in_and_csrf_tokens() {
    use crate::processes::http;
    let dir = tempfile::tempdir().unwrap();
    let token = "dashboard-token-0123456789";
    let mut wharf = start(dir.path(), &format!("admin_token = \"{token}\""));
    let admin = wharf.admin();
    let host = format!("Host: {admin}");
    let page = format!("Origin: http://{admin}\r\nSec-Fetch-Site: same-origin");
    // Not signed in: the sign-in form, no cookie, nothing of the server's state.
    let (status, answer) = http(admin, &format!("GET / HTTP/1.1\r\n{host}"), "");
    assert_eq!(status, 200);
    assert!(
        answer.contains("Admin token") && !answer.contains("set-cookie"),
        "{answer}"
    );
    let (status, _) = http(admin, &format!("GET /ui/state HTTP/1.1\r\n{host}"), "");
    assert_eq!(status, 401);
    // A wrong token: refused; the right one: a cookie made for this site only.
    let form = "Content-Type: application/x-www-form-urlencoded";
    let (status, _) = http(
        admin,
        &format!("POST /ui/login HTTP/1.1\r\n{host}\r\n{page}\r\n{form}"),
        "token=wrong",
    );
    assert_eq!(status, 401);
    // Guesses sent at once still come one a second: three take three seconds.
    let started = std::time::Instant::now();
    let guesses: Vec<_> = (0..3)
        .map(|i| {
            let head = format!("POST /ui/login HTTP/1.1\r\n{host}\r\n{page}\r\n{form}");
            std::thread::spawn(move || http(admin, &head, &format!("token=guess{i}")).0)
        })
        .collect();
    for g in guesses {
        assert_eq!(g.join().unwrap(), 401);
    }
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(2900),
        "{:?}",
        started.elapsed()
    );
    let (status, answer) = http(
        admin,
        &format!("POST /ui/login HTTP/1.1\r\n{host}\r\n{page}\r\n{form}"),
        &format!("token={token}"),
    );
    assert_eq!(status, 303, "{answer}");
    assert!(answer.contains("HttpOnly; SameSite=Strict"), "{answer}");
    let cookie = format!("Cookie: wharf_admin={}", cookie_in(&answer));
    // Signed in, from the page: the state, with the CSRF token and never the admin token.
    let (status, state) = http(
        admin,
        &format!("GET /ui/state HTTP/1.1\r\n{host}\r\n{page}\r\n{cookie}"),
        "",
    );
    assert_eq!(status, 200, "{state}");
    assert!(!state.contains(token));
    let body = state.split("\r\n\r\n").nth(1).unwrap();
    let csrf = serde_json::from_str::<serde_json::Value>(body).unwrap()["csrf"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(csrf.len(), 48);
    // A change without the CSRF token, or from another site, is refused.
    let reload = |extra: &str| {
        http(
            admin,
            &format!("POST /reload HTTP/1.1\r\n{host}\r\n{cookie}\r\n{extra}"),
            "",
        )
        .0
    };
    assert_eq!(reload(&page), 403);
    assert_eq!(reload(&format!("{page}\r\nX-CSRF-Token: nope")), 403);
    assert_eq!(
        reload(&format!(
            "Origin: http://evil.example\r\nSec-Fetch-Site: cross-site\r\nX-CSRF-Token: {csrf}"
        )),
        403
    );
    assert_eq!(reload(&format!("{page}\r\nX-CSRF-Token: {csrf}")), 200);
    // The CLI's bearer token goes on working without any of this.
    let (status, _) = http(
        admin,
        &format!("POST /reload HTTP/1.1\r\n{host}\r\nAuthorization: Bearer {token}"),
        "",
    );
    assert_eq!(status, 200);
    // Signed out, the cookie is worth nothing.
    let (status, _) = http(
        admin,
        &format!(
            "POST /ui/logout HTTP/1.1\r\n{host}\r\n{page}\r\n{cookie}\r\nX-CSRF-Token: {csrf}"
        ),
        "",
    );
    assert_eq!(status, 303);
    let (status, _) = http(
        admin,
        &format!("GET /ui/state HTTP/1.1\r\n{host}\r\n{page}\r\n{cookie}"),
        "",
    );
    assert_eq!(status, 403);
    wharf.stop();
}

#[test]
fn without_a_token_only_this_machines_own_page_may_use_it() {
    use crate::processes::http;
    let dir = tempfile::tempdir().unwrap();
    let mut wharf = start(dir.path(), "");
    let admin = wharf.admin();
    let host = format!("Host: {admin}");
    // Typed into the address bar: the page and a cookie, with a policy that runs only
    // wharf's own script and refuses framing.
    let (status, answer) = http(
        admin,
        &format!("GET / HTTP/1.1\r\n{host}\r\nSec-Fetch-Site: none"),
        "",
    );
    assert_eq!(status, 200);
    assert!(answer.contains("script-src 'self'") && answer.contains("frame-ancestors 'none'"));
    let cookie = format!("Cookie: wharf_admin={}", cookie_in(&answer));
    // A link from another site, or a rebinding name, gets nothing.
    let (status, _) = http(
        admin,
        &format!("GET / HTTP/1.1\r\n{host}\r\nSec-Fetch-Site: cross-site"),
        "",
    );
    assert_eq!(status, 403);
    let (status, _) = http(admin, "GET /ui/state HTTP/1.1\r\nHost: evil.example", "");
    assert_eq!(status, 403);
    // The page's own requests need its cookie.
    let page = format!("Origin: http://{admin}\r\nSec-Fetch-Site: same-origin");
    let (status, _) = http(
        admin,
        &format!("GET /ui/state HTTP/1.1\r\n{host}\r\n{page}"),
        "",
    );
    assert_eq!(status, 403);
    let (status, _) = http(
        admin,
        &format!("GET /ui/state HTTP/1.1\r\n{host}\r\n{page}\r\n{cookie}"),
        "",
    );
    assert_eq!(status, 200);
    wharf.stop();
}
