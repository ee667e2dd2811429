//! The local-disk janitor: removes the hidden temporaries of uploads that ended without
//! cleaning up (a node killed mid-upload, a power cut), on a disk this node alone serves
//! or one several nodes share. A temporary is stale once it has not been written for
//! longer than any live upload can go without writing (the stall timeout aborts those),
//! so no live session on any node loses its file. Walks through cap-std beneath each root,
//! never following a symlink, and touches nothing but `.wharf-upload.*` regular files.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use cap_fs_ext::DirExt;
use cap_std::ambient_authority;
use cap_std::fs::Dir;

use super::UPLOAD_TEMP_PREFIX;
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

/// Removes the upload temporaries beneath `root` unwritten for `stale`; how many.
pub fn sweep(root: &Path, stale: Duration) -> io::Result<usize> {
    let cutoff = SystemTime::now()
        .checked_sub(stale)
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
            let temp = name
                .to_str()
                .is_some_and(|n| n.starts_with(UPLOAD_TEMP_PREFIX));
            if !temp || !kind.is_file() {
                continue;
            }
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
        let lookalike = root.join("a/x.wharf-upload.old");
        for f in [&stale, &fresh, &plain, &lookalike] {
            std::fs::write(f, b"x").unwrap();
        }
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

        assert_eq!(sweep(&root, Duration::from_secs(3600)).unwrap(), 1);
        assert!(!stale.exists());
        for kept in [&fresh, &plain, &lookalike, &outside] {
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
