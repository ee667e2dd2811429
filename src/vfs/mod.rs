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
mod vpath;

pub use disk::{Disk, Ownership, Roots, WriteMode};
pub use jail::{Jail, Sink, Source, Storage};
pub use rules::{Authorized, Perms, Rules};
pub use vpath::{MAX_NAME, MAX_PATH, UPLOAD_TEMP_PREFIX, VPath};
