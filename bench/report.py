"""Turns the raw results of bench/run into a markdown table and an SVG chart.

  report.py META.json RAW.jsonl OUT.md OUT.svg

RAW has one JSON object per measurement (scenario, server, rep, and what the load generator
and bench/run measured). Every number in the table is the median over repetitions. The chart
shows each server per scenario normalised to the best peer (wharf excluded from "best"), so
1.0 is the best peer, above 1.0 wharf beats every peer; lower-is-better metrics are inverted
first so that longer bars are always better.
"""

import html
import json
import statistics
import sys

SERVERS = ["wharf", "vsftpd", "proftpd", "pure-ftpd", "pyftpdlib", "unftp"]
GIB = 1 << 30


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def cpu_per_gib(r):
    runs = r.get("runs") or []
    b = sum(x.get("bytes", 0) for x in runs)
    c = r.get("server_cpu_s")
    return c / (b / GIB) if b and c is not None else None


# (column key, header, scenario, extractor, higher is better, format)
COLUMNS = [
    ("retr", "RETR MB/s", "retr", lambda r: r.get("mb_per_s"), True, "{:.0f}"),
    ("stor", "STOR MB/s", "stor", lambda r: r.get("mb_per_s"), True, "{:.0f}"),
    ("retr_cpu", "RETR CPU s/GiB", "retr", cpu_per_gib, False, "{:.2f}"),
    ("stor_cpu", "STOR CPU s/GiB", "stor", cpu_per_gib, False, "{:.2f}"),
    ("tls_retr", "FTPS RETR MB/s", "tls-retr", lambda r: r.get("mb_per_s"), True, "{:.0f}"),
    ("tls_stor", "FTPS STOR MB/s", "tls-stor", lambda r: r.get("mb_per_s"), True, "{:.0f}"),
    ("logins100", "logins/s @100", "logins-100", lambda r: r.get("logins_per_s"), True, "{:.0f}"),
    ("logins500", "logins/s @500", "logins-500", lambda r: r.get("logins_per_s"), True, "{:.0f}"),
    ("tls_logins", "TLS logins/s @100", "tls-logins", lambda r: r.get("logins_per_s"), True, "{:.0f}"),
    ("smallfiles", "16 KiB files/s", "smallfiles", lambda r: r.get("files_per_s"), True, "{:.0f}"),
    ("list", "LIST 10k ms", "list", lambda r: r.get("p50_ms"), False, "{:.1f}"),
    ("memory", "KiB/idle session", "memory", lambda r: r.get("kib_per_session"), False, "{:.0f}"),
    # Sessions that logged in and were still there when released (a server that drops them
    # all after they came up holds none).
    ("idle", "idle sessions held", "idle", lambda r: r.get("held_to_end", r.get("up")), True, "{:.0f}"),
]

# Latency and error details shown beside the main value.
DETAILS = {
    "logins100": ("logins-100", ["p50_ms", "p99_ms"]),
    "logins500": ("logins-500", ["p50_ms", "p99_ms"]),
    "tls_logins": ("tls-logins", ["p50_ms", "p99_ms"]),
}


# iperf3 rows carry the link (bench/run --link) in place of a server.
LINKS = ("loopback", "veth")


def link_of(meta):
    """The link's description for the header, and its name for the ceiling line."""
    link = meta.get("link", "loopback")
    if link == "loopback":
        return "Loopback", "Loopback"
    d = meta.get("delay_ms") or 0
    desc = (
        f"veth pair between two network namespaces (servers in the root namespace on "
        f"{meta.get('host')}, every client in its own namespace; veth's default offloads)"
    )
    if d:
        desc += f", {d:g} ms round trip added with netem"
    return desc, link + (f" ({d:g} ms round trip)" if d else "")


def errors_of(r):
    n = 0
    for k in ("errors", "dropped", "not_done"):
        v = r.get(k)
        if isinstance(v, (int, float)):
            n += v
    if "error" in r:
        n += 1
    return n


