//! The `wharf` binary's command line (not part of the library): `serve` and the admin
//! commands, each in its file; `main.rs` holds the command table and the small commands.

pub mod admin;
pub mod serve;
