"""Python ftplib scenarios against wharf, run by tests/it/clients_ftplib.rs.

Usage: ftplib_client.py SCENARIO HOST PORT WORKDIR MODE [ARG]
MODE is `passive` or `active`. WORKDIR holds the local files the Rust side prepared and
receives what is downloaded. Every check raises with a message; exit status 0 means all
held. The Rust side checks the server's disk afterwards.
"""

import ftplib
import io
import json
import os
import re
import socket
import sys

SCENARIO, HOST, PORT, WORK, MODE = sys.argv[1:6]
ARG = sys.argv[6] if len(sys.argv) > 6 else None

LIST_LINE = re.compile(
    r"^(?P<mode>[-dlps][-rwxsStT]{9})\s+(?P<links>\d+)\s+(?P<owner>\S+)\s+(?P<group>\S+)\s+"
    r"(?P<size>\d+)\s+(?P<month>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\s+"
    r"(?P<day>\d{1,2})\s+(?P<time>\d{2}:\d{2}|\d{4}) (?P<name>.*)$"
)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def local(name):
    return os.path.join(WORK, name)


def read_local(name):
    with open(local(name), "rb") as f:
        return f.read()


def connect(user="judge", password="pw"):
    ftp = ftplib.FTP(encoding="utf-8", timeout=30)
    ftp.set_debuglevel(1)
    ftp.connect(HOST, int(PORT))
    if user == "anonymous":
        ftp.login()
    else:
        ftp.login(user, password)
    ftp.set_pasv(MODE == "passive")
    return ftp


def retr(ftp, name, rest=None):
    buf = bytearray()
    ftp.retrbinary("RETR " + name, buf.extend, rest=rest)
    return bytes(buf)


def stor(ftp, name, data, cmd="STOR", rest=None):
    return ftp.storbinary(cmd + " " + name, io.BytesIO(data), rest=rest)


def expect_perm(codes, fn, *args):
    """Calls fn and insists it fails with a 5xx reply whose code is in `codes`."""
    try:
        r = fn(*args)
    except ftplib.error_perm as e:
        code = str(e)[:3]
        check(code in codes, "%s%r: expected %s, got %s" % (fn.__name__, args, codes, e))
        return str(e)
    raise AssertionError("%s%r: expected %s, got success %r" % (fn.__name__, args, codes, r))


def parse_list(lines):
    out = {}
    for line in lines:
        m = LIST_LINE.match(line)
        check(m is not None, "not an ls -l line: %r" % line)
        out[m.group("name")] = m
    return out


def listing(ftp, path=None):
    lines = []
    ftp.retrlines("LIST" if path is None else "LIST " + path, lines.append)
    return parse_list(lines)


def mlsd(ftp, path=""):
    return dict(ftp.mlsd(path, facts=["type", "size", "modify", "perm", "unique"]))


