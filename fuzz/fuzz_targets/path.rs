//! Client bytes resolved as virtual paths. The check lives in `fuzz/replay_path.rs`, which
//! wharf's integration tests include to replay this target's corpus.
#![no_main]

#[path = "../replay_path.rs"]
mod replay_path;

libfuzzer_sys::fuzz_target!(|data: &[u8]| replay_path::check_path(data));
