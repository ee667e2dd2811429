//! The `wharf` command: CLI glue only. `serve`, `check-config`, `hash-password`.

use std::io::{IsTerminal, Read};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wharf::config::{AnonymousMode, Config, LogFormat, PortRange, TlsMode, UserConfig};

#[derive(Parser)]
#[command(
    name = "wharf",
    version,
    about = "An FTP server that does what it is told."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the server. With no flags: ./ftp on [::]:2121, anonymous read-only.
    Serve(Box<ServeArgs>),
    /// Validate a configuration file and explain what it does.
    CheckConfig {
        /// The TOML file.
        file: PathBuf,
        /// Also check that every S3 storage answers with its credentials.
        #[arg(long)]
        probe: bool,
    },
    /// Read a password (no echo on a terminal, or from stdin) and print its argon2id hash.
    HashPassword,
    /// List the sessions connected now (through the admin endpoint).
    Who(AdminArgs),
    /// End a session, by id or all of a user's.
    Kick {
        #[command(flatten)]
        admin: AdminArgs,
        /// The session id (from `wharf who`).
        id: Option<u64>,
        /// Kick every session of this user instead.
        #[arg(long)]
        user: Option<String>,
    },
    /// List, add or lift bans.
    Ban {
        #[command(flatten)]
        admin: AdminArgs,
        #[command(subcommand)]
        action: BanAction,
    },
    /// Re-read the TLS certificate and the users file; non-zero exit if rejected.
    Reload(AdminArgs),
}

#[derive(Subcommand)]
enum BanAction {
    List,
    Add {
        ip: IpAddr,
        /// Seconds (default: the configured ban_time).
        #[arg(long)]
        seconds: Option<u64>,
    },
    Remove {
        ip: IpAddr,
    },
}

/// How the admin commands find the endpoint.
#[derive(clap::Args)]
struct AdminArgs {
    /// The server's configuration file (admin_socket, admin_listen, admin_token).
    #[arg(
        long,
        value_name = "FILE",
        default_value = "/etc/wharf/wharf.toml",
        global = true
    )]
    config: PathBuf,
    /// The admin endpoint, overriding the config: ADDR:PORT, or the path of its socket.
    #[arg(long, value_name = "ADDR:PORT|PATH", global = true)]
    admin: Option<wharf::admin::Endpoint>,
}

impl AdminArgs {
    fn client(&self) -> Result<wharf::admin::Client, String> {
        let config = if self.config.exists() {
            Config::load(&self.config).map_err(|e| e.to_string())?
        } else {
            Config::default()
        };
        // The socket first: its file mode already decides who may use it.
        let endpoint = self
            .admin
            .clone()
            .or_else(|| config.admin_socket.map(wharf::admin::Endpoint::Unix))
            .or_else(|| config.admin_listen.map(wharf::admin::Endpoint::Tcp))
            .ok_or_else(|| {
                format!(
                    "no admin endpoint: set admin_socket or admin_listen in {} or pass --admin",
                    self.config.display()
                )
            })?;
        Ok(wharf::admin::Client::new(endpoint, config.admin_token))
    }
}

