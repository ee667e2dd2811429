//! Byte-level protocol tests over a raw control connection.
use crate::harness::*;

#[test]
fn greeting_and_quit() {
    let s = TestServer::start();
    let mut c = Ctrl::connect(s.v4);
    assert_eq!(c.cmd("QUIT").code, 221);
}
