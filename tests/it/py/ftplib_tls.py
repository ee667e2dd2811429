"""Python ftplib FTP_TLS scenarios against wharf, run by tests/it/clients_tls.rs.

Usage: ftplib_tls.py SCENARIO HOST PORT CERT WORKDIR MODE
MODE is `passive` or `active`. CERT is the server's self-signed certificate (PEM), trusted as
the only CA, with the host name checked against `localhost`. WORKDIR holds the local files the
Rust side prepared and receives what is downloaded. Every check raises with a message; exit
status 0 means all held. The Rust side checks the server's disk afterwards.
"""

import ftplib
import io
import re
import socket
import ssl
import sys

SCENARIO, HOST, PORT, CERT, WORK, MODE = sys.argv[1:7]

# The content of marker.txt, written by the Rust side: must never cross the wire in clear.
MARKER = b"WHARF-CLEARTEXT-MARKER-7f3a9c"


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def local(name):
    return WORK + "/" + name


def read_local(name):
    with open(local(name), "rb") as f:
        return f.read()


def context():
    ctx = ssl.create_default_context(cafile=CERT)
    check(ctx.check_hostname, "hostname checking is on")
    check(ctx.verify_mode == ssl.CERT_REQUIRED, "certificate verification is on")
    return ctx


def connect(secure_data=True, ctx=None, user=("judge", "pw"), source=None):
    """AUTH TLS, certificate checked for `localhost`, login (unless `user` is None), PBSZ 0
    + PROT P."""
    ftp = ftplib.FTP_TLS(context=ctx or context(), encoding="utf-8", timeout=30)
    ftp.set_debuglevel(1)
    ftp.connect(HOST, int(PORT), source_address=source)
    # ftplib passes `self.host` as server_hostname on the control and data connections; the
    # certificate names `localhost`, and the data connections go to the peer address anyway.
    ftp.host = "localhost"
    resp = ftp.auth()
    check(resp.startswith("234"), "AUTH TLS: %r" % resp)
    check(isinstance(ftp.sock, ssl.SSLSocket), "control connection is TLS after AUTH")
    peer = ftp.sock.getpeercert()
    names = [v for k, v in peer.get("subjectAltName", ()) if k == "DNS"]
    check("localhost" in names, "certificate names localhost: %r" % (peer,))
    if user is None:
        ftp.voidcmd("PBSZ 0")
        return ftp
    ftp.login(*user)
    if secure_data:
        resp = ftp.prot_p()
        check(resp.startswith("200"), "PROT P: %r" % resp)
    ftp.set_pasv(MODE == "passive")
    return ftp


def retr(ftp, name):
    buf = bytearray()
    ftp.retrbinary("RETR " + name, buf.extend)
    return bytes(buf)


def stor(ftp, name, data):
    return ftp.storbinary("STOR " + name, io.BytesIO(data))


def roundtrip():
    ftp = connect()
    up = read_local("up.bin")
    down = read_local("expected_down.bin")

    resp = stor(ftp, "up.bin", up)
    check(resp.startswith("226"), "STOR: %r" % resp)
    resp = stor(ftp, "sub/empty.bin", b"")
    check(resp.startswith("226"), "STOR of an empty file: %r" % resp)

    got = retr(ftp, "down.bin")
    check(got == down, "RETR down.bin: %d bytes, expected %d" % (len(got), len(down)))
    with open(local("got.bin"), "wb") as f:
        f.write(got)
    check(retr(ftp, "up.bin") == up, "RETR of what was just stored")
    check(retr(ftp, "sub/empty.bin") == b"", "RETR of an empty file")

    names = sorted(ftp.nlst())
    check(names == ["down.bin", "sub", "up.bin"], "NLST: %r" % names)
    facts = {name: f for name, f in ftp.mlsd(facts=["type", "size"])}
    check(facts["down.bin"]["type"] == "file", "MLSD type: %r" % facts)
    check(facts["down.bin"]["size"] == str(len(down)), "MLSD size: %r" % facts)
    check(facts["up.bin"]["size"] == str(len(up)), "MLSD size: %r" % facts)
    check(facts["sub"]["type"] == "dir", "MLSD dir: %r" % facts)
    lines = []
    ftp.retrlines("LIST", lines.append)
    check(len(lines) == 3, "LIST: %r" % lines)
    check(
        any(re.search(r"\s%d\s.*\sdown\.bin$" % len(down), l) for l in lines),
        "LIST shows down.bin with its size: %r" % lines,
    )

    # Many short transfers on one control connection: each data connection is its own
    # handshake.
    for i in range(10):
        data = (b"%d" % i) * (i * 997)
        stor(ftp, "sub/n%d.bin" % i, data)
        check(retr(ftp, "sub/n%d.bin" % i) == data, "round trip %d" % i)

    # Back to PROT C on the same control connection, and to P again.
    check(ftp.prot_c().startswith("200"), "PROT C")
    check(retr(ftp, "down.bin") == down, "RETR under PROT C")
    check(ftp.prot_p().startswith("200"), "PROT P again")
    check(retr(ftp, "up.bin") == up, "RETR under PROT P again")
    check(ftp.voidcmd("NOOP").startswith("200"), "NOOP")
    ftp.quit()