def roundtrip():
    ftp = connect()
    r = ftp.sendcmd("OPTS UTF8 ON")
    check(r.startswith("2"), "OPTS UTF8 ON: %r" % r)
    feat = ftp.sendcmd("FEAT")
    for f in ("UTF8", "MLST", "SIZE", "REST STREAM", "EPSV"):
        check(f in feat, "FEAT should list %s: %r" % (f, feat))
    check(ftp.pwd() == "/", "PWD: %r" % ftp.pwd())
    up = read_local("up.bin")
    down = read_local("expected_down.bin")

    stor(ftp, "up.bin", up)
    ftp.voidcmd("TYPE I")
    check(ftp.size("up.bin") == len(up), "SIZE up.bin")
    check(ftp.size("down.bin") == len(down), "SIZE down.bin")
    got = retr(ftp, "down.bin")
    check(got == down, "RETR down.bin: %d bytes, expected %d" % (len(got), len(down)))
    with open(local("got.bin"), "wb") as f:
        f.write(got)

    # REST + RETR.
    check(retr(ftp, "down.bin", rest=1000) == down[1000:], "REST 1000 + RETR")
    check(retr(ftp, "down.bin", rest=len(down)) == b"", "REST to the end + RETR")
    # REST + STOR: the first 50000 bytes stay, the rest is written from the offset.
    stor(ftp, "resumed.bin", up[:50000])
    stor(ftp, "resumed.bin", up[50000:], rest=50000)
    check(retr(ftp, "resumed.bin") == up, "REST 50000 + STOR")
    # APPE.
    stor(ftp, "appended.bin", up[:1234])
    stor(ftp, "appended.bin", up[1234:], cmd="APPE")
    check(ftp.size("appended.bin") == len(up), "APPE size")
    # APPE to a new file creates it.
    stor(ftp, "fresh.bin", b"fresh", cmd="APPE")

    # STOU: 150 FILE: name (RFC 1123 4.1.2.9).
    replies = []
    orig = ftp.sendcmd

    def spy(cmd):
        r = orig(cmd)
        replies.append(r)
        return r

    ftp.sendcmd = spy
    stor(ftp, "", b"unique data", cmd="STOU")
    ftp.sendcmd = orig
    stou = [r for r in replies if r.startswith("150") or r.startswith("125")]
    check(len(stou) == 1, "STOU preliminary reply: %r" % replies)
    m = re.match(r"^1(25|50) FILE: (.+)$", stou[0])
    check(m is not None, "STOU reply should be '150 FILE: name': %r" % stou[0])
    stou_name = m.group(2)
    check(retr(ftp, stou_name) == b"unique data", "RETR of the STOU name")
    print("STOU " + stou_name)

    # MKD creates missing parents; 257 carries the absolute path.
    check(ftp.mkd("sub/deeper/deepest") == "/sub/deeper/deepest", "MKD sub/deeper/deepest")
    check(ftp.mkd('say "hi"') == '/say "hi"', "MKD with a quote (257 doubles it)")
    ftp.cwd('say "hi"')
    check(ftp.pwd() == '/say "hi"', "PWD with a quote: %r" % ftp.pwd())
    ftp.cwd("/sub")
    check(ftp.pwd() == "/sub", "PWD /sub")
    stor(ftp, "inner.bin", up)
    ftp.cwd("..")
    check(ftp.pwd() == "/", "CDUP via CWD ..")
    ftp.rmd("sub/deeper/deepest")
    expect_perm(("550",), ftp.rmd, "sub")  # not empty
    expect_perm(("550",), ftp.cwd, "nowhere")
    expect_perm(("550",), ftp.size, "nowhere")
    expect_perm(("550",), ftp.delete, "nowhere")

    names = sorted(ftp.nlst())
    want = sorted(
        ["up.bin", "down.bin", "resumed.bin", "appended.bin", "fresh.bin", stou_name, "sub", 'say "hi"']
    )
    check(names == want, "NLST: %r, expected %r" % (names, want))

    # LIST, parsed as ls -l.
    entries = listing(ftp)
    check(sorted(entries) == want, "LIST names: %r" % sorted(entries))
    check(entries["sub"].group("mode").startswith("d"), "LIST sub is a dir")
    check(entries["up.bin"].group("mode").startswith("-"), "LIST up.bin is a file")
    check(int(entries["up.bin"].group("size")) == len(up), "LIST size of up.bin")
    inner = listing(ftp, "sub")
    check(sorted(inner) == ["deeper", "inner.bin"], "LIST sub: %r" % sorted(inner))

    # MLSD facts.
    facts = mlsd(ftp)
    check(sorted(facts) == want, "MLSD names: %r" % sorted(facts))
    f = facts["up.bin"]
    check(f.get("type") == "file", "MLSD type of up.bin: %r" % f)
    check(f.get("size") == str(len(up)), "MLSD size of up.bin: %r" % f)
    check(re.match(r"^\d{14}(\.\d+)?$", f.get("modify", "")), "MLSD modify: %r" % f)
    check("r" in f.get("perm", "") and "w" in f.get("perm", ""), "MLSD file perm: %r" % f)
    check(f.get("unique"), "MLSD unique: %r" % f)
    d = facts["sub"]
    check(d.get("type") == "dir", "MLSD type of sub: %r" % d)
    check("e" in d.get("perm", "") and "l" in d.get("perm", ""), "MLSD dir perm: %r" % d)
    check(f.get("unique") != d.get("unique"), "unique facts differ")
    check(set(mlsd(ftp, "sub")) == {"deeper", "inner.bin"}, "MLSD sub")
    # MLST on one file.
    r = ftp.sendcmd("MLST up.bin")
    check(r.startswith("250") and "size=%d;" % len(up) in r and "up.bin" in r, "MLST: %r" % r)

    # RNFR/RNTO, DELE, RMD.
    ftp.rename("up.bin", "renamed.bin")
    ftp.rename("fresh.bin", "sub/fresh.bin")
    ftp.delete("appended.bin")
    ftp.delete(stou_name)
    expect_perm(("550",), ftp.rename, "nowhere", "x")
    ftp.rmd('say "hi"')
    ftp.quit()


