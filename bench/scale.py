#!/usr/bin/env python3
"""Does a node add capacity? Aggregate RETR and STOR through HAProxy to 1, 2 and 3 wharf
nodes, each node behind its own rate-limited link.

    sudo bench/scale.py [--rate-mbit 200] [--clients 12] [--mib 16] [--count 2] [--reps 3]

On one small machine every node shares the same cores, so three nodes cannot be faster
than one at what costs CPU. Here the per-node resource is a network link instead, as it is
for real nodes: each node runs in its own network namespace (wharf-scale-1..3) behind a
veth pair shaped by tbf to RATE in each direction; HAProxy, the clients and PostgreSQL stay
in the root namespace, unshaped. The nodes share one local directory and the shared state
in PostgreSQL, and HAProxy runs dist/haproxy/wharf.cfg with the addresses replaced, data
connections included (EPSV through the balancer's per-node passive ranges).

CLIENTS sessions (wharf-loadgen, anonymous with write access, one process each) download
a MIB MiB file COUNT times, then upload MIB MiB COUNT times each to their own name; the row
is the total bytes over the wall time from the first start to the last end. HAProxy
balances by least connections, so the sessions spread evenly. Writes
bench/results/<date>[-tag]-scale.md and .jsonl. Everything it made is removed at exit,
also when interrupted.
"""

import argparse
import datetime
import json
import os
import pathlib
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import REPO, Procs, build, cpu_s, free_port, need_haproxy_and_postgres, start_postgres, wait_port

NODES = 3
PORTS = 200  # passive ports per node
CONTROL = 2121


def ns(i):
    return f"wharf-scale-{i}"


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def links_down():
    for i in range(1, NODES + 1):
        sh("ip", "netns", "del", ns(i), check=False)
        sh("ip", "link", "del", f"wsc{i}", check=False)


def links_up(rate):
    """Namespace i: veth wsc{i} (10.204.i.1, root) <-> wsc{i}p (10.204.i.2), both ends
    shaped to `rate` Mbit/s. tbf's burst holds a full GSO packet (64 KiB) several times
    over, so segmentation offload stays on as on a real host."""
    links_down()
    for i in range(1, NODES + 1):
        host, peer = f"wsc{i}", f"wsc{i}p"
        sh("ip", "netns", "add", ns(i))
        sh("ip", "link", "add", host, "type", "veth", "peer", "name", peer, "netns", ns(i))
        sh("ip", "addr", "add", f"10.204.{i}.1/24", "dev", host)
        sh("ip", "link", "set", host, "up")
        inside = ["ip", "netns", "exec", ns(i)]
        sh(*inside, "ip", "addr", "add", f"10.204.{i}.2/24", "dev", peer)
        sh(*inside, "ip", "link", "set", peer, "up")
        sh(*inside, "ip", "link", "set", "lo", "up")
        tbf = ["root", "tbf", "rate", f"{rate}mbit", "burst", "512kb", "latency", "100ms"]
        sh("tc", "qdisc", "add", "dev", host, *tbf)
        sh(*inside, "tc", "qdisc", "add", "dev", peer, *tbf)


def haproxy_cfg(work, lbport, count):
    """dist/haproxy/wharf.cfg with its addresses replaced, the first `count` nodes in."""
    text = (REPO / "dist/haproxy/wharf.cfg").read_text()
    text = text.replace("bind :21\n", f"bind 127.0.0.1:{lbport}\n")
    for i in range(1, NODES + 1):
        lo, hi = 49000 + 1000 * i, 49999 + 1000 * i
        mine = base_port(i)
        text = text.replace(f"bind :{lo}-{hi}", f"bind 127.0.0.1:{mine}-{mine + PORTS - 1}")
        server = f"    server node{i} 10.0.0.{10 + i}:2121\n"
        text = text.replace(server, server if i <= count else "")
        text = text.replace(f"10.0.0.{10 + i}:2121", f"10.204.{i}.2:{CONTROL}")
        text = text.replace(f"10.0.0.{10 + i}", f"10.204.{i}.2")
    path = work / f"haproxy{count}.cfg"
    path.write_text(text)
    return path