def expect_425(fn, *args):
    try:
        r = fn(*args)
    except ftplib.error_temp as e:
        check(str(e).startswith("425"), "%s: expected 425, got %s" % (fn.__name__, e))
        return str(e)
    raise AssertionError("%s: expected 425, got success %r" % (fn.__name__, r))


def refused_transfer(ftp, fn, *args):
    """Runs a transfer the server refuses after the TLS handshake (no resumption): ftplib
    sees the data connection close, possibly as an SSL or socket error, then must read 425."""
    try:
        r = fn(*args)
    except ftplib.error_temp as e:
        check(str(e).startswith("425"), "%s: expected 425, got %s" % (fn.__name__, e))
        return str(e)
    except (ssl.SSLError, OSError) as e:
        # The data connection was dropped under ftplib's feet; the reply is still pending.
        print("data connection error (expected):", repr(e))
        return expect_425(ftp.voidresp)
    raise AssertionError("%s: expected 425, got success %r" % (fn.__name__, r))


def require_reuse():
    ftp = connect()
    up = read_local("up.bin")
    text = refused_transfer(ftp, retr, ftp, "down.bin")
    check("resume" in text, "the 425 says why: %r" % text)
    check(ftp.voidcmd("NOOP").startswith("200"), "NOOP after the refused RETR")
    refused_transfer(ftp, ftp.nlst)
    check(ftp.voidcmd("NOOP").startswith("200"), "NOOP after the refused NLST")
    refused_transfer(ftp, stor, ftp, "refused.bin", up)
    check(ftp.voidcmd("NOOP").startswith("200"), "NOOP after the refused STOR")
    # Clear data connections are not subject to the reuse rule.
    check(ftp.prot_c().startswith("200"), "PROT C")
    check(retr(ftp, "down.bin") == read_local("expected_down.bin"), "RETR under PROT C")
    ftp.quit()


def open_plain_data(ftp):
    """Sets up a data connection by hand, as a plain TCP socket: connected to the passive
    port, or accepted on a listening socket for active mode (returned as a listener)."""
    if MODE == "passive":
        if ftp.af == socket.AF_INET:
            host, port = ftplib.parse227(ftp.sendcmd("PASV"))
            host = ftp.sock.getpeername()[0]
        else:
            host, port = ftplib.parse229(ftp.sendcmd("EPSV"), ftp.sock.getpeername())
        s = socket.create_connection((host, port), timeout=30)
        return s, None
    listener = ftp.makeport()
    listener.settimeout(30)
    return None, listener


def read_all(s):
    got = bytearray()
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        got.extend(chunk)
    return bytes(got)


def after_failed_transfer(ftp, allowed):
    resp = ftp.getline()
    print("*final*", resp)
    check(resp[:3] in allowed, "final reply %r, expected one of %r" % (resp, allowed))
    check(ftp.voidcmd("NOOP").startswith("200"), "NOOP after the failed transfer")


def plain_download():
    """RETR under PROT P with a data connection that speaks no TLS: not one byte of the file
    may arrive in clear. The plain client sends nothing and waits; the server (TLS server on
    the data connection) must wait for a ClientHello, give up and say so on the control
    connection."""
    ftp = connect()
    s, listener = open_plain_data(ftp)
    resp = ftp.sendcmd("RETR marker.txt")
    check(resp.startswith("150") or resp.startswith("125"), "RETR: %r" % resp)
    if listener is not None:
        s, _ = listener.accept()
        listener.close()
    s.settimeout(30)
    got = read_all(s)
    s.close()
    print("plain data socket received %d bytes: %r" % (len(got), got[:64]))
    check(MARKER not in got, "the file arrived in clear over a PROT P data connection")
    check(got == b"" or got[0] in (0x15, 0x16), "only TLS records, if anything: %r" % got[:16])
    # 425 (no TLS data connection in time) or 522 (TLS negotiation failed); 426 allowed.
    after_failed_transfer(ftp, ("425", "426", "522"))
    # Then a real PROT P download on the same control connection works.
    check(retr(ftp, "marker.txt") == MARKER, "RETR with TLS afterwards")
    ftp.quit()


