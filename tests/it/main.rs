//! wharf's integration tests: one binary, an in-process server per test on loopback
//! port 0, driven by a raw client and by real FTP clients.

mod access;
mod cli;
mod clients_curl;
mod clients_ftplib;
mod clients_lftp;
mod clients_misc;
mod clients_tls;
mod clients_util;
mod cluster;
mod cluster_haproxy;
mod dashboard;
mod hang;
mod hardening;
mod hardening_secrets;
mod harness;
mod hosts;
mod limits;
mod ops;
mod ops_dist;
mod pg;
mod processes;
mod protocol;
mod proxy;
mod quota;
mod s3;
mod s3_clients;
mod s3_moto;
mod s3_ops;
mod tls;
mod uploads;

// The fuzz corpus of path resolution, replayed by `cargo test`.
#[path = "../../fuzz/replay_path.rs"]
mod replay_path;
