//! The virtual filesystem: [`VPath`] (the only path arithmetic in wharf) and the [`Jail`]
//! (the only way to touch a file), with its two backends: the local [`Disk`] and S3.
//!
//! Handlers hold virtual paths; the jail hands them to the backend, which turns them into
//! operations beneath the root: on disk with kernel-enforced resolution (cap-std:
//! `openat2(RESOLVE_BENEATH)` where the kernel has it), so `..`, absolute paths and
//! symlinks cannot reach outside; on S3 as keys under the root's prefix.

mod disk;
mod jail;
mod rules;
pub mod s3;
pub mod sweep;
mod vpath;

pub use disk::{Disk, Ownership, Roots, WriteMode};
pub use jail::{Jail, Sink, Source, Storage};
pub use rules::{Authorized, Perms, Rules};
pub use vpath::{MAX_NAME, MAX_PATH, UPLOAD_RESUME_PREFIX, UPLOAD_TEMP_PREFIX, VPath};

/// Every local root a configuration serves must exist and be a directory, and every
/// `storage:NAME` must name a declared storage: checked before the server binds (and by
/// `check-config`), so a typo refuses the start instead of serving an empty new folder.
/// One line per problem.
pub fn check_roots(
    config: &crate::config::Config,
    users: &[crate::config::UserConfig],
) -> Result<(), String> {
    use crate::config::{AnonymousMode, StorageKind, storage_name};
    let mut roots: Vec<(String, &std::path::Path)> = Vec::new();
    // The embedded default's ./ftp is the one root `serve` makes itself.
    if config.root != crate::config::Config::default().root {
        roots.push(("root".into(), &config.root));
    }
    if let (Some(r), false) = (
        &config.anonymous_root,
        config.anonymous_mode() == AnonymousMode::Off,
    ) {
        roots.push(("anonymous_root".into(), r));
    }
    for u in users {
        if let Some(r) = &u.root {
            roots.push((format!("user `{}` root", u.name), r));
        }
    }
    for st in &config.storages {
        if let (StorageKind::Local, Some(p)) = (st.kind, &st.path) {
            roots.push((format!("storage `{}` path", st.name), p));
        }
    }
    let mut problems = Vec::new();
    for (what, root) in roots {
        if let Some(name) = storage_name(root) {
            if !config.storages.iter().any(|s| s.name == name) {
                problems.push(format!("{what}: no [[storage]] is named `{name}`"));
            }
            continue;
        }
        match std::fs::metadata(root) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => problems.push(format!("{what} {} is not a directory", root.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => problems.push(format!(
                "{what} {} does not exist; create it (mkdir -p {}) or correct the path",
                root.display(),
                root.display()
            )),
            Err(e) => problems.push(format!("{what} {}: {e}", root.display())),
        }
    }
    problems.dedup();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}
