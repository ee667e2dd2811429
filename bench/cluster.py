#!/usr/bin/env python3
"""wharf behind HAProxy: logins/s and small-file downloads straight to one node, through
the balancer to one node, and through the balancer to three nodes, with the shared state
in PostgreSQL (no session limits set: the database is not asked per login).

    sudo bench/cluster.py [--reps 3] [--tag NAME]

Runs everything on loopback: PostgreSQL (Debian's, initdb into a temporary directory, as
the postgres account), HAProxy with dist/haproxy/wharf.cfg (addresses and ports replaced),
three wharf nodes on 127.0.0.11-13 sharing one local directory. On a 2-core machine every
process shares the same cores: the rows show the balancer's and the database's overhead,
not scaling (docs/cluster.md). Writes bench/results/<date>[-tag]-cluster.md and .jsonl.
"""

import argparse
import datetime
import json
import os
import pathlib
import shutil
import signal
import statistics
import sys
import tempfile

from benchlib import REPO, Procs, build, free_port, loadgen, need_haproxy_and_postgres, start_postgres, wait_port

PORTS = 300  # passive ports per node


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--tag", default="")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each logins run")
    a = ap.parse_args()
    need_haproxy_and_postgres()
    wharf, lg = build()

    work = pathlib.Path(tempfile.mkdtemp(prefix="wharf-cluster-bench-"))
    os.chmod(work, 0o755)
    procs = Procs()

    def stop_all(*_):
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)

    signal.signal(signal.SIGINT, lambda *_: (stop_all(), sys.exit(130)))
    results = []
    try:
        pgport = start_postgres(work, procs)
        root = work / "root"
        root.mkdir()
        (root / "small.bin").write_bytes(os.urandom(16384))
        base = 20000 + free_port() % 5000
        nodes = []
        for i in range(3):
            ip = f"127.0.0.{11 + i}"
            port, direct = free_port(), free_port()
            lo, hi = base + i * PORTS, base + i * PORTS + PORTS - 1
            cfg = work / f"node{i}.toml"
            cfg.write_text(
                f'listen = []\nroot = "{root}"\nanonymous = "read"\npassive_ports = "{lo}-{hi}"\n'
                f'public_address = "127.0.0.1"\nmax_login_failures = 0\nlogin_failure_delay_ms = 0\n'
                # All clients come from 127.0.0.1: no per-address cap (nor its database trip).
                'max_sessions_per_ip = 0\n'
                f'[[listener]]\naddress = "{ip}:{port}"\nproxy_protocol = "v2"\nproxy_trusted = ["127.0.0.1/32"]\n'
                f'[[listener]]\naddress = "{ip}:{direct}"\n'
                f'[cluster]\ndatabase_url = "postgres://wharf@127.0.0.1:{pgport}/postgres"\nnode = "node{i + 1}"\n'
            )
            procs.start([str(wharf), "serve", "--config", str(cfg)], open(work / f"node{i}.log", "w"))
            wait_port(direct, f"node{i + 1}", host=ip)
            nodes.append(dict(ip=ip, port=port, direct=direct, lo=lo, hi=hi))

        lbport = free_port()

        def haproxy(count):
            text = (REPO / "dist/haproxy/wharf.cfg").read_text()
            text = text.replace("bind :21\n", f"bind 127.0.0.1:{lbport}\n")
            for i, n in enumerate(nodes):
                lo, hi = 50000 + 1000 * i, 50999 + 1000 * i
                text = text.replace(f"bind :{lo}-{hi}", f"bind 127.0.0.1:{n['lo']}-{n['hi']}")
                server = f"    server node{i + 1} 10.0.0.{11 + i}:2121\n"
                text = text.replace(server, server if i < count else "")
                text = text.replace(f"10.0.0.{11 + i}:2121", f"{n['ip']}:{n['port']}")
                text = text.replace(f"10.0.0.{11 + i}", n["ip"])
            path = work / f"haproxy{count}.cfg"
            path.write_text(text)
            p = procs.start(["haproxy", "-db", "-f", str(path)], open(work / f"haproxy{count}.log", "w"))
            wait_port(lbport, "haproxy")
            return p

        # Anonymous, as in bench/run: argon2 would make the password hash the bottleneck.
        common = ["--user", "anonymous", "--pass", "bench@example.com", "--epsv"]
        cases = [
            ("logins/s, 100 clients", ["logins", "--concurrency", "100", "--duration", str(a.seconds)], "logins_per_s"),
            ("16 KiB files/s (200 × 20)", ["smallfiles", "--path", "small.bin"], "files_per_s"),
        ]
        setups = [
            ("direct to node1", None, f"{nodes[0]['ip']}:{nodes[0]['direct']}"),
            ("HAProxy → 1 node", 1, f"127.0.0.1:{lbport}"),
            ("HAProxy → 3 nodes", 3, f"127.0.0.1:{lbport}"),
        ]
        for rep in range(a.reps):
            order = setups[rep % 3:] + setups[:rep % 3]
            for label, count, addr in order:
                lb = haproxy(count) if count else None
                try:
                    for scenario, args, field in cases:
                        r = loadgen(lg, [*args, "--addr", addr, *common])
                        r.update(scenario=scenario, setup=label, rep=rep, value=r.get(field))
                        print(f"  rep {rep} {label:18} {scenario:26} {r['value']:.0f}", flush=True)
                        results.append(r)
                finally:
                    if lb:
                        procs.stop(lb)
    finally:
        stop_all()

    stamp = datetime.datetime.now(datetime.timezone.utc)
    name = stamp.strftime("%Y-%m-%d") + (f"-{a.tag}" if a.tag else "") + "-cluster"
    out = REPO / "bench/results"
    with open(out / f"{name}.jsonl", "w") as f:
        for r in results:
            f.write(json.dumps(r) + "\n")
    setups_seen = list(dict.fromkeys(r["setup"] for r in results))
    lines = [
        f"# wharf behind HAProxy, {stamp:%Y-%m-%d %H:%M} UTC",
        "",
        f"{os.cpu_count()} cores, loopback, every process on the same cores; shared state in "
        f"PostgreSQL, no session limits (no database call per login); medians of {a.reps}.",
        "",
        "| scenario | " + " | ".join(setups_seen) + " |",
        "|---|" + "---|" * len(setups_seen),
    ]
    for scenario in dict.fromkeys(r["scenario"] for r in results):
        cells = []
        for s in setups_seen:
            vals = [r["value"] for r in results if r["scenario"] == scenario and r["setup"] == s]
            cells.append(f"{statistics.median(vals):.0f}")
        lines.append(f"| {scenario} | " + " | ".join(cells) + " |")
    p99 = {s: statistics.median(r["p99_ms"] for r in results if r["setup"] == s and r["scenario"].startswith("logins"))
           for s in setups_seen}
    lines += ["", "Login p99 (ms): " + ", ".join(f"{s} {v:.1f}" for s, v in p99.items()) + "."]
    text = "\n".join(lines) + "\n"
    (out / f"{name}.md").write_text(text)
    print(text)
    print(f"wrote bench/results/{name}.md and .jsonl")


if __name__ == "__main__":
    main()
