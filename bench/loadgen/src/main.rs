//! wharf-loadgen: the benchmark's client. Raw FTP (and explicit FTPS with rustls) over TCP,
//! on tokio, cheap enough that the server is what gets measured. Each run prints one JSON
//! line of results on stdout (with the client's own CPU seconds, to show it is not the
//! bottleneck); progress and the `idle` ready event go to stderr.

mod ftp;
mod idle;
mod logins;
mod s3;
mod stats;
mod tls;
mod transfer;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use crate::ftp::Target;

/// Load generator for the wharf benchmark: FTP/FTPS logins, small files, idle sessions,
/// listings and single-stream transfers. Prints one JSON line of results.
#[derive(Parser)]
#[command(name = "wharf-loadgen", version)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Args)]
struct Common {
    /// Server control address.
    #[arg(long, global = true, default_value = "127.0.0.1:2121")]
    addr: SocketAddr,
    /// Login name.
    #[arg(long, global = true, default_value = "anonymous")]
    user: String,
    /// Password.
    #[arg(long, global = true, default_value = "bench@example.com")]
    pass: String,
    /// Explicit FTPS: AUTH TLS on the control connection, PROT P for data.
    #[arg(long, global = true)]
    tls: bool,
    /// The server's certificate (PEM); the only one accepted. Needed with --tls.
    #[arg(long, global = true)]
    cert: Option<PathBuf>,
    /// EPSV instead of PASV for data connections.
    #[arg(long, global = true)]
    epsv: bool,
    /// Bound in seconds on each single wait: connect, reply, handshake.
    #[arg(long, global = true, default_value_t = 30.0)]
    op_timeout: f64,
    /// Runtime worker threads (1 = single-threaded).
    #[arg(long, global = true, default_value_t = 2)]
    threads: usize,
}

#[derive(Subcommand)]
enum Mode {
    /// N concurrent clients looping connect + login + QUIT for a while: logins/s, p50/p99.
    Logins {
        #[arg(long, default_value_t = 100)]
        concurrency: usize,
        /// Seconds to run.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Let TLS logins resume earlier sessions (default: every handshake is full).
        #[arg(long)]
        tls_resume: bool,
    },
    /// S sessions each downloading a small file K times, a new passive connection each.
    Smallfiles {
        #[arg(long, default_value_t = 200)]
        sessions: usize,
        #[arg(long, default_value_t = 20)]
        files: usize,
        #[arg(long, default_value = "small.bin")]
        path: String,
    },
    /// Hold N logged-in idle sessions; report when all are up; quit them on SIGTERM or later.
    Idle {
        #[arg(long, default_value_t = 1000)]
        sessions: usize,
        /// Sessions allowed to be connecting and logging in at once.
        #[arg(long, default_value_t = 200)]
        connect_concurrency: usize,
        /// Seconds to hold the sessions once up (SIGTERM/SIGINT ends the hold earlier).
        #[arg(long, default_value_t = 30.0)]
        hold: f64,
        /// Seconds allowed for bringing the sessions up.
        #[arg(long, default_value_t = 300.0)]
        setup_timeout: f64,
        /// File written (atomically) with the ready event once the set-up phase ends.
        #[arg(long)]
        ready_file: Option<PathBuf>,
    },
    /// Time LIST of a directory.
    List {
        #[arg(long, default_value = "many")]
        path: String,
        #[arg(long, default_value_t = 1)]
        count: usize,
    },
    /// Download a file over one data connection: MB/s (10^6 B/s).
    Retr {
        #[arg(long, default_value = "big.bin")]
        path: String,
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// Seconds allowed per transfer.
        #[arg(long, default_value_t = 600.0)]
        transfer_timeout: f64,
    },
    /// Straight to S3: GET an object, one stream: MB/s.
    S3Retr {
        #[command(flatten)]
        s3: S3Args,
        #[arg(long, default_value = "big.bin")]
        key: String,
        #[arg(long, default_value_t = 1)]
        count: usize,
    },
    /// Straight to S3: a multipart upload of SIZE bytes: MB/s.
    S3Stor {
        #[command(flatten)]
        s3: S3Args,
        #[arg(long, default_value = "upload/bench.bin")]
        key: String,
        #[arg(long, default_value_t = 1 << 30)]
        size: u64,
        #[arg(long, default_value_t = 8 << 20)]
        part_size: usize,
        #[arg(long, default_value_t = 2)]
        parts_in_flight: usize,
        #[arg(long, default_value_t = 1)]
        count: usize,
    },
    /// Straight to S3: S clients each GET a small object K times.
    S3Smallfiles {
        #[command(flatten)]
        s3: S3Args,
        #[arg(long, default_value = "small.bin")]
        key: String,
        #[arg(long, default_value_t = 200)]
        sessions: usize,
        #[arg(long, default_value_t = 20)]
        files: usize,
    },
    /// Straight to S3: PUT COUNT tiny objects under PREFIX (for a big listing).
    S3Fill {
        #[command(flatten)]
        s3: S3Args,
        #[arg(long)]
        prefix: String,
        #[arg(long, default_value_t = 100_000)]
        count: usize,
    },
    /// Upload SIZE bytes over one data connection: MB/s (10^6 B/s).
    Stor {
        #[arg(long, default_value = "upload/bench.bin")]
        path: String,
        #[arg(long, default_value_t = 1 << 30)]
        size: u64,
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// Seconds allowed per transfer.
        #[arg(long, default_value_t = 600.0)]
        transfer_timeout: f64,
    },
}