def name_data(i, name):
    return (name.encode("utf-8") + b"\n") * ((i + 1) * 100)


def names_put():
    names = json.loads(ARG)
    ftp = connect()
    r = ftp.sendcmd("OPTS UTF8 ON")
    check(r.startswith("2"), "OPTS UTF8 ON: %r" % r)
    for i, name in enumerate(names):
        stor(ftp, name, name_data(i, name))
    ftp.mkd("dir " + names[0])
    got = sorted(ftp.nlst())
    want = sorted(names + ["dir " + names[0]])
    check(got == want, "NLST: %r, expected %r" % (got, want))
    entries = listing(ftp)
    check(sorted(entries) == want, "LIST names: %r, expected %r" % (sorted(entries), want))
    facts = mlsd(ftp)
    check(sorted(facts) == want, "MLSD names: %r, expected %r" % (sorted(facts), want))
    ftp.voidcmd("TYPE I")
    for i, name in enumerate(names):
        size = len(name_data(i, name))
        check(facts[name].get("size") == str(size), "MLSD size of %r: %r" % (name, facts[name]))
        check(int(entries[name].group("size")) == size, "LIST size of %r" % name)
        check(ftp.size(name) == size, "SIZE of %r" % name)
        r = ftp.sendcmd("MDTM " + name)
        check(re.match(r"^213 \d{14}", r), "MDTM of %r: %r" % (name, r))
    ftp.cwd("dir " + names[0])
    check(ftp.pwd() == "/dir " + names[0], "PWD in %r: %r" % (names[0], ftp.pwd()))
    ftp.quit()


def names_get_delete():
    names = json.loads(ARG)
    ftp = connect()
    for i, name in enumerate(names):
        check(retr(ftp, name) == name_data(i, name), "RETR %r" % name)
    # Rename each to a sibling name and back, then delete it.
    for name in names:
        ftp.rename(name, name + ".moved")
        ftp.rename(name + ".moved", name)
        ftp.delete(name)
    ftp.rmd("dir " + names[0])
    check(ftp.nlst() == [], "NLST after deleting everything: %r" % ftp.nlst())
    ftp.quit()


def ascii_mode():
    ftp = connect()
    lines = []
    ftp.retrlines("RETR text.txt", lines.append)
    check(lines == ["one", "two", "", "three"], "retrlines: %r" % lines)
    # The raw bytes of a TYPE A transfer have CRLF line ends.
    ftp.voidcmd("TYPE A")
    conn = ftp.transfercmd("RETR text.txt")
    raw = b""
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        raw += chunk
    conn.close()
    ftp.voidresp()
    check(raw == b"one\r\ntwo\r\n\r\nthree\r\n", "TYPE A RETR bytes: %r" % raw)
    # storlines sends CRLF; the server stores LF.
    ftp.storlines("STOR up.txt", io.BytesIO(b"alpha\nbeta\n\ngamma\n"))
    # A few MB of lines of every length, so CR LF pairs straddle every buffer boundary:
    # CRLF on the wire is stored as LF, and comes back as CRLF.
    unix = b"".join(b"%d:" % i + b"x" * (i % 997) + b"\n" for i in range(6000))
    with open(local("big_unix.txt"), "wb") as f:
        f.write(unix)
    wire = unix.replace(b"\n", b"\r\n")
    ftp.voidcmd("TYPE A")
    conn = ftp.transfercmd("STOR big.txt")
    for at in range(0, len(wire), 4093):
        conn.sendall(wire[at : at + 4093])
    conn.close()
    ftp.voidresp()
    conn = ftp.transfercmd("RETR big.txt")
    raw = bytearray()
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        raw += chunk
    conn.close()
    ftp.voidresp()
    check(bytes(raw) == wire, "TYPE A RETR of a big file: %d bytes, expected %d" % (len(raw), len(wire)))
    ftp.voidcmd("TYPE I")
    check(retr(ftp, "big.txt") == unix, "TYPE I RETR of the big file")
    ftp.quit()