def base_port(i):
    """Above the kernel's ephemeral range (32768-60999), where no client socket sits."""
    return 61000 + (i - 1) * PORTS


def run_clients(lg, addr, mode, a):
    """CLIENTS loadgen processes at once; (total bytes, wall seconds)."""
    size = a.mib << 20
    procs = []
    start = time.monotonic()
    for c in range(a.clients):
        args = [str(lg), mode, "--addr", addr, "--user", "anonymous", "--pass", "bench@example.com",
                "--epsv", "--threads", "1", "--count", str(a.count)]
        args += ["--path", "big.bin"] if mode == "retr" else ["--path", f"up/c{c}.bin", "--size", str(size)]
        procs.append(subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    total = 0
    for p in procs:
        out, err = p.communicate()
        line = out.strip().splitlines()[-1] if out.strip() else "{}"
        r = json.loads(line)
        if p.returncode != 0 or r.get("error"):
            sys.exit(f"loadgen {mode} failed: {r.get('error')} {err[-500:]}")
        total += size * a.count
    return total, time.monotonic() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate-mbit", type=int, default=200, help="each node's link, each direction")
    ap.add_argument("--clients", type=int, default=12)
    ap.add_argument("--mib", type=int, default=16, help="file size")
    ap.add_argument("--count", type=int, default=2, help="transfers per client and direction")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/scale.py needs root (network namespaces, tc)")
    need_haproxy_and_postgres()
    wharf, lg = build()

    work = pathlib.Path(tempfile.mkdtemp(prefix="wharf-scale-bench-"))
    os.chmod(work, 0o755)
    procs = Procs()

    def stop_all(*_):
        procs.stop_all()
        links_down()
        shutil.rmtree(work, ignore_errors=True)

    signal.signal(signal.SIGINT, lambda *_: (stop_all(), sys.exit(130)))
    signal.signal(signal.SIGTERM, lambda *_: (stop_all(), sys.exit(143)))
    results = []
    try:
        links_up(a.rate_mbit)
        hosts = ",".join(["127.0.0.1"] + [f"10.204.{i}.1" for i in range(1, NODES + 1)])
        pgport = start_postgres(work, procs, listen=hosts, trust=["10.204.0.0/16"])
        root = work / "root"
        (root / "up").mkdir(parents=True)
        os.chmod(root, 0o777)
        os.chmod(root / "up", 0o777)
        with open(root / "big.bin", "wb") as f:
            f.write(os.urandom(a.mib << 20))
        node_pids = []
        for i in range(1, NODES + 1):
            lo = base_port(i)
            cfg = work / f"node{i}.toml"
            cfg.write_text(
                f'listen = []\nroot = "{root}"\nanonymous = "write"\npassive_ports = "{lo}-{lo + PORTS - 1}"\n'
                'public_address = "127.0.0.1"\nmax_sessions_per_ip = 0\n'
                f'[[listener]]\naddress = "10.204.{i}.2:{CONTROL}"\nproxy_protocol = "v2"\n'
                f'proxy_trusted = ["10.204.{i}.1/32"]\n'
                f'[cluster]\ndatabase_url = "postgres://wharf@10.204.{i}.1:{pgport}/postgres"\nnode = "node{i}"\n'
            )
            # `ip netns exec` execs wharf: the pid is wharf's.
            node_pids.append(procs.start(["ip", "netns", "exec", ns(i), str(wharf), "serve", "--config", str(cfg)],
                                         open(work / f"node{i}.log", "w")).pid)
            wait_port(CONTROL, f"node{i}", host=f"10.204.{i}.2")
        lbport = free_port()
        for rep in range(a.reps):
            counts = [1, 2, 3][rep % 3:] + [1, 2, 3][:rep % 3]
            for count in counts:
                log = work / f"haproxy{count}-{rep}.log"
                lb = procs.start(["haproxy", "-db", "-f", str(haproxy_cfg(work, lbport, count))],
                                 open(log, "w"))
                time.sleep(0.5)
                if lb.poll() is not None:
                    sys.exit(f"haproxy did not start: {log.read_text()[-2000:]}")
                wait_port(lbport, "haproxy")
                time.sleep(2.5)  # the health checks mark the nodes up
                try:
                    for mode in ["retr", "stor"]:
                        subprocess.run(["sync"], check=False)
                        before = (sum(cpu_s(p) for p in node_pids), cpu_s(lb.pid))
                        total, secs = run_clients(lg, f"127.0.0.1:{lbport}", mode, a)
                        gb = total / 1e9
                        wharf_cpu = (sum(cpu_s(p) for p in node_pids) - before[0]) / gb
                        lb_cpu = (cpu_s(lb.pid) - before[1]) / gb
                        mbs = total / secs / 1e6
                        print(f"  rep {rep} {count} node(s) {mode}: {mbs:7.1f} MB/s "
                              f"({total / 1e6:.0f} MB in {secs:.1f} s)", flush=True)
                        results.append(dict(rep=rep, nodes=count, mode=mode, bytes=total, secs=secs,
                                            mb_per_s=mbs, wharf_cpu_s_per_gb=wharf_cpu,
                                            haproxy_cpu_s_per_gb=lb_cpu))
                finally:
                    procs.stop(lb)
    finally:
        stop_all()

    write(results, a)


def write(results, a):
    stamp = datetime.datetime.now(datetime.timezone.utc)
    name = stamp.strftime("%Y-%m-%d") + (f"-{a.tag}" if a.tag else "") + "-scale"
    out = REPO / "bench/results"
    with open(out / f"{name}.jsonl", "w") as f:
        for r in results:
            f.write(json.dumps(r) + "\n")
    link = a.rate_mbit / 8
    lines = [
        f"# wharf nodes behind HAProxy, each on its own {a.rate_mbit} Mbit/s link, {stamp:%Y-%m-%d %H:%M} UTC",
        "",
        f"{os.cpu_count()} cores; each node in its own network namespace behind a veth pair shaped "
        f"by tbf to {a.rate_mbit} Mbit/s ({link:.0f} MB/s) each way; HAProxy (dist/haproxy/wharf.cfg), "
        f"PostgreSQL and the clients unshaped. {a.clients} sessions, each {a.count} × {a.mib} MiB down, "
        f"then {a.count} × {a.mib} MiB up; aggregate MB/s (10^6 B/s), medians of {a.reps}.",
        "",
        "| direction | 1 node | 2 nodes | 3 nodes | 3 nodes / 1 node |",
        "|---|---|---|---|---|",
    ]
    for mode, label in [("retr", "RETR (down)"), ("stor", "STOR (up)")]:
        med = {n: statistics.median(r["mb_per_s"] for r in results if r["mode"] == mode and r["nodes"] == n)
               for n in (1, 2, 3)}
        lines.append(f"| {label} | {med[1]:.1f} | {med[2]:.1f} | {med[3]:.1f} | {med[3] / med[1]:.2f}× |")
    cpu = []
    for mode, label in [("retr", "RETR"), ("stor", "STOR")]:
        rows = [r for r in results if r["mode"] == mode and "wharf_cpu_s_per_gb" in r]
        if rows:
            w = statistics.median(r["wharf_cpu_s_per_gb"] for r in rows)
            h = statistics.median(r["haproxy_cpu_s_per_gb"] for r in rows)
            cpu.append(f"{label} wharf {w:.2f}, HAProxy {h:.2f}")
    if cpu:
        lines += ["", "CPU seconds per GB moved (all node counts): " + "; ".join(cpu) + "."]
    text = "\n".join(lines) + "\n"
    (out / f"{name}.md").write_text(text)
    print(text)
    print(f"wrote bench/results/{name}.md and .jsonl")


if __name__ == "__main__":
    main()
