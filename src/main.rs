//! The `wharf` command: CLI glue only. `serve`, `check-config`, `hash-password`.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wharf::config::Config;

mod cli;

// See Cargo.toml: the static (musl) build's allocator.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use cli::admin::{AdminArgs, BanAction, admin_call, ban_list, kick, quota, who};
use cli::serve::{ServeArgs, serve};

#[derive(Parser)]
#[command(
    name = "wharf",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("WHARF_COMMIT"), ")"),
    about = "An FTP server that does what it is told."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the server. With no flags and no /etc/wharf/wharf.toml: ./ftp on [::]:2121,
    /// anonymous read-only.
    Serve(Box<ServeArgs>),
    /// Validate a configuration file and explain what it does.
    CheckConfig {
        /// The TOML file (default: /etc/wharf/wharf.toml, the file `serve` reads).
        #[arg(env = "WHARF_CONFIG")]
        file: Option<PathBuf>,
        /// Also check that every S3 storage answers with its credentials.
        #[arg(long)]
        probe: bool,
    },
    /// Read a password (no echo on a terminal, or from stdin) and print its argon2id hash.
    HashPassword,
    /// List the sessions connected now (through the admin endpoint).
    Who {
        #[command(flatten)]
        admin: AdminArgs,
        /// JSON, for scripts, instead of a table.
        #[arg(long)]
        json: bool,
    },
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
    /// Show quota usage and limits: of every login with a quota, or of USER.
    Quota {
        #[command(flatten)]
        admin: AdminArgs,
        /// One user (also one without a quota).
        user: Option<String>,
        /// JSON, for scripts, instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List, add or lift bans.
    Ban {
        #[command(flatten)]
        admin: AdminArgs,
        #[command(subcommand)]
        action: BanAction,
    },
    /// Print a shell completion script: `wharf completions bash > /etc/bash_completion.d/wharf`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `wharf man > /usr/share/man/man1/wharf.1`.
    Man,
    /// Reload the running server: its configuration file and flags as at start, the users
    /// file, the certificate, the storages and the listeners, all or nothing (sessions stay
    /// connected). Non-zero exit, with the reason, if the new settings are rejected.
    Reload(AdminArgs),
}

fn main() -> ExitCode {
    // Library errors (opendal's among them) capture a backtrace whenever RUST_BACKTRACE is
    // set: costly on every storage timeout, and it grows memory. Panics keep theirs;
    // RUST_LIB_BACKTRACE set by the operator wins.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: first thing in main, before any other thread exists.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
    let cli = Cli::parse();
    match cli.command {
        Cmd::Serve(args) => serve(*args),
        Cmd::CheckConfig { file, probe } => {
            let file = file.unwrap_or_else(|| cli::DEFAULT_CONFIG.into());
            let checked = Config::load(&file)
                .map_err(|e| e.to_string())
                .and_then(|c| wharf::shared::preflight(&c).map(|_| c));
            match checked {
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
                    // Problems found after parsing point at the line that set them.
                    let text = std::fs::read_to_string(&file).unwrap_or_default();
                    let name = file.display().to_string();
                    for line in e.lines() {
                        match wharf::config::locate(&text, line) {
                            _ if line.starts_with(&name) => eprintln!("{line}"),
                            Some((l, c)) => eprintln!("{name}:{l}:{c}: {line}"),
                            None => eprintln!("{name}: {line}"),
                        }
                    }
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::HashPassword => hash_password(),
        Cmd::Who { admin, json } => who(&admin, json),
        Cmd::Kick { admin, id, user } => kick(&admin, id, user),
        Cmd::Quota { admin, user, json } => quota(&admin, user.as_deref(), json),
        Cmd::Ban { admin, action } => match action {
            BanAction::List { json } => ban_list(&admin, json),
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
        Cmd::Completions { shell } => {
            use clap::CommandFactory;
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "wharf", &mut out);
            print_bytes(&out)
        }
        Cmd::Man => {
            use clap::CommandFactory;
            let mut out = Vec::new();
            match clap_mangen::Man::new(Cli::command()).render(&mut out) {
                Ok(()) => print_bytes(&out),
                Err(e) => {
                    eprintln!("wharf: {e}");
                    ExitCode::FAILURE
                }
            }
        }
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

/// Writes generated text to stdout; a reader that closed early (`| head`) is no error.
fn print_bytes(bytes: &[u8]) -> ExitCode {
    use std::io::Write;
    match std::io::stdout().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("wharf: {e}");
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    }
}

fn hash_password() -> ExitCode {
    let password = if std::io::stdin().is_terminal() {
        // Asked twice: a typo would otherwise lock the user out with no sign why.
        let ask = |prompt: &str| rpassword::prompt_password(prompt);
        match (ask("Password: "), ask("Again: ")) {
            (Ok(p), Ok(again)) if p == again => p,
            (Ok(_), Ok(_)) => {
                eprintln!("the passwords differ; nothing printed");
                return ExitCode::FAILURE;
            }
            (Err(e), _) | (_, Err(e)) => {
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