/// Runs one admin call and prints the answer; exit status from the HTTP status.
fn admin_call(args: &AdminArgs, method: &str, path: &str, body: Option<&str>) -> ExitCode {
    let result = args.client().and_then(|c| c.call(method, path, body));
    match result {
        Ok((status, text)) if (200..300).contains(&status) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Ok((status, text)) => {
            eprint!("wharf: {status}: {text}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("wharf: {e}");
            ExitCode::FAILURE
        }
    }
}

fn who(args: &AdminArgs) -> ExitCode {
    let result = args.client().and_then(|c| c.call("GET", "/sessions", None));
    let text = match result {
        Ok((200, text)) => text,
        Ok((status, text)) => {
            eprint!("wharf: {status}: {text}");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("wharf: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Ok(list) = serde_json::from_str::<Vec<wharf::observe::SessionInfo>>(&text) else {
        eprintln!("wharf: unexpected answer: {text}");
        return ExitCode::FAILURE;
    };
    println!(
        "{:>6}  {:<16} {:<39} {:<4} {:>6}  DOING",
        "ID", "USER", "CLIENT", "TLS", "IDLE"
    );
    for s in list {
        let doing = match &s.transfer {
            Some(t) => format!(
                "{} {} ({} bytes, {} B/s)",
                t.direction, t.path, t.bytes, t.bytes_per_second
            ),
            None => s.command.clone(),
        };
        println!(
            "{:>6}  {:<16} {:<39} {:<4} {:>5}s  {}",
            s.id,
            s.user.as_deref().unwrap_or("-"),
            s.client,
            if s.tls { "yes" } else { "no" },
            s.idle_seconds,
            doing
        );
    }
    ExitCode::SUCCESS
}

fn kick(args: &AdminArgs, id: Option<u64>, user: Option<String>) -> ExitCode {
    let ids: Vec<u64> = match (id, user) {
        (Some(id), _) => vec![id],
        (None, Some(user)) => {
            let Ok((200, text)) = args.client().and_then(|c| c.call("GET", "/sessions", None))
            else {
                eprintln!("wharf: cannot list sessions");
                return ExitCode::FAILURE;
            };
            serde_json::from_str::<Vec<wharf::observe::SessionInfo>>(&text)
                .unwrap_or_default()
                .into_iter()
                .filter(|s| s.user.as_deref() == Some(user.as_str()))
                .map(|s| s.id)
                .collect()
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

#[derive(clap::Args, Default, Clone)]
struct ServeArgs {
    /// Configuration file (TOML); flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on (repeatable), e.g. 127.0.0.1:2121 or [::1]:2121.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Vec<SocketAddr>,
    /// Directory to serve.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Anonymous access: off, read, upload (drop box) or write.
    #[arg(long, value_name = "MODE")]
    anonymous: Option<AnonymousMode>,
    /// A user with full read-write access to the root (repeatable). The password comes
    /// from the environment variable WHARF_PASSWORD_<NAME> (NAME upper-cased, other
    /// characters than letters and digits as `_`), or from the first line of FILE with
    /// NAME:@FILE. NAME:PASSWORD also works, but local users can read it (ps).
    #[arg(long, value_name = "NAME[:@FILE]")]
    user: Vec<String>,
    /// Passive port range.
    #[arg(long, value_name = "LOW-HIGH")]
    passive_ports: Option<PortRange>,
    /// Address announced in PASV replies (for NAT).
    #[arg(long, value_name = "ADDR")]
    public_address: Option<wharf::config::HostAddr>,
    /// Log format: text or json.
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
    /// Offer FTPS: `auto` (a self-signed certificate, generated once) or `CERT.pem,KEY.pem`.
    #[arg(long, value_name = "auto|CERT,KEY")]
    tls: Option<String>,
    /// Require TLS on the control connection (implies --tls auto unless --tls is given).
    #[arg(long)]
    tls_required: bool,
    /// Implicit FTPS listener, TLS from the first byte (repeatable), e.g. [::]:990.
    #[arg(long, value_name = "ADDR:PORT")]
    implicit_listen: Vec<SocketAddr>,
    /// Transfer log in the xferlog format.
    #[arg(long, value_name = "FILE")]
    xferlog: Option<PathBuf>,
    /// Event log file instead of stderr.
    #[arg(long, value_name = "FILE")]
    log_file: Option<PathBuf>,
    /// Write the process id here once listening (removed at exit).
    #[arg(long, value_name = "FILE")]
    pid_file: Option<PathBuf>,
}

impl ServeArgs {
    fn config(self) -> Result<Config, String> {
        let mut config = match &self.config {
            Some(path) => Config::load(path).map_err(|e| e.to_string())?,
            None => Config::default(),
        };
        if !self.listen.is_empty() {
            config.listen = self.listen;
        }
        if let Some(root) = self.root {
            config.root = root;
        }
        if let Some(a) = self.anonymous {
            config.anonymous = Some(a);
        }
        for spec in &self.user {
            let (name, password) = user_password(spec, |var| std::env::var_os(var))?;
            config.users.retain(|u| u.name != name);
            config.users.push(UserConfig::new(
                &name,
                wharf::auth::hash_password(password.as_bytes()),
            ));
        }
        if let Some(p) = self.passive_ports {
            config.passive_ports = Some(p);
        }
        if let Some(a) = &self.public_address {
            config.public_address = Some(a.clone());
        }
        if let Some(f) = self.log_format {
            config.log_format = f;
        }
        if let Some(tls) = &self.tls {
            if tls != "auto" {
                let (cert, key) = tls
                    .split_once(',')
                    .ok_or_else(|| format!("--tls `{tls}`: expected auto or CERT.pem,KEY.pem"))?;
                config.tls_cert = Some(cert.into());
                config.tls_key = Some(key.into());
            }
            if config.tls == TlsMode::Off {
                config.tls = TlsMode::Optional;
            }
        }
        if self.tls_required {
            config.tls = TlsMode::Required;
        }
        if !self.implicit_listen.is_empty() {
            config.implicit_listen = self.implicit_listen;
        }
        if let Some(x) = self.xferlog {
            config.xferlog = Some(x);
        }
        if let Some(l) = self.log_file {
            config.log_file = Some(l);
        }
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }
}

/// The environment variable `--user NAME` takes its password from: `WHARF_PASSWORD_` and
/// NAME upper-cased, every character but an ASCII letter or digit as `_` (a variable name
/// the shell can set).
fn password_var(name: &str) -> String {
    let tail: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("WHARF_PASSWORD_{tail}")
}

/// A `--user` flag as (name, password): `NAME` takes the password from the environment
/// (`env` looks a variable up), `NAME:@FILE` from the first line of FILE, and `NAME:PASSWORD`
/// as it is (see [`inline_passwords`]).
fn user_password(
    spec: &str,
    env: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Result<(String, String), String> {
    let (name, password) = match spec.split_once(':') {
        None => {
            let var = password_var(spec);
            let value = env(&var).ok_or_else(|| {
                format!("--user {spec}: set {var} to the password, or use --user {spec}:@FILE")
            })?;
            let value = value
                .into_string()
                .map_err(|_| format!("--user {spec}: {var} is not UTF-8"))?;
            if value.is_empty() {
                return Err(format!("--user {spec}: {var} is empty"));
            }
            (spec, value)
        }
        Some((name, rest)) => match rest.strip_prefix('@') {
            Some(file) => (name, password_file(name, file)?),
            None => (name, rest.to_string()),
        },
    };
    if name.is_empty() {
        return Err(format!("--user `{spec}`: the user name is empty"));
    }
    Ok((name.to_string(), password))
}

/// The first line of `--user NAME:@FILE`'s file, without its line end.
fn password_file(name: &str, file: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("--user {name}: cannot read the password file {file}: {e}"))?;
    // `lines` drops a CRLF as well as an LF.
    match text.lines().next() {
        Some(first) if !first.is_empty() => Ok(first.to_string()),
        _ => Err(format!(
            "--user {name}: the first line of the password file {file} is empty"
        )),
    }
}

/// The users of `--user NAME:PASSWORD` flags, whose password any local user can read in the
/// process's command line.
fn inline_passwords(specs: &[String]) -> Vec<&str> {
    specs
        .iter()
        .filter_map(|s| s.split_once(':'))
        .filter(|(_, p)| !p.starts_with('@'))
        .map(|(name, _)| name)
        .collect()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Serve(args) => serve(*args),
        Cmd::CheckConfig { file, probe } => {
            match Config::load(&file)
                .and_then(|c| wharf::secrets::check(&c, &c.all_users()?).map(|()| c))
            {
                Ok(c) => {
                    if probe && let Err(e) = probe_stores(&c) {
                        eprintln!("{}: {e}", file.display());
                        return ExitCode::FAILURE;
                    }
                    for w in c.warnings() {
                        eprintln!("{}: warning: {w}", file.display());
                    }
                    print!("{}: ok\n{}", file.display(), c.explain());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::HashPassword => hash_password(),
        Cmd::Who(args) => who(&args),
        Cmd::Kick { admin, id, user } => kick(&admin, id, user),
        Cmd::Ban { admin, action } => match action {
            BanAction::List => admin_call(&admin, "GET", "/bans", None),
            BanAction::Add { ip, seconds } => {
                let body = match seconds {
                    Some(s) => format!("{{\"ip\":\"{ip}\",\"seconds\":{s}}}"),
                    None => format!("{{\"ip\":\"{ip}\"}}"),
                };
                admin_call(&admin, "POST", "/bans", Some(&body))
            }
            BanAction::Remove { ip } => admin_call(&admin, "DELETE", &format!("/bans/{ip}"), None),
        },
        Cmd::Reload(args) => admin_call(&args, "POST", "/reload", None),
    }
}

/// Builds every S3 storage of `c` and asks each for one key.
fn probe_stores(c: &Config) -> Result<(), String> {
    let stores = wharf::shared::build_stores(c)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        for (name, store) in &stores {
            store
                .probe()
                .await
                .map_err(|e| format!("storage `{name}` ({}): {e}", store.location))?;
        }
        Ok(())
    })
}

fn hash_password() -> ExitCode {
    let password = if std::io::stdin().is_terminal() {
        match rpassword::prompt_password("Password: ") {
            Ok(p) => p,
            Err(e) => {
                eprintln!("cannot read the password: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        let mut s = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut s) {
            eprintln!("cannot read the password: {e}");
            return ExitCode::FAILURE;
        }
        s.trim_end_matches(['\r', '\n']).to_string()
    };
    if password.is_empty() {
        eprintln!("empty password");
        return ExitCode::FAILURE;
    }
    println!("{}", wharf::auth::hash_password(password.as_bytes()));
    ExitCode::SUCCESS
}

/// Large buffers (transfer buffers, S3 parts) always come from mmap and go back to the
/// system when freed. glibc otherwise raises its mmap threshold after the first such free
/// and serves later ones from per-thread heaps, where they stay: measured, 1 GiB S3
/// uploads took the resident size from 80 MB to 360 MB.
fn fixed_mmap_threshold() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes allocator tuning (thread-safe); called once at start.
    unsafe {
        nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    fixed_mmap_threshold();
    let pid_file = args.pid_file.clone();
    let reload_args = args.clone();
    let config = match args.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wharf: {e}");
            return ExitCode::FAILURE;
        }
    };
    let log_file = match &config.log_file {
        Some(path) => match wharf::observe::LogFile::open(path) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("wharf: log file {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    wharf::observe::init(config.log_format, log_file.clone());
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    for name in inline_passwords(&reload_args.user) {
        tracing::info!(
            "the password of --user {name} is visible to local users in the command line; set {} or use --user {name}:@FILE instead",
            password_var(name)
        );
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wharf: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        if let Err(e) = std::fs::create_dir_all(&config.root) {
            eprintln!("wharf: cannot create {}: {e}", config.root.display());
            return ExitCode::FAILURE;
        }
        let root = std::fs::canonicalize(&config.root).unwrap_or(config.root.clone());
        let anonymous = config.anonymous_mode();
        let server = match wharf::Server::bind(config).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("wharf: {e}");
                return ExitCode::FAILURE;
            }
        };
        if let Err(e) = wharf::server::apply_process_settings(&server.config()) {
            eprintln!("wharf: {e}");
            return ExitCode::FAILURE;
        }
        if let Some(p) = &pid_file
            && let Err(e) = std::fs::write(p, format!("{}\n", std::process::id()))
        {
            eprintln!("wharf: pid file {}: {e}", p.display());
            return ExitCode::FAILURE;
        }
        // Signal handlers exist before anyone learns where we listen, so no early signal
        // takes its default action (ending the process).
        use tokio::signal::unix::{SignalKind, signal};
        let usr1 = signal(SignalKind::user_defined1()).ok();
        let hup = signal(SignalKind::hangup()).ok();
        let term = signal(SignalKind::terminate())
            .ok()
            .zip(signal(SignalKind::interrupt()).ok());
        println!("{}", start_line(&server, &root, anonymous));
        let shared = server.shared();
        // A reload re-reads the config file and applies the same flags again.
        shared.set_reloader(Box::new(move || reload_args.clone().config()));
        spawn_signal_handlers(server.shared(), usr1, hup, log_file);
        wharf::server::notify(&[sd_notify::NotifyState::Ready]);
        server
            .run(async {
                shutdown_signal(term).await;
                wharf::server::notify(&[sd_notify::NotifyState::Stopping]);
            })
            .await;
        if let Some(p) = &pid_file {
            let _ = std::fs::remove_file(p);
        }
        ExitCode::SUCCESS
    })
}

/// The line `serve` prints once it listens: what, where, and a command to try.
fn start_line(server: &wharf::Server, root: &std::path::Path, anonymous: AnonymousMode) -> String {
    let addrs = server.local_addrs();
    let mut shown: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    shown.extend(
        server
            .implicit_addrs()
            .iter()
            .map(|a| format!("{a} (implicit TLS)")),
    );
    let mut extra = server
        .tls_fingerprint()
        .map(|fp| format!("; TLS certificate sha256 {fp}"))
        .unwrap_or_default();
    if let Some(path) = &server.config().admin_socket {
        extra.push_str(&format!("; admin unix:{}", path.display()));
    }
    if let Some(admin) = server.admin_addr() {
        extra.push_str(&format!("; admin http://{admin}"));
    }
    format!(
        "wharf serving {} on {} (anonymous: {anonymous}); try: {}{extra}",
        root.display(),
        shown.join(", "),
        try_command(server, anonymous),
    )
}

/// A curl command that succeeds against the server as started: an upload for the drop
/// box, a listing otherwise; a configured user's name when anonymous is off; TLS as the
/// policy requires (`-k` for a generated certificate).
fn try_command(server: &wharf::Server, anonymous: AnonymousMode) -> String {
    let config = server.config();
    let host = |a: &std::net::SocketAddr| match a.ip() {
        IpAddr::V6(ip) if !ip.is_unspecified() => format!("[{ip}]:{}", a.port()),
        IpAddr::V4(ip) if !ip.is_unspecified() => format!("{ip}:{}", a.port()),
        _ => format!("127.0.0.1:{}", a.port()),
    };
    let explicit = server.local_addrs();
    let implicit = server.implicit_addrs();
    let generated = config.tls_cert.is_none();
    let insecure = if generated { " -k" } else { "" };
    let tls_needed = (config.tls == TlsMode::Required
        || config.tls_data == wharf::config::TlsData::Required)
        && !(config.tls_exempt_anonymous && anonymous != AnonymousMode::Off);
    let (scheme, tls, at) = match (explicit.first(), implicit.first()) {
        (Some(a), _) if tls_needed => ("ftp", format!(" --ssl-reqd{insecure}"), host(a)),
        (Some(a), _) => ("ftp", String::new(), host(a)),
        (None, Some(a)) => ("ftps", insecure.to_string(), host(a)),
        (None, None) => ("ftp", String::new(), "127.0.0.1:2121".into()),
    };
    let who = match (anonymous, config.users.first()) {
        (AnonymousMode::Off, Some(u)) => format!(" -u {}", u.name),
        (AnonymousMode::Off, None) => " -u USER".to_string(),
        _ => String::new(),
    };
    match anonymous {
        AnonymousMode::Upload => format!("curl{tls}{who} -T FILE {scheme}://{at}/"),
        _ => format!("curl{tls}{who} {scheme}://{at}/"),
    }
}

/// SIGUSR1 reopens the log files; SIGHUP reloads (telling systemd while it does).
fn spawn_signal_handlers(
    shared: std::sync::Arc<wharf::shared::Shared>,
    usr1: Option<tokio::signal::unix::Signal>,
    hup: Option<tokio::signal::unix::Signal>,
    log_file: Option<wharf::observe::LogFile>,
) {
    let usr1_shared = shared.clone();
    tokio::spawn(async move {
        let Some(mut usr1) = usr1 else {
            return;
        };
        while usr1.recv().await.is_some() {
            if let Some(f) = &log_file
                && let Err(e) = f.reopen()
            {
                tracing::error!(error = %e, "cannot reopen the log file");
            }
            usr1_shared.reopen_logs();
            tracing::info!("log files reopened");
        }
    });
    tokio::spawn(async move {
        let Some(mut hup) = hup else {
            return;
        };
        while hup.recv().await.is_some() {
            wharf::server::notify(&[
                sd_notify::NotifyState::Reloading,
                sd_notify::NotifyState::monotonic_usec_now()
                    .unwrap_or(sd_notify::NotifyState::Ready),
            ]);
            // Certificates, password hashes and files: off the async workers.
            let s = shared.clone();
            let _ = tokio::task::spawn_blocking(move || s.reload()).await;
            wharf::server::notify(&[sd_notify::NotifyState::Ready]);
        }
    });
}

async fn shutdown_signal(
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
) {
    let Some((mut term, mut int)) = signals else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    // A second SIGINT or SIGTERM during the graceful stop ends the process at once.
    tokio::spawn(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        eprintln!("wharf: stopping at once");
        std::process::exit(130);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_variable_names() {
        assert_eq!(password_var("judge"), "WHARF_PASSWORD_JUDGE");
        assert_eq!(password_var("scan-bot.2"), "WHARF_PASSWORD_SCAN_BOT_2");
        assert_eq!(password_var("é"), "WHARF_PASSWORD__");
    }

    #[test]
    fn user_passwords_from_the_environment_a_file_or_the_flag() {
        let env = |var: &str| (var == "WHARF_PASSWORD_SCAN_BOT").then(|| "s3cret".into());
        assert_eq!(
            user_password("scan-bot", env),
            Ok(("scan-bot".into(), "s3cret".into()))
        );
        let err = user_password("judge", env).unwrap_err();
        assert!(
            err.contains("WHARF_PASSWORD_JUDGE") && err.contains("judge:@FILE"),
            "{err}"
        );
        let empty = |_: &str| Some("".into());
        assert!(user_password("judge", empty).unwrap_err().contains("empty"));

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from file\r\nsecond line\n").unwrap();
        let spec = format!("judge:@{}", file.display());
        assert_eq!(
            user_password(&spec, env),
            Ok(("judge".into(), "from file".into()))
        );
        std::fs::write(&file, "\n").unwrap();
        assert!(user_password(&spec, env).unwrap_err().contains("empty"));
        let missing = dir.path().join("missing");
        let err = user_password(&format!("judge:@{}", missing.display()), env).unwrap_err();
        assert!(err.contains(&missing.display().to_string()), "{err}");

        assert_eq!(
            user_password("judge:pw:with:colons", env),
            Ok(("judge".into(), "pw:with:colons".into()))
        );
        assert!(user_password(":pw", env).is_err());
        assert_eq!(
            inline_passwords(&["a:pw".into(), "b:@f".into(), "c".into()]),
            ["a"]
        );
    }
}
