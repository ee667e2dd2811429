//! wharf: an FTP server. The protocol core lives in the `wharf-proto` crate; this crate
//! holds the IO edges: configuration, listeners, sessions, data connections and the jail.

pub mod admin;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod datachan;
pub mod error;
pub mod hooks;
pub mod http;
pub mod limits;
pub mod observe;
pub mod proxy;
pub mod quota;
pub mod secrets;
pub mod server;
pub mod session;
pub mod shared;
pub mod tasks;
pub mod tls;
pub mod vfs;

pub use config::Config;
pub use server::Server;