def main():
    meta_path, raw_path, md_path, svg_path = sys.argv[1:5]
    meta = json.load(open(meta_path))
    rows = [json.loads(l) for l in open(raw_path) if l.strip()]
    servers = [s for s in SERVERS if any(r["server"] == s for r in rows)]
    by = {}
    for r in rows:
        by.setdefault((r["scenario"], r["server"]), []).append(r)

    table = {}  # (col, server) -> median value
    errs = {}  # (col, server) -> total errors over reps
    for key, _, sc, fn, _, _ in COLUMNS:
        for s in servers:
            rs = by.get((sc, s), [])
            if not rs:
                continue
            table[(key, s)] = median([fn(r) if "error" not in r else None for r in rs])
            errs[(key, s)] = sum(errors_of(r) for r in rs)
    cols = [c for c in COLUMNS if any((c[0], s) in table for s in servers)]

    def cell(c, s):
        key, _, sc, _, _, fmt = c
        v = table.get((key, s))
        if (key, s) not in table:
            return "–"
        txt = "fail" if v is None else fmt.format(v)
        if key in DETAILS:
            dsc, fields = DETAILS[key]
            ds = [median([r.get(f) for r in by.get((dsc, s), [])]) for f in fields]
            if all(d is not None for d in ds):
                txt += " (" + "/".join(f"{d:.0f}" if d >= 10 else f"{d:.1f}" for d in ds) + ")"
        if key == "idle":
            n = meta.get("idle_n")
            txt += f"/{n}" if n else ""
        e = errs.get((key, s), 0)
        if e:
            txt += f" ⚠{e:.0f}"
        return txt

    iperf = {}
    for r in rows:
        if r["server"] in LINKS:
            iperf.setdefault(r["scenario"], []).append(r.get("mb_per_s"))
    iperf = {k: median(v) for k, v in iperf.items()}
    out = []
    quick = " (quick smoke run: 1 repetition, smaller sizes — not for comparison)" if meta.get("quick") else ""
    out.append(f"# wharf benchmark, {meta.get('date')}{quick}\n")
    link_desc, link_name = link_of(meta)
    out.append(
        f"{link_desc}, {meta.get('cpu')}, kernel {meta.get('kernel')}. Medians of "
        f"{meta.get('reps')} repetition(s), servers interleaved and the order rotated each "
        f"repetition. Transfers: {meta.get('big_mib')} MiB file in page cache; logins for "
        f"{meta.get('login_secs')} s; small files: {meta['small'][0]} sessions × "
        f"{meta['small'][1]} RETR of 16 KiB; memory: {meta.get('idle_mem_n')} idle sessions; "
        f"idle: {meta.get('idle_n')} sessions. MB = 10^6 bytes.\n"
    )
    ip = ", ".join(f"`{k}` {v:.0f} MB/s" for k, v in iperf.items() if v)
    out.append(f"{link_name} ceiling (one TCP stream, median of one run per repetition): {ip or 'not measured'}.\n")
    out.append("| server | " + " | ".join(c[1] for c in cols) + " |")
    out.append("|---|" + "---|" * len(cols))
    for s in servers:
        name = f"**{s}**" if s == "wharf" else s
        out.append(f"| {name} | " + " | ".join(cell(c, s) for c in cols) + " |")
    out.append("")
    out.append(
        "Logins: value (p50/p99 latency in ms, connect to 230). ⚠N: errors over all "
        "repetitions (failed logins, dropped or unfinished sessions, failed runs); see the "
        ".jsonl for samples. CPU s/GiB: the server's user+system CPU seconds per GiB moved "
        f"({meta.get('cpu_method', '/proc tree')})."
    )
    method = meta.get("cpu_method", "/proc tree")
    if not method.startswith("cgroup") and any(c[0].endswith("_cpu") for c in cols):
        out.append(
            "**CPU s/GiB here comes from the /proc process tree, which misses session processes "
            "that forking servers (vsftpd with its per-session PID namespace, proftpd, pure-ftpd) "
            "let exit unreaped by the tree; their figures are too low. Use a run with cgroup "
            "accounting for CPU.**"
        )
        out.append("")
    out.append("")

    # wharf against the best peer.
    if "wharf" in servers and len(servers) > 1:
        out.append("## wharf against the best peer\n")
        out.append("| scenario | wharf | best peer | wharf vs best peer |")
        out.append("|---|---|---|---|")
        for key, head, _, _, hib, fmt in cols:
            w = table.get((key, "wharf"))
            peers = [(table.get((key, s)), s) for s in servers if s != "wharf" and table.get((key, s)) is not None]
            if w is None or not peers:
                continue
            best, who = (max if hib else min)(peers)
            if hib:
                ratio = w / best if best else None
                verdict = "" if ratio is None else f"{ratio:.2f}×"
                if ratio is not None and ratio < 0.98:
                    verdict += f" — behind by {100 * (1 - ratio):.0f} %"
            else:
                # Lower is better: say how many times the best peer's cost wharf pays.
                ratio = w / best if best > 0 else None
                verdict = "" if ratio is None else f"{ratio:.2f}× the cost"
                if ratio is not None and ratio > 1.02:
                    verdict += f" — behind by {100 * (1 - 1 / ratio):.0f} %"
            out.append(f"| {head} | {fmt.format(w)} | {fmt.format(best)} ({who}) | {verdict} |")
        out.append("")

    out.append("## Versions\n")
    for k, v in meta.get("versions", {}).items():
        out.append(f"- {k}: {v}")
    out.append("")
    out.append("## Configuration notes and quirks\n")
    for k, v in meta.get("quirks", {}).items():
        out.append(f"- {k}: {v}")
    out.append("")

    out.append("## Contention and client cost\n")
    out.append(
        "foreign CPU = machine busy time during a measurement minus the server's and the load "
        "generator's own CPU: other work on the machine (builds, tests), kernel threads working "
        "for the server (softirq, namespace teardown), and, where server CPU was read from the "
        "/proc tree, session processes that escaped it. steal = time the hypervisor gave to "
        "other guests. client CPU = the load generator's. Medians per scenario over all "
        f"servers and repetitions, in CPU seconds per wall second (2.0 = both cores). Server "
        f"CPU method: {meta.get('cpu_method', '/proc tree')}.\n"
    )
    out.append("| scenario | foreign CPU/s | steal/s | client CPU/s | server CPU/s |")
    out.append("|---|---|---|---|---|")
    for sc in sorted({r["scenario"] for r in rows if r["server"] not in LINKS and r["scenario"] != "restart"}):
        rs = [r for r in rows if r["scenario"] == sc]

        def per_s(key):
            vals = []
            for r in rs:
                wall = r.get("window_s") or r.get("client_wall_s")
                if wall and r.get(key) is not None:
                    vals.append(r[key] / wall)
            return median(vals)

        fm = lambda x: "–" if x is None else f"{x:.2f}"  # noqa: E731
        cells = [fm(per_s(k)) for k in ("foreign_cpu_s", "steal_cpu_s", "client_cpu_s", "server_cpu_s")]
        out.append(f"| {sc} | " + " | ".join(cells) + " |")
    out.append("")
    out.append(f"Load average at start {meta.get('loadavg_start')}, at end {meta.get('loadavg_end')}; "
               f"busiest processes at start: {', '.join(meta.get('top_at_start', []))}.\n")
    restarts = [r for r in rows if r["scenario"] == "restart"]
    if restarts:
        out.append("## Servers found dead and restarted\n")
        for r in restarts:
            out.append(f"- {r['server']}: not answering in repetition {r['rep']} before `{r['before']}` "
                       "(it crashed or stopped listening in the scenario before; see the logs)")
        out.append("")
    samples = []
    for r in rows:
        for k in ("error_samples", "drop_samples"):
            for e in r.get(k) or []:
                samples.append(f"{r['server']} {r['scenario']}: {e}")
        if "error" in r:
            samples.append(f"{r['server']} {r['scenario']}: {r['error']}")
    if samples:
        out.append("## Error samples\n")
        seen = []
        for s in samples:
            if s not in seen:
                seen.append(s)
        for s in seen[:40]:
            out.append(f"- {s}")
        out.append("")
    out.append(f"Chart: [{svg_path.rsplit('/', 1)[-1]}]({svg_path.rsplit('/', 1)[-1]}).\n")
    open(md_path, "w").write("\n".join(out))
    write_svg(svg_path, meta, servers, cols, table)