def anon_read():
    ftp = connect("anonymous")
    check(sorted(ftp.nlst()) == ["pub"], "anonymous NLST: %r" % ftp.nlst())
    check(retr(ftp, "pub/file.bin") == read_local("expected.bin"), "anonymous RETR")
    facts = mlsd(ftp, "pub")
    perm = facts["file.bin"].get("perm", "")
    check("r" in perm, "anonymous MLSD perm should allow reading: %r" % perm)
    for c in "wadf":
        check(c not in perm, "anonymous MLSD perm should not offer %r: %r" % (c, perm))
    expect_perm(("550", "553"), stor, ftp, "pub/new.bin", b"x")
    expect_perm(("550", "553"), stor, ftp, "pub/file.bin", b"x")
    expect_perm(("550", "553"), stor, ftp, "pub/file.bin", b"x", "APPE")
    expect_perm(("550",), ftp.delete, "pub/file.bin")
    expect_perm(("550",), ftp.mkd, "newdir")
    expect_perm(("550",), ftp.rmd, "pub")
    try:
        ftp.rename("pub/file.bin", "moved.bin")
        raise AssertionError("anonymous rename succeeded")
    except ftplib.error_perm as e:
        check(str(e).startswith("550"), "anonymous rename: %s" % e)
    ftp.quit()


def dropbox():
    ftp = connect("anonymous")
    stor(ftp, "new.bin", read_local("up.bin"))
    ftp.mkd("inbox/2024")
    stor(ftp, "inbox/2024/scan.bin", read_local("up.bin"))
    expect_perm(("553",), stor, ftp, "existing.bin", b"overwrite")
    expect_perm(("553", "550"), stor, ftp, "existing.bin", b"more", "APPE")
    expect_perm(("553", "550"), stor, ftp, "existing.bin", b"more", "STOR", 3)
    expect_perm(("550",), ftp.nlst)
    expect_perm(("550",), listing, ftp)
    expect_perm(("550",), mlsd, ftp)
    expect_perm(("550",), retr, ftp, "existing.bin")
    expect_perm(("550",), retr, ftp, "new.bin")
    expect_perm(("550",), ftp.delete, "existing.bin")
    expect_perm(("550",), ftp.rmd, "inbox/2024")
    try:
        ftp.rename("new.bin", "moved.bin")
        raise AssertionError("drop-box rename succeeded")
    except ftplib.error_perm as e:
        check(str(e).startswith("550"), "drop-box rename: %s" % e)
    ftp.quit()


def jail():
    """Nothing outside the root is reachable: not by .., not by an absolute path, not
    through a symlink that points out."""
    ftp = connect()
    r = ftp.sendcmd("SYST")
    check(r.startswith("215 UNIX"), "SYST: %r" % r)
    ftp.cwd("..")
    check(ftp.pwd() == "/", "CWD .. at the root: %r" % ftp.pwd())
    ftp.cwd("../../..")
    check(ftp.pwd() == "/", "CWD ../../.. at the root: %r" % ftp.pwd())
    ftp.cwd("/")
    check(retr(ftp, "inside.txt") == b"inside", "RETR inside.txt")
    for path in ("../../../../../../etc/passwd", "/../../etc/passwd", "escape/passwd",
                 "escape_file", "sub/../../etc/passwd"):
        expect_perm(("550",), retr, ftp, path)
    expect_perm(("550",), ftp.cwd, "escape")
    expect_perm(("550",), ftp.size, "escape_file")
    expect_perm(("550", "553"), stor, ftp, "escape/wharf-test-must-not-exist", b"x")
    check(ftp.pwd() == "/", "PWD after refusals: %r" % ftp.pwd())
    ftp.quit()


