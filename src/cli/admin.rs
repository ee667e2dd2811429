//! The admin commands (`who`, `kick`, `ban`, `reload`): they reach a running server's
//! admin endpoint through `wharf::admin::Client`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use wharf::config::Config;

#[derive(Subcommand)]
pub enum BanAction {
    /// List the addresses banned now and the time each has left.
    List {
        /// JSON, for scripts, instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Ban an address now (its open sessions end; on a cluster, on every node).
    Add {
        /// The client address.
        ip: IpAddr,
        /// Seconds (default: the configured ban_time).
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// Lift the ban of an address.
    Remove {
        /// The client address.
        ip: IpAddr,
    },
}

/// How the admin commands find the endpoint.
#[derive(clap::Args)]
pub struct AdminArgs {
    /// The server's configuration file (admin_socket, admin_listen, admin_token). Default:
    /// /etc/wharf/wharf.toml when it exists, as for `serve`.
    #[arg(long, value_name = "FILE", env = "WHARF_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// The admin endpoint, overriding the config: ADDR:PORT, or the path of its socket.
    #[arg(long, value_name = "ADDR:PORT|PATH", global = true)]
    admin: Option<wharf::admin::Endpoint>,
}

impl AdminArgs {
    fn client(&self) -> Result<wharf::admin::Client, String> {
        let path = super::config_path(self.config.clone(), super::DEFAULT_CONFIG.as_ref());
        let config = match &path {
            Some(path) => Config::load(path).map_err(|e| e.to_string())?,
            None => Config::default(),
        };
        // The socket first: its file mode already decides who may use it.
        let endpoint = self
            .admin
            .clone()
            .or_else(|| config.admin_socket.map(wharf::admin::Endpoint::Unix))
            .or_else(|| config.admin_listen.map(wharf::admin::Endpoint::Tcp))
            .ok_or_else(|| {
                let file = path.as_deref().unwrap_or(super::DEFAULT_CONFIG.as_ref());
                format!(
                    "no admin endpoint: set admin_socket or admin_listen in {} or pass --admin",
                    file.display()
                )
            })?;
        Ok(wharf::admin::Client::new(endpoint, config.admin_token))
    }
}

/// Runs one admin call and prints the answer; exit status from the HTTP status.
pub fn admin_call(args: &AdminArgs, method: &str, path: &str, body: Option<&str>) -> ExitCode {
    let result = args.client().and_then(|c| c.call(method, path, body));
    match result {
        Ok((status, text)) if (200..300).contains(&status) => {
            if !text.trim().is_empty() {
                println!("{}", text.trim_end());
            }
            ExitCode::SUCCESS
        }
        Ok((status, text)) => {
            eprintln!("wharf: {status}: {}", text.trim_end());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("wharf: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The sessions the endpoint lists now.
fn sessions(args: &AdminArgs) -> Result<Vec<wharf::observe::SessionInfo>, String> {
    get_json(args, "/sessions")
}

/// GETs the list at `path`; with `--json` prints it as it came. `Err` is the exit code
/// when nothing is left to do (printed, or the error told).
fn list_or_json<T>(args: &AdminArgs, path: &str, json: bool) -> Result<Vec<T>, ExitCode>
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    let list: Vec<T> = get_json(args, path).map_err(|e| {
        eprintln!("wharf: {e}");
        ExitCode::FAILURE
    })?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        );
        return Err(ExitCode::SUCCESS);
    }
    Ok(list)
}

/// GETs `path` from the endpoint and reads its JSON answer.
fn get_json<T: serde::de::DeserializeOwned>(args: &AdminArgs, path: &str) -> Result<T, String> {
    match args.client()?.call("GET", path, None)? {
        (200, text) => {
            serde_json::from_str(&text).map_err(|_| format!("unexpected answer: {text}"))
        }
        (status, text) => Err(format!("{status}: {}", text.trim_end())),
    }
}

/// Bytes as a person reads them (powers of 1024, one decimal).
fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

pub fn who(args: &AdminArgs, json: bool) -> ExitCode {
    let list: Vec<wharf::observe::SessionInfo> = match list_or_json(args, "/sessions", json) {
        Ok(l) => l,
        Err(code) => return code,
    };
    println!(
        "{:>6}  {:<16} {:<39} {:<4} {:>6}  DOING",
        "ID", "USER", "CLIENT", "TLS", "IDLE"
    );
    for s in list {
        let doing = match &s.transfer {
            Some(t) => format!(
                "{} {} ({}, {}/s)",
                t.direction,
                t.path,
                human(t.bytes),
                human(t.bytes_per_second)
            ),
            None => s.command.clone(),
        };
        // A virtual host's user is shown as user@host.
        let user = match (&s.user, &s.host) {
            (Some(u), Some(h)) => format!("{u}@{h}"),
            (Some(u), None) => u.clone(),
            (None, _) => "-".into(),
        };
        println!(
            "{:>6}  {:<16} {:<39} {:<4} {:>5}s  {}",
            s.id,
            user,
            s.client,
            if s.tls { "yes" } else { "no" },
            s.idle_seconds,
            doing
        );
    }
    ExitCode::SUCCESS
}

pub fn kick(args: &AdminArgs, id: Option<u64>, user: Option<String>) -> ExitCode {
    let ids: Vec<u64> = match (id, user) {
        (Some(id), _) => vec![id],
        (None, Some(user)) => {
            let list = match sessions(args) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("wharf: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let ids: Vec<u64> = list
                .into_iter()
                .filter(|s| s.user.as_deref() == Some(user.as_str()))
                .map(|s| s.id)
                .collect();
            if ids.is_empty() {
                eprintln!("wharf: no session of user {user}");
                return ExitCode::FAILURE;
            }
            ids
        }
        (None, None) => {
            eprintln!("wharf: kick needs a session id or --user NAME");
            return ExitCode::FAILURE;
        }
    };
    let mut code = ExitCode::SUCCESS;
    for id in ids {
        if admin_call(args, "POST", &format!("/sessions/{id}/kick"), None) != ExitCode::SUCCESS {
            code = ExitCode::FAILURE;
        }
    }
    code
}

/// `wharf ban list`: a table, or the endpoint's JSON.
pub fn ban_list(args: &AdminArgs, json: bool) -> ExitCode {
    let bans: Vec<wharf::admin::BanInfo> = match list_or_json(args, "/bans", json) {
        Ok(b) => b,
        Err(code) => return code,
    };
    if bans.is_empty() {
        println!("no address is banned");
        return ExitCode::SUCCESS;
    }
    println!("{:<39}  LEFT", "ADDRESS");
    for b in bans {
        println!("{:<39}  {}s", b.ip.to_string(), b.seconds_left);
    }
    ExitCode::SUCCESS
}

/// `wharf quota [USER]`: usage and limits, a table or the endpoint's JSON.
pub fn quota(args: &AdminArgs, user: Option<&str>, json: bool) -> ExitCode {
    let path = match user {
        Some(u) => format!("/quota/{}", percent_encode(u)),
        None => "/quota".into(),
    };
    let list: Vec<wharf::admin::QuotaInfo> = match list_or_json(args, &path, json) {
        Ok(l) => l,
        Err(code) => return code,
    };
    if list.is_empty() {
        println!("no login has a quota");
        return ExitCode::SUCCESS;
    }
    let of = |n: Option<u64>, limit: Option<u64>, size: bool| {
        let show = |v: u64| if size { human(v) } else { v.to_string() };
        let n = n.map_or("?".into(), show);
        match limit {
            Some(l) => format!("{n} / {}", show(l)),
            None => format!("{n} / -"),
        }
    };
    println!("{:<24}  {:<24}  FILES", "USER", "BYTES");
    for q in &list {
        let who = match &q.host {
            Some(h) => format!("{}@{h}", q.user),
            None => q.user.clone(),
        };
        println!(
            "{:<24}  {:<24}  {}",
            who,
            of(q.bytes, q.quota_bytes, true),
            of(q.files, q.quota_files, false)
        );
        if let Some(e) = &q.error {
            eprintln!("wharf: {}: cannot count: {e}", q.user);
        }
    }
    ExitCode::SUCCESS
}

/// A user name as a query value.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