COLORS = {
    "wharf": "#d62728",
    "vsftpd": "#1f77b4",
    "proftpd": "#2ca02c",
    "pure-ftpd": "#9467bd",
    "pyftpdlib": "#8c564b",
    "unftp": "#ff7f0e",
}


def write_svg(path, meta, servers, cols, table):
    groups = []
    proc_cpu = not meta.get("cpu_method", "/proc tree").startswith("cgroup")
    for key, head, _, _, hib, fmt in cols:
        if proc_cpu and key.endswith("_cpu"):
            continue  # /proc-tree CPU undercounts forking servers: not fit to compare
        vals = {s: table.get((key, s)) for s in servers}
        peers = [v for s, v in vals.items() if s != "wharf" and v]
        if not peers:
            continue
        best = max(peers) if hib else min(peers)
        norm = {}
        for s, v in vals.items():
            if v:
                norm[s] = (v / best) if hib else (best / v)
        groups.append((head + ("" if hib else " (lower is better)"), norm, {s: vals[s] for s in servers}, fmt))
    bar_h, gap, label_w, plot_w = 12, 14, 230, 520
    top = 60
    height = top + sum((len(servers) + 1) * bar_h + 2 + gap for _ in groups) + 40
    width = label_w + plot_w + 140
    maxn = max([1.25] + [min(v, 3.0) for _, n, _, _ in groups for v in n.values()])
    scale = plot_w / maxn
    e = html.escape
    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="20" font-size="14" font-weight="bold">wharf vs peers, {e(str(meta.get("date")))}'
        f'{" (quick run)" if meta.get("quick") else ""}'
        f'{"" if meta.get("link", "loopback") == "loopback" else ", " + e(link_of(meta)[1])}</text>',
        '<text x="10" y="38">Each bar: the server\'s median normalised to the best peer (1.0, dashed line); '
        "longer is better; capped at 3.0.</text>",
    ]
    x1 = label_w + scale
    y = top
    for title, norm, raw, fmt in groups:
        svg.append(f'<text x="10" y="{y + bar_h - 2}" font-weight="bold">{e(title)}</text>')
        y += bar_h + 2
        for i, s in enumerate(servers):
            yy = y + i * bar_h
            v = norm.get(s)
            svg.append(f'<text x="{label_w - 6}" y="{yy + bar_h - 2}" text-anchor="end">{e(s)}</text>')
            if v is None:
                svg.append(f'<text x="{label_w + 4}" y="{yy + bar_h - 2}" fill="#888">no result</text>')
                continue
            w = max(1.0, min(v, 3.0) * scale)
            stroke = ' stroke="black"' if s == "wharf" else ""
            svg.append(
                f'<rect x="{label_w}" y="{yy + 1}" width="{w:.1f}" height="{bar_h - 2}" '
                f'fill="{COLORS.get(s, "#777")}"{stroke}/>'
            )
            svg.append(
                f'<text x="{label_w + w + 4:.1f}" y="{yy + bar_h - 2}">{v:.2f} ({e(fmt.format(raw[s]))})</text>'
            )
        y += len(servers) * bar_h + gap
    svg.append(f'<line x1="{x1:.1f}" y1="{top - 4}" x2="{x1:.1f}" y2="{y}" stroke="black" stroke-dasharray="4,3"/>')
    svg.append("</svg>")
    open(path, "w").write("\n".join(svg))


if __name__ == "__main__":
    main()