def latin1():
    """A name that is not UTF-8 (ISO-8859-1 bytes) is stored, listed, fetched and deleted
    as the very same bytes."""
    ftp = connect()
    ftp.encoding = "latin-1"
    name = "caf\xe9 \xe0 la cr\xe8me"
    stor(ftp, name, b"latin-1 named")
    check(ftp.nlst() == [name], "NLST: %r" % ftp.nlst())
    check(sorted(mlsd(ftp)) == [name], "MLSD: %r" % sorted(mlsd(ftp)))
    check(sorted(listing(ftp)) == [name], "LIST: %r" % sorted(listing(ftp)))
    check(retr(ftp, name) == b"latin-1 named", "RETR")
    ftp.rename(name, name + "2")
    print("STORED")
    sys.stdout.flush()
    ftp.quit()


def latin1_delete():
    ftp = connect()
    ftp.encoding = "latin-1"
    ftp.delete("caf\xe9 \xe0 la cr\xe8me2")
    check(ftp.nlst() == [], "NLST after DELE: %r" % ftp.nlst())
    ftp.quit()


def abort_replies(ftp, first):
    """The replies to an ABOR of a running transfer: 426 then 226 (or a single 225/226)."""
    check(first[:3] in ("426", "225", "226"), "ABOR first reply: %r" % first)
    if first.startswith("426"):
        last = ftp.getmultiline()
        check(last[:3] in ("225", "226"), "ABOR reply after 426: %r" % last)


def abort():
    """ABOR during a RETR, sent three ways: in band; as ftplib.abort() sends it (the whole
    line as TCP urgent data, so its last byte is the urgent one); and as BSD ftp/tnftp send
    it (RFC 959 4.1.3: Telnet IP, then the Synch: IAC as urgent data, DM, ABOR). Each time
    the server answers 426/226 and the session goes on."""
    ftp = connect()
    ftp.sock.settimeout(10)
    ftp.voidcmd("TYPE I")
    for how in ("in band", "ftplib.abort()", "IAC IP, IAC DM as urgent data"):
        conn = ftp.transfercmd("RETR big.bin")
        got = conn.recv(1000)
        check(len(got) > 0, "some data before ABOR")
        try:
            if how == "in band":
                ftp.sock.sendall(b"ABOR\r\n")
                abort_replies(ftp, ftp.getmultiline())
            elif how == "ftplib.abort()":
                abort_replies(ftp, ftp.abort())
            else:
                ftp.sock.sendall(b"\xff\xf4\xff", socket.MSG_OOB)
                ftp.sock.sendall(b"\xf2ABOR\r\n")
                abort_replies(ftp, ftp.getmultiline())
        except (TimeoutError, socket.timeout):
            raise AssertionError("no reply to ABOR sent %s" % how)
        conn.close()
        check(ftp.pwd() == "/", "PWD after ABOR sent %s" % how)
        check(retr(ftp, "small.bin") == b"small", "RETR after ABOR sent %s" % how)
    # With no transfer running: one 225 or 226.
    r = ftp.abort()
    check(r[:3] in ("225", "226"), "ABOR with no transfer: %r" % r)
    stor(ftp, "after.bin", b"after abort")
    ftp.quit()


def hidden():
    """Dotfiles are plain names: MLSD and LIST -a show them; LIST -a is not a path."""
    ftp = connect()
    check(".hidden" in mlsd(ftp), "MLSD shows .hidden: %r" % sorted(mlsd(ftp)))
    lines = []
    ftp.retrlines("LIST -a", lines.append)
    names = set(parse_list(l for l in lines))
    check(".hidden" in names and "visible" in names, "LIST -a: %r" % lines)
    check(retr(ftp, ".hidden") == b"dot", "RETR .hidden")
    ftp.quit()


SCENARIOS = {
    "roundtrip": roundtrip,
    "names_put": names_put,
    "names_get_delete": names_get_delete,
    "ascii": ascii_mode,
    "anon_read": anon_read,
    "dropbox": dropbox,
    "jail": jail,
    "latin1": latin1,
    "latin1_delete": latin1_delete,
    "abort": abort,
    "hidden": hidden,
}

if __name__ == "__main__":
    SCENARIOS[SCENARIO]()
    print("OK " + SCENARIO)
