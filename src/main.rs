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
    },
    /// Read a password (no echo on a terminal, or from stdin) and print its argon2id hash.
    HashPassword,
}

#[derive(clap::Args, Default)]
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
    /// A user with full read-write access to the root (repeatable).
    #[arg(long, value_name = "NAME:PASSWORD")]
    user: Vec<String>,
    /// Passive port range.
    #[arg(long, value_name = "LOW-HIGH")]
    passive_ports: Option<PortRange>,
    /// Address announced in PASV replies (for NAT).
    #[arg(long, value_name = "ADDR")]
    public_address: Option<IpAddr>,
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
            config.anonymous = a;
        }
        for spec in self.user {
            let (name, password) = spec
                .split_once(':')
                .ok_or_else(|| format!("--user `{spec}`: expected NAME:PASSWORD"))?;
            config.users.retain(|u| u.name != name);
            config.users.push(UserConfig::new(
                name,
                wharf::auth::hash_password(password.as_bytes()),
            ));
        }
        if let Some(p) = self.passive_ports {
            config.passive_ports = Some(p);
        }
        if let Some(a) = self.public_address {
            config.public_address = Some(a);
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
        if config.tls_dir.is_none()
            && let Some(dir) = self.config.as_deref().and_then(|p| p.parent())
        {
            config.tls_dir = Some(dir.to_path_buf());
        }
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Serve(args) => serve(*args),
        Cmd::CheckConfig { file } => {
            match Config::load(&file).and_then(|c| c.all_users().map(|_| c)) {
                Ok(c) => {
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
    }
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

fn serve(args: ServeArgs) -> ExitCode {
    let pid_file = args.pid_file.clone();
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
        let anonymous = config.anonymous;
        let server = match wharf::Server::bind(config).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("wharf: {e}");
                return ExitCode::FAILURE;
            }
        };
        if let Err(e) = wharf::server::apply_process_settings(server.config()) {
            eprintln!("wharf: {e}");
            return ExitCode::FAILURE;
        }
        if let Some(p) = &pid_file
            && let Err(e) = std::fs::write(p, format!("{}\n", std::process::id()))
        {
            eprintln!("wharf: pid file {}: {e}", p.display());
            return ExitCode::FAILURE;
        }
        let addrs = server.local_addrs();
        let mut shown: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
        shown.extend(server.implicit_addrs().iter().map(|a| format!("{a} (implicit TLS)")));
        let port = addrs.first().map_or(2121, |a| a.port());
        let try_host = match addrs.first().map(|a| a.ip()) {
            Some(IpAddr::V6(ip)) if !ip.is_unspecified() => format!("[{ip}]"),
            Some(IpAddr::V4(ip)) if !ip.is_unspecified() => ip.to_string(),
            _ => "127.0.0.1".to_string(),
        };
        let tls = server
            .tls_fingerprint()
            .map(|fp| format!("; TLS certificate sha256 {fp}"))
            .unwrap_or_default();
        println!(
            "wharf serving {} on {} (anonymous: {anonymous}); try: curl ftp://{try_host}:{port}/{tls}",
            root.display(),
            shown.join(", "),
        );
        let shared = server.shared();
        let usr1_shared = server.shared();
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut usr1) = signal(SignalKind::user_defined1()) else {
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
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                return;
            };
            while hup.recv().await.is_some() {
                wharf::server::notify(&[
                    sd_notify::NotifyState::Reloading,
                    sd_notify::NotifyState::monotonic_usec_now().unwrap_or(sd_notify::NotifyState::Ready),
                ]);
                if let Err(e) = shared.reload_tls() {
                    tracing::error!(error = %e, "TLS reload failed; keeping the old certificate");
                }
                if let Err(e) = shared.reload_users() {
                    tracing::error!(error = %e, "users reload failed; keeping the old users");
                }
                wharf::server::notify(&[sd_notify::NotifyState::Ready]);
            }
        });
        wharf::server::notify(&[sd_notify::NotifyState::Ready]);
        server
            .run(async {
                shutdown_signal().await;
                wharf::server::notify(&[sd_notify::NotifyState::Stopping]);
            })
            .await;
        if let Some(p) = &pid_file {
            let _ = std::fs::remove_file(p);
        }
        ExitCode::SUCCESS
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    // A second SIGINT or SIGTERM during the graceful stop ends the process at once.
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        eprintln!("wharf: stopping at once");
        std::process::exit(130);
    });
}
