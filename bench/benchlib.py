"""Helpers shared by the benchmark's Python drivers (bench/s3.py, bench/cluster.py,
bench/scale.py)."""

import glob
import json
import os
import pathlib
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, what, host="127.0.0.1", limit=30):
    start = time.time()
    while time.time() - start < limit:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{what} did not start on {host}:{port}")


def rss_kib(pid):
    """Resident and peak resident memory of a process, KiB."""
    out = {}
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            out[k] = int(v.split()[0])
    return out


def cpu_s(pid):
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def build():
    """Builds wharf and wharf-loadgen in release mode into the benchmark's cache; returns
    their paths."""
    cache = pathlib.Path(os.environ.get("WHARF_BENCH_CACHE", pathlib.Path.home() / ".cache/wharf-bench"))
    target = cache / "target"
    print("building wharf and wharf-loadgen (release)...", flush=True)
    subprocess.run(
        ["cargo", "build", "--release", "-q", "-p", "wharf", "-p", "wharf-loadgen"],
        cwd=REPO, check=True, env={**os.environ, "CARGO_TARGET_DIR": str(target)},
    )
    return target / "release/wharf", target / "release/wharf-loadgen"


class Procs:
    """Processes started in their own process groups, all stopped by stop()."""

    def __init__(self):
        self.procs = []

    def start(self, args, log, **kw):
        p = subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def stop(self, p):
        try:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self):
        for p in list(self.procs):
            self.stop(p)


def loadgen(binary, args):
    """Runs wharf-loadgen; returns its JSON result or exits with its error."""
    out = subprocess.run([str(binary), *args], capture_output=True, text=True)
    line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else "{}"
    r = json.loads(line)
    if out.returncode != 0 or r.get("error"):
        sys.exit(f"loadgen {' '.join(args)} failed: {r.get('error')} {out.stderr[-500:]}")
    return r


def as_postgres():
    """preexec_fn dropping to the postgres account (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return None
    pw = pwd.getpwnam("postgres")

    def drop():
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)

    return drop


def need_haproxy_and_postgres():
    if not shutil.which("haproxy") or not glob.glob("/usr/lib/postgresql/*/bin/postgres"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "haproxy", "postgresql"], check=True)


def start_postgres(work, procs, listen="127.0.0.1", trust=()):
    """Debian's PostgreSQL, initdb into work/pg (user wharf, trusted), listening on the
    `listen` addresses (comma-separated), also trusting the networks in `trust`; returns
    its port."""
    pgbin = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
    pgdir = work / "pg"
    pgdir.mkdir()
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(pgdir, pw.pw_uid, pw.pw_gid)
    subprocess.run([f"{pgbin}/initdb", "-D", str(pgdir / "data"), "-A", "trust", "-U", "wharf",
                    "--no-sync"], check=True, capture_output=True, preexec_fn=as_postgres())
    if trust:
        with open(pgdir / "data/pg_hba.conf", "a") as f:
            for net in trust:
                f.write(f"host all all {net} trust\n")
    port = free_port()
    procs.start([f"{pgbin}/postgres", "-D", str(pgdir / "data"), "-p", str(port), "-k", str(pgdir),
                 "-c", f"listen_addresses={listen}", "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "max_connections=400"], open(work / "pg.log", "w"), preexec_fn=as_postgres())
    wait_port(port, "postgres", host=listen.split(",")[0])
    return port
