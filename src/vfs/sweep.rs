//! The local-disk janitor: removes the hidden temporaries of uploads that ended without
//! cleaning up (a node killed mid-upload, a power cut), on a disk this node alone serves
//! or one several nodes share. A temporary is stale once it has not been written for
//! longer than any live upload can go without writing (the stall timeout aborts those),
//! so no live session on any node loses its file. An interrupted upload kept for a resume
//! (`.wharf-upload.resume-*`) is removed once it has waited `resumable_for` unresumed.
//! Walks through cap-std beneath each root, never following a symlink, and touches nothing
//! but `.wharf-upload.*` regular files.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use cap_fs_ext::DirExt;
use cap_std::ambient_authority;
use cap_std::fs::Dir;

use super::{UPLOAD_RESUME_PREFIX, UPLOAD_TEMP_PREFIX};
use crate::config::{Config, StorageKind, UserConfig, storage_name};

/// At most this many directory entries are looked at per root and sweep: a huge tree costs
/// a bounded amount of work each hour (the rest waits for the next sweep).
pub const SWEEP_MAX_ENTRIES: usize = 1_000_000;

/// The local directories `config` serves (outermost only: a root inside another is walked
/// with it), for the janitor.
pub fn local_roots(config: &Config, users: &[UserConfig]) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = vec![config.root.clone()];
    roots.extend(config.anonymous_root.clone());
    roots.extend(users.iter().filter_map(|u| u.root.clone()));
    for st in &config.storages {
        if let (StorageKind::Local, Some(p)) = (st.kind, &st.path) {
            roots.push(p.clone());
        }
    }
    let mut roots: Vec<PathBuf> = roots
        .into_iter()
        .filter(|r| storage_name(r).is_none())
        .filter_map(|r| std::fs::canonicalize(r).ok())
        .collect();
    roots.sort();
    roots.dedup();
    let mut outer: Vec<PathBuf> = Vec::new();
    for r in roots {
        if !outer.iter().any(|o| r.starts_with(o)) {
            outer.push(r);
        }
    }
    outer
}

/// How long a temporary must have gone unwritten to be stale: an hour, or twice the stall
/// timeout if that is longer (a live upload writes at least once per stall timeout).
pub fn stale_after(config: &Config) -> Duration {
    Duration::from_secs(config.data_stall_timeout.saturating_mul(2)).max(Duration::from_secs(3600))
}

/// The two ages after which the janitor removes an upload's hidden file.
#[derive(Debug, Clone, Copy)]
pub struct Ages {
    /// An upload in progress that stopped being written ([`stale_after`]).
    pub stale: Duration,
    /// An interrupted upload nobody resumed (`resumable_for`).
    pub resumable: Duration,
}

impl Ages {
    pub fn of(config: &Config) -> Ages {
        Ages {
            stale: stale_after(config),
            resumable: Duration::from_secs(config.resumable_for),
        }
    }
}

/// Removes the upload temporaries beneath `root` older than their age; how many.
pub fn sweep(root: &Path, ages: Ages) -> io::Result<usize> {
    let now = SystemTime::now();
    let stale_cutoff = now
        .checked_sub(ages.stale)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let resume_cutoff = now
        .checked_sub(ages.resumable)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut pending = vec![Dir::open_ambient_dir(root, ambient_authority())?];
    let (mut seen, mut removed) = (0usize, 0usize);
    while let Some(dir) = pending.pop() {
        let Ok(entries) = dir.entries() else { continue };
        for entry in entries.flatten() {
            seen += 1;
            if seen > SWEEP_MAX_ENTRIES {
                return Ok(removed);
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let name = entry.file_name();
            if kind.is_dir() {
                if let Ok(sub) = dir.open_dir_nofollow(&name) {
                    pending.push(sub);
                }
                continue;
            }
            let Some(name_text) = name.to_str() else {
                continue;
            };
            if !name_text.starts_with(UPLOAD_TEMP_PREFIX) || !kind.is_file() {
                continue;
            }
            let cutoff = if name_text.starts_with(UPLOAD_RESUME_PREFIX) {
                resume_cutoff
            } else {
                stale_cutoff
            };
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.into_std() < cutoff);
            if old && dir.remove_file(&name).is_ok() {
                removed += 1;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(path: &Path, secs: u64) {
        let t = SystemTime::now() - Duration::from_secs(secs);
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }

    #[test]
    fn sweep_removes_only_stale_upload_temporaries() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        let stale = root.join("a/b/.wharf-upload.0123456789abcdef.scan.pdf");
        let fresh = root.join("a/.wharf-upload.fedcba9876543210.live.bin");
        let plain = root.join("a/b/old.txt");
        // Interrupted uploads kept for a resume wait `resumable_for`, not the stale bound.
        let waiting = root.join("a/.wharf-upload.resume-0123456789abcdef.doc.pdf");
        let forgotten = root.join("a/b/.wharf-upload.resume-fedcba9876543210.old.pdf");
        let lookalike = root.join("a/x.wharf-upload.old");
        for f in [&stale, &fresh, &plain, &lookalike, &waiting, &forgotten] {
            std::fs::write(f, b"x").unwrap();
        }
        age(&waiting, 7200);
        age(&forgotten, 2 * 86_400);
        age(&stale, 7200);
        age(&plain, 7200);
        age(&lookalike, 7200);
        // A directory with the prefix is never removed, nor is anything outside the root
        // that a symlink inside points at.
        std::fs::create_dir(root.join(".wharf-upload.dir")).unwrap();
        let outside = d.path().join(".wharf-upload.0000000000000000.outside");
        std::fs::write(&outside, b"x").unwrap();
        age(&outside, 7200);
        std::os::unix::fs::symlink(d.path(), root.join("escape")).unwrap();

        let ages = Ages {
            stale: Duration::from_secs(3600),
            resumable: Duration::from_secs(86_400),
        };
        assert_eq!(sweep(&root, ages).unwrap(), 2);
        assert!(!stale.exists() && !forgotten.exists());
        for kept in [&fresh, &plain, &lookalike, &outside, &waiting] {
            assert!(kept.exists(), "{}", kept.display());
        }
        assert!(root.join(".wharf-upload.dir").is_dir());
    }

    #[test]
    fn local_roots_are_the_outermost_served_directories() {
        let d = tempfile::tempdir().unwrap();
        let (a, inner, b) = (
            d.path().join("a"),
            d.path().join("a/in"),
            d.path().join("b"),
        );
        for p in [&a, &inner, &b] {
            std::fs::create_dir_all(p).unwrap();
        }
        let config = Config {
            root: a.clone(),
            anonymous_root: Some(inner),
            ..Config::default()
        };
        let user = |root: PathBuf| UserConfig {
            root: Some(root),
            ..UserConfig::new("u", String::new())
        };
        let users = vec![user(b.clone()), user("storage:s3".into())];
        assert_eq!(local_roots(&config, &users), vec![a, b]);
    }
}
