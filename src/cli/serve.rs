//! `wharf serve`: flags over the configuration file, passwords of `--user`, the start-up
//! line and its hint, signals, and the run itself.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use wharf::config::{AnonymousMode, Config, LogFormat, PortRange, TlsMode, UserConfig};

#[derive(clap::Args, Default, Clone)]
pub struct ServeArgs {
    /// Configuration file (TOML); flags override it. Default: /etc/wharf/wharf.toml when it
    /// exists (the file every subcommand reads), else the embedded default.
    #[arg(long, value_name = "FILE", env = "WHARF_CONFIG")]
    config: Option<PathBuf>,
    /// Read no configuration file (neither WHARF_CONFIG nor /etc/wharf/wharf.toml): the
    /// embedded default and the flags only.
    #[arg(long)]
    no_config: bool,
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
    /// The admin HTTP endpoint (health, metrics, sessions, bans, reload), e.g.
    /// 127.0.0.1:9021; a non-loopback address needs admin_token in the config file.
    #[arg(long, value_name = "ADDR:PORT")]
    admin_listen: Option<SocketAddr>,
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
        if let Some(a) = self.admin_listen {
            config.admin_listen = Some(a);
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

pub fn serve(mut args: ServeArgs) -> ExitCode {
    fixed_mmap_threshold();
    // Resolved once: a reload re-reads the same file.
    args.config = match args.no_config {
        true => None,
        false => super::config_path(args.config.take(), super::DEFAULT_CONFIG.as_ref()),
    };
    let pid_file = args.pid_file.clone();
    // A root named on the command line is made if missing (the one-command drop box);
    // roots in a configuration file must exist.
    let made_root = args.root.clone();
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
    // Held to the end of serve: its drop writes out the lines still queued.
    let _log = wharf::observe::init(config.log_format, log_file.clone());
    log_start(&config, reload_args.config.as_deref());
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
        // The embedded default's ./ftp and a `--root` are the folders wharf makes; a root
        // in a file that is missing is a typo until the operator says otherwise.
        if (config.root == Config::default().root || made_root.as_ref() == Some(&config.root))
            && let Err(e) = std::fs::create_dir_all(&config.root)
        {
            eprintln!("wharf: cannot create {}: {e}", config.root.display());
            return ExitCode::FAILURE;
        }
        let root = std::fs::canonicalize(&config.root).unwrap_or(config.root.clone());
        let anonymous = config.anonymous_mode();
        let server = match wharf::Server::bind(config).await {
            Ok(s) => s,
            Err(e) => {
                for line in e.to_string().lines() {
                    eprintln!("wharf: {line}");
                }
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

/// The first line of every log: what runs, from which commit, serving what, how.
fn log_start(config: &Config, file: Option<&std::path::Path>) {
    let listen: Vec<String> = config
        .all_listeners()
        .iter()
        .map(|l| l.address.to_string())
        .collect();
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        commit = env!("WHARF_COMMIT"),
        config = %file.map_or("embedded default".into(), |p| p.display().to_string()),
        listen = %listen.join(","),
        root = %config.root.display(),
        anonymous = %config.anonymous_mode(),
        tls = ?config.tls,
        users = config.users.len(),
        "wharf starting"
    );
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
