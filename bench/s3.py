#!/usr/bin/env python3
"""wharf on S3 against S3 itself: the same operations through wharf's FTP (an S3 root on
Garage) and straight against Garage with a plain S3 client (wharf-loadgen's s3-* modes,
presigned requests, the same part size and parts in flight as wharf). Everything on
loopback; Garage comes from .ci/install-garage.

    bench/s3.py [--reps 3] [--size-mib 1024] [--list 100000] [--tag NAME]

Writes bench/results/<date>[-tag]-s3.md and .jsonl, and prints the table.
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

from benchlib import REPO, Procs, build, cpu_s, free_port, loadgen, rss_kib, wait_port
KEY = "GK0123456789abcdef01234567"
SECRET = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
BUCKET = "bench"
PART = 8 << 20
IN_FLIGHT = 2


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--list", type=int, default=0, help="also list a directory of N objects")
    ap.add_argument("--tag", default="")
    a = ap.parse_args()

    wharf, lg = build()
    garage = subprocess.run([str(REPO / ".ci/install-garage")], check=True,
                            capture_output=True, text=True).stdout.strip()

    work = pathlib.Path(tempfile.mkdtemp(prefix="wharf-s3-bench-"))
    procs = Procs()

    def stop_all(*_):
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)

    signal.signal(signal.SIGINT, lambda *_: (stop_all(), sys.exit(130)))
    try:
        rpc, s3port, ftp = free_port(), free_port(), free_port()
        (work / "garage.toml").write_text(
            f'metadata_dir = "{work}/meta"\ndata_dir = "{work}/data"\ndb_engine = "sqlite"\n'
            f'replication_factor = 1\nrpc_bind_addr = "127.0.0.1:{rpc}"\n'
            f'rpc_public_addr = "127.0.0.1:{rpc}"\nrpc_secret = "{SECRET}"\n'
            f'[s3_api]\ns3_region = "garage"\napi_bind_addr = "127.0.0.1:{s3port}"\n'
        )
        env = {**os.environ, "GARAGE_DEFAULT_ACCESS_KEY": KEY, "GARAGE_DEFAULT_SECRET_KEY": SECRET,
               "GARAGE_DEFAULT_BUCKET": BUCKET, "RUST_LOG": "warn"}
        log = open(work / "garage.log", "w")
        procs.start([garage, "-c", str(work / "garage.toml"), "server", "--single-node",
                     "--default-bucket"], log, env=env)
        wait_port(s3port, "garage")
        creds = work / "credentials"
        creds.write_text(f"access_key_id = {KEY}\nsecret_access_key = {SECRET}\n")
        endpoint = f"http://127.0.0.1:{s3port}"
        (work / "wharf.toml").write_text(
            f'listen = ["127.0.0.1:{ftp}"]\nroot = "storage:bench"\nanonymous = "write"\n'
            f'passive_ports = "40000-44999"\nmax_login_failures = 0\nmax_sessions_per_ip = 0\n'
            f'[[storage]]\nname = "bench"\nkind = "s3"\nbucket = "{BUCKET}"\nprefix = "ftp"\n'
            f'endpoint = "{endpoint}"\nregion = "garage"\npath_style = true\n'
            f'credentials_file = "{creds}"\npart_size = {PART}\nparts_in_flight = {IN_FLIGHT}\n'
        )
        wlog = open(work / "wharf.log", "w")
        w = procs.start([str(wharf), "serve", "--config", str(work / "wharf.toml")], wlog)
        wait_port(ftp, "wharf")

        s3args = ["--endpoint", endpoint, "--bucket", BUCKET, "--region", "garage",
                  "--credentials", str(creds)]
        ftpargs = ["--addr", f"127.0.0.1:{ftp}", "--epsv"]
        size = a.size_mib << 20

        def run(args):
            return loadgen(lg, args)

        print("preparing objects...", flush=True)
        for key, n in ((f"ftp/big.bin", size), ("ftp/small.bin", 16384)):
            run(["s3-stor", *s3args, "--key", key, "--size", str(n),
                 "--part-size", str(PART), "--parts-in-flight", str(IN_FLIGHT)])
        # The direct rows read the same objects.
        results = []
        base = rss_kib(w.pid)["VmRSS"]
        cases = [
            ("RETR MB/s", "wharf", ["retr", *ftpargs, "--path", "big.bin"], "mb_per_s"),
            ("RETR MB/s", "S3", ["s3-retr", *s3args, "--key", "ftp/big.bin"], "mb_per_s"),
            ("STOR MB/s", "wharf", ["stor", *ftpargs, "--path", "up.bin", "--size", str(size)], "mb_per_s"),
            ("STOR MB/s", "S3", ["s3-stor", *s3args, "--key", "ftp/up-direct.bin", "--size", str(size),
                                 "--part-size", str(PART), "--parts-in-flight", str(IN_FLIGHT)], "mb_per_s"),
            ("16 KiB files/s (200 × 20)", "wharf", ["smallfiles", *ftpargs, "--path", "small.bin"], "files_per_s"),
            ("16 KiB files/s (200 × 20)", "S3", ["s3-smallfiles", *s3args, "--key", "ftp/small.bin"], "files_per_s"),
        ]
        for rep in range(a.reps):
            order = cases[rep % len(cases):] + cases[:rep % len(cases)]
            for scenario, who, args, field in order:
                cpu0 = cpu_s(w.pid)
                r = run(args)
                r.update(scenario=scenario, who=who, rep=rep, value=r.get(field),
                         wharf_cpu_s=cpu_s(w.pid) - cpu0, wharf_rss=rss_kib(w.pid))
                print(f"  rep {rep} {scenario:28} {who:6} {r['value']:.1f}", flush=True)
                results.append(r)
        listing = None
        if a.list:
            print(f"listing a directory of {a.list} objects...", flush=True)
            run(["s3-fill", *s3args, "--prefix", "ftp/many/", "--count", str(a.list)])
            before = rss_kib(w.pid)
            r = run(["list", *ftpargs, "--path", "many"])
            listing = dict(r, rss_before=before, rss_after=rss_kib(w.pid))
        peak = rss_kib(w.pid)
    finally:
        stop_all()

    stamp = datetime.datetime.now(datetime.timezone.utc)
    name = stamp.strftime("%Y-%m-%d") + (f"-{a.tag}" if a.tag else "") + "-s3"
    outdir = REPO / "bench/results"
    with open(outdir / f"{name}.jsonl", "w") as f:
        for r in results:
            f.write(json.dumps(r) + "\n")
        if listing:
            f.write(json.dumps(dict(listing, scenario="list")) + "\n")
    lines = [
        f"# wharf on S3 (Garage) against S3 directly, {stamp:%Y-%m-%d %H:%M} UTC",
        "",
        f"{os.cpu_count()} cores, loopback; Garage {garage.split('garage-')[-1].split('/')[0]}, single node, "
        f"sqlite metadata; {a.size_mib} MiB files; part size {PART >> 20} MiB, {IN_FLIGHT} parts in flight "
        f"(wharf and the direct client alike); medians of {a.reps}.",
        "",
        "| scenario | wharf (FTP) | S3 directly | ratio | wharf CPU s |",
        "|---|---|---|---|---|",
    ]
    for scenario in dict.fromkeys(r["scenario"] for r in results):
        med = {}
        cpu = {}
        for who in ("wharf", "S3"):
            vals = [r["value"] for r in results if r["scenario"] == scenario and r["who"] == who]
            med[who] = statistics.median(vals)
            cpu[who] = statistics.median(r["wharf_cpu_s"] for r in results
                                         if r["scenario"] == scenario and r["who"] == who)
        lines.append(f"| {scenario} | {med['wharf']:.0f} | {med['S3']:.0f} | "
                     f"{med['wharf'] / med['S3']:.2f}× | {cpu['wharf']:.2f} |")
    lines += ["", f"wharf's resident memory: {base} KiB before the runs, peak {peak['VmHWM']} KiB "
              f"over all of them (1 GiB transfers included), {peak['VmRSS']} KiB at the end."]
    if listing:
        lines.append(
            f"LIST of {a.list} objects: {listing.get('p50_ms')} ms; "
            f"resident memory {listing['rss_before']['VmRSS']} KiB before, "
            f"{listing['rss_after']['VmRSS']} KiB after (peak {listing['rss_after']['VmHWM']} KiB)."
        )
    text = "\n".join(lines) + "\n"
    (outdir / f"{name}.md").write_text(text)
    print(text)
    print(f"wrote bench/results/{name}.md and .jsonl")


if __name__ == "__main__":
    main()
