//! wharf's integration tests: one binary, an in-process server per test on loopback
//! port 0, driven by a raw client and by real FTP clients.

mod cli;
mod harness;
mod protocol;
