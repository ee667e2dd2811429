//! Control-connection bytes, framed in input-derived chunks, parsed, and echoed through the
//! reply encoder and listing formatters. The check lives in `proto/tests/corpus.rs`, which
//! also replays this target's corpus under `cargo test`.
#![no_main]

#[path = "../../proto/tests/corpus.rs"]
mod corpus;

libfuzzer_sys::fuzz_target!(|data: &[u8]| corpus::check_line_command(data));
