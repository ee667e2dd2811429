//! Every check a configuration must pass before the server binds, in one place, so that
//! `check-config` and `serve` (and a reload) can never disagree: the schema's own checks,
//! the users, secrets outside served roots, roots that exist, storage credentials that
//! can be read, certificate files that parse, and an upload hook that can run. The network
//! (does S3 answer?) is left to `check-config --probe` and to the start itself.

use std::os::unix::fs::PermissionsExt;

use crate::config::{Config, UserConfig};

/// Runs every check; the users on success, else one line per problem.
pub fn preflight(config: &Config) -> Result<Vec<UserConfig>, String> {
    config.validate().map_err(|e| e.to_string())?;
    let users = config.all_users().map_err(|e| e.to_string())?;
    let mut problems = Vec::new();
    let mut note = |r: Result<(), String>| {
        if let Err(e) = r {
            problems.push(e);
        }
    };
    note(crate::secrets::check(config, &users).map_err(|e| e.to_string()));
    note(crate::vfs::check_roots(config, &users));
    note(super::build_stores(config).map(|_| ()));
    note(certificate_files(config));
    note(hook_command(config));
    for h in &config.hosts {
        if let Err(e) = preflight(&config.for_host(h)) {
            problems.push(format!("host `{}`: {e}", h.name));
        }
    }
    if problems.is_empty() {
        Ok(users)
    } else {
        Err(problems.join("\n"))
    }
}

/// Configured certificate and key files parse (a generated one is made at start).
fn certificate_files(config: &Config) -> Result<(), String> {
    match super::cert_source(config) {
        Some(source @ crate::tls::CertSource::Files { .. }) => crate::tls::load(&source, &[])
            .map(|_| ())
            .map_err(|e| format!("tls_cert/tls_key: {e}")),
        _ => Ok(()),
    }
}

/// The upload hook's program exists and is executable (a bare name is looked up in PATH).
fn hook_command(config: &Config) -> Result<(), String> {
    let Some(program) = config.upload_hook.first() else {
        return Ok(());
    };
    let path = std::path::Path::new(program);
    let candidates: Vec<std::path::PathBuf> = if program.contains('/') {
        vec![path.to_path_buf()]
    } else {
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).map(|d| d.join(program)).collect())
            .unwrap_or_default()
    };
    let runnable = candidates.iter().any(|c| {
        std::fs::metadata(c).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    });
    if runnable {
        Ok(())
    } else {
        Err(format!(
            "upload_hook: `{program}` is not an executable file{}",
            if program.contains('/') {
                ""
            } else {
                " in PATH"
            }
        ))
    }
}
