//! The virtual filesystem: [`VPath`] (the only path arithmetic in wharf) and the [`Jail`]
//! (the only way to touch a file).
//!
//! Handlers hold virtual paths; the jail turns them into operations beneath the root with
//! kernel-enforced resolution (cap-std: `openat2(RESOLVE_BENEATH)` where the kernel has it),
//! so `..`, absolute paths and symlinks cannot reach outside.

mod jail;
mod vpath;

pub use jail::{Jail, Ownership, Roots, WriteMode};
pub use vpath::{MAX_NAME, MAX_PATH, UPLOAD_TEMP_PREFIX, VPath};
