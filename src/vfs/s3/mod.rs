//! The S3 backend: a bucket (and key prefix) as a root, with FTP semantics mapped onto
//! objects without losing anything. Owns every S3 request wharf makes; touches no local
//! file and no path arithmetic (the jail hands it normalised [`VPath`]s).
//!
//! opendal does the object work (stat, paginated listings, ranged reads, single-part
//! writes, copies, deletes, `dir/` markers). Uploads that may be resumed need the
//! multipart calls themselves (upload id, parts, part copy), which opendal keeps private:
//! rusty-s3 signs those and reqwest sends them. Both go through one retry and timeout
//! policy ([`api::Policy`]).
//!
//! Names are kept exactly, spaces at either end included: opendal trims a path's edge
//! whitespace, so keys it would change go through `exact.rs` instead.
//!
//! Directories: `dir/` markers written by MKD, and any prefix with objects beneath it.
//! Uploads: objects appear only when complete. An interrupted multipart upload is left in
//! S3 (invisible) so that it can be resumed; S3 itself is the record of its parts
//! (ListMultipartUploads, ListParts), so no second bookkeeping can disagree with it.
//!
//! Logs: an error's text goes through [`crate::http::redact`] first, since request URLs (a
//! presigned one carries the access key id and a signature valid for an hour) end up in it.
//!
//! - `store.rs`: [`ObjectStore`] and the namespace operations (stat, list, MKD, RMD,
//!   DELE, rename, RETR, SIZE).
//! - `upload.rs`: [`Upload`] and how one starts, resumes or appends; the janitor.
//! - `api.rs`: the signed multipart calls and [`api::Policy`].
//! - `creds.rs`: [`Secret`] and the key given to opendal.
//! - `exact.rs`: the object calls for keys opendal would change (ending in whitespace).

mod api;
mod creds;
mod exact;
mod store;
mod upload;
mod xml;

#[cfg(doc)]
use super::VPath;
pub use creds::Secret;
pub use store::{ByteStream, Entries, MIN_PART, ObjectStore};
pub use upload::{Pending, Upload, UploadStart};

/// Installs opendal's services registry once per process.
fn install_once() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(opendal::install_default);
}