/// Where the S3 modes go.
#[derive(Args)]
struct S3Args {
    /// Endpoint URL (path-style requests).
    #[arg(long)]
    endpoint: String,
    #[arg(long)]
    bucket: String,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// File with `access_key_id = ...` and `secret_access_key = ...`.
    #[arg(long)]
    credentials: PathBuf,
}

impl S3Args {
    fn client(&self) -> Result<s3::S3, String> {
        s3::S3::new(
            &self.endpoint,
            &self.bucket,
            &self.region,
            &self.credentials,
        )
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.clamp(0.0, 1e7))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let c = &cli.common;
    let nofile = stats::raise_nofile();
    let tls = if c.tls {
        let Some(cert) = &c.cert else {
            eprintln!("wharf-loadgen: --tls needs --cert PEM");
            return ExitCode::from(2);
        };
        let resume = !matches!(
            cli.mode,
            Mode::Logins {
                tls_resume: false,
                ..
            }
        );
        match tls::client_config(cert, resume) {
            Ok(cfg) => Some(ftp::Tls::new(cfg)),
            Err(e) => {
                eprintln!("wharf-loadgen: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        None
    };
    let target = Target {
        addr: c.addr,
        user: c.user.clone(),
        pass: c.pass.clone(),
        tls,
        epsv: c.epsv,
        op_timeout: secs(c.op_timeout),
    };
    let rt = if c.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(c.threads)
            .enable_all()
            .build()
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wharf-loadgen: runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let (name, tls_on) = (mode_name(&cli.mode), c.tls);
    let addr = c.addr;
    let cpu0 = stats::cpu_seconds();
    let t0 = Instant::now();
    let result: Result<Value, String> = rt.block_on(async move {
        match cli.mode {
            Mode::Logins {
                concurrency,
                duration,
                ..
            } => Ok(logins::run(target, concurrency, secs(duration)).await),
            Mode::Smallfiles {
                sessions,
                files,
                path,
            } => Ok(transfer::smallfiles(target, &path, sessions, files).await),
            Mode::Idle {
                sessions,
                connect_concurrency,
                hold,
                setup_timeout,
                ready_file,
            } => {
                let o = idle::Options {
                    sessions,
                    connect_concurrency,
                    hold: secs(hold),
                    setup_timeout: secs(setup_timeout),
                    ready_file,
                };
                Ok(idle::run(target, o).await)
            }
            Mode::List { path, count } => {
                let limit = target.op_timeout;
                transfer::list(target, &path, count, limit).await
            }
            Mode::Retr {
                path,
                count,
                transfer_timeout,
            } => transfer::retr(target, &path, count, secs(transfer_timeout)).await,
            Mode::Stor {
                path,
                size,
                count,
                transfer_timeout,
            } => transfer::stor(target, &path, size, count, secs(transfer_timeout)).await,
            Mode::S3Retr { s3, key, count } => s3::retr(s3.client()?, &key, count).await,
            Mode::S3Stor {
                s3,
                key,
                size,
                part_size,
                parts_in_flight,
                count,
            } => s3::stor(s3.client()?, &key, size, part_size, parts_in_flight, count).await,
            Mode::S3Smallfiles {
                s3,
                key,
                sessions,
                files,
            } => Ok(s3::smallfiles(s3.client()?, &key, sessions, files).await),
            Mode::S3Fill { s3, prefix, count } => s3::fill(s3.client()?, &prefix, count).await,
        }
    });
    let mut out = json!({
        "mode": name,
        "addr": addr.to_string(),
        "tls": tls_on,
        "client_cpu_s": stats::cpu_seconds() - cpu0,
        "client_wall_s": t0.elapsed().as_secs_f64(),
        "nofile": nofile,
    });
    let code = match result {
        Ok(Value::Object(m)) => {
            if let Value::Object(o) = &mut out {
                o.extend(m);
            }
            ExitCode::SUCCESS
        }
        Ok(other) => {
            out["result"] = other;
            ExitCode::SUCCESS
        }
        Err(e) => {
            out["error"] = Value::String(e);
            ExitCode::FAILURE
        }
    };
    println!("{out}");
    // Sessions still closing must not delay the exit.
    rt.shutdown_timeout(Duration::from_secs(1));
    code
}

fn mode_name(m: &Mode) -> &'static str {
    match m {
        Mode::Logins { .. } => "logins",
        Mode::Smallfiles { .. } => "smallfiles",
        Mode::Idle { .. } => "idle",
        Mode::List { .. } => "list",
        Mode::Retr { .. } => "retr",
        Mode::Stor { .. } => "stor",
        Mode::S3Retr { .. } => "s3-retr",
        Mode::S3Stor { .. } => "s3-stor",
        Mode::S3Smallfiles { .. } => "s3-smallfiles",
        Mode::S3Fill { .. } => "s3-fill",
    }
}