def plain_garbage_download():
    """Like plain_download, but the plain client talks first (plain text where a ClientHello
    belongs): the server must fail the TLS handshake without sending the file."""
    ftp = connect()
    s, listener = open_plain_data(ftp)
    resp = ftp.sendcmd("RETR marker.txt")
    check(resp.startswith("150") or resp.startswith("125"), "RETR: %r" % resp)
    if listener is not None:
        s, _ = listener.accept()
        listener.close()
    s.settimeout(30)
    try:
        s.sendall(b"HELLO, PLAIN TEXT HERE\r\n")
    except OSError as e:
        print("send on the plain data socket:", repr(e))
    got = read_all(s)
    s.close()
    print("plain data socket received %d bytes: %r" % (len(got), got[:64]))
    check(MARKER not in got, "the file arrived in clear over a PROT P data connection")
    check(got == b"" or got[0] in (0x15, 0x16), "only TLS records, if anything: %r" % got[:16])
    after_failed_transfer(ftp, ("425", "426", "522"))
    ftp.quit()


def plain_upload():
    """STOR under PROT P with a plain data connection carrying the file in clear: the server
    must not take it as the file's content."""
    ftp = connect()
    s, listener = open_plain_data(ftp)
    resp = ftp.sendcmd("STOR uploaded.txt")
    check(resp.startswith("150") or resp.startswith("125"), "STOR: %r" % resp)
    if listener is not None:
        s, _ = listener.accept()
        listener.close()
    s.settimeout(30)
    try:
        s.sendall(MARKER)
        s.shutdown(socket.SHUT_WR)
    except OSError as e:
        print("send on the plain data socket:", repr(e))
    got = read_all(s)
    s.close()
    print("plain data socket received %d bytes: %r" % (len(got), got[:64]))
    after_failed_transfer(ftp, ("425", "426", "522", "451"))
    ftp.quit()


def transfer_with_session(ftp, cmd, session):
    """Runs `cmd` (a download) over a PROT P data connection set up by hand, whose TLS
    handshake offers `session` for resumption (what ftplib itself never does). Returns
    (whether the client saw the session resumed, the data, the final reply)."""
    ftp.voidcmd("TYPE I")
    s, listener = open_plain_data(ftp)
    if s is not None:
        conn = ftp.context.wrap_socket(s, server_hostname="localhost", session=session)
        resp = ftp.sendcmd(cmd)
    else:
        resp = ftp.sendcmd(cmd)
        raw, _ = listener.accept()
        listener.close()
        raw.settimeout(30)
        conn = ftp.context.wrap_socket(raw, server_hostname="localhost", session=session)
    check(resp.startswith("150") or resp.startswith("125"), "%s: %r" % (cmd, resp))
    reused = conn.session_reused
    got = bytearray()
    try:
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            got.extend(chunk)
        conn.unwrap()
    except (ssl.SSLError, OSError) as e:
        print("data connection error:", repr(e))
    conn.close()
    final = ftp.getline()
    print("*final*", final, "reused:", reused)
    return reused, bytes(got), final


def foreign_session():
    """Under tls_data_reuse = "require": a data connection may resume a session issued to a
    control connection of the same user; one resumed from a connection of another address
    that never logged in (anyone can get a TLS session without a password) or from another
    user's connection is refused (425)."""
    # One SSLContext for all, so any connection's session may be offered on a's data
    # connections (Python refuses sessions from another context).
    ctx = context()
    a = connect(ctx=ctx)
    same = connect(ctx=ctx)
    stranger = connect(ctx=ctx, user=None, source=("127.0.0.2", 0))
    other = connect(ctx=ctx, user=("anonymous", "x@example.com"))
    # TLS 1.3 tickets arrive after the handshake; a round trip makes sure they were read.
    for c in (a, same, stranger, other):
        c.voidcmd("NOOP")
    own = a.sock.session
    check(own is not None, "sessions to resume")
    check(len({c.sock.session.id for c in (a, same, stranger, other)}) == 4, "four sessions")
    want = read_local("expected_down.bin")

    for label, session in (("own", own), ("same user", same.sock.session)):
        reused, got, final = transfer_with_session(a, "RETR down.bin", session)
        check(reused, "the data connection resumed the %s session" % label)
        check(final.startswith("226"), "%s session accepted: %r" % (label, final))
        check(got == want, "RETR with the %s session: %d bytes" % (label, len(got)))

    for label, session in (("no login", stranger.sock.session), ("other user", other.sock.session)):
        reused, got, final = transfer_with_session(a, "RETR down.bin", session)
        print("%s session: resumed %s, %d bytes, final %r" % (label, reused, len(got), final))
        check(
            final.startswith("425"),
            "a data connection resuming the session of a %s connection must be refused "
            "(425), got %r after %d bytes (client saw resumption: %s)"
            % (label, final, len(got), reused),
        )
        check(got == b"", "no data for the %s session" % label)
        check(a.voidcmd("NOOP").startswith("200"), "NOOP afterwards")
    for c in (a, same, other):
        c.quit()
    stranger.close()


SCENARIOS = {
    "foreign_session": foreign_session,
    "roundtrip": roundtrip,
    "require_reuse": require_reuse,
    "plain_download": plain_download,
    "plain_garbage_download": plain_garbage_download,
    "plain_upload": plain_upload,
}

if __name__ == "__main__":
    SCENARIOS[SCENARIO]()
    print("ok")
