// wharf's live dashboard: polls /ui/state every second and draws it. Every text from the
// server (user names, paths, addresses) goes into the page as text, never as markup.
"use strict";

let csrf = "";
let traceShown = null;

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function bytes(n) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return (i ? n.toFixed(1) : n) + " " + units[i];
}

function ago(s) {
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min";
  return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
}

function status(text) { $("#status").textContent = text; }

async function act(method, url, body, what) {
  if (!confirm(what + "?")) return;
  const headers = { "X-CSRF-Token": csrf };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(url, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  status(what + ": " + (r.ok ? "done" : "refused (" + r.status + ") " + (await r.text())));
  poll();
}

// Points are placed by time over the last ten minutes, the newest at the right edge.
function line(svg, history, key, max, color) {
  const w = 600, h = 140, n = history.length;
  if (n < 2) return;
  const now = history[n - 1].t;
  const pts = history.map((s) => {
    const x = w - ((now - s.t) / 600) * w;
    return x.toFixed(1) + "," + (h - 4 - (s[key] / max) * (h - 8)).toFixed(1);
  });
  const p = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  p.setAttribute("points", pts.join(" "));
  p.setAttribute("fill", "none");
  p.setAttribute("stroke-width", "2");
  p.setAttribute("stroke", color);
  p.setAttribute("vector-effect", "non-scaling-stroke");
  svg.append(p);
}

function charts(history) {
  const css = getComputedStyle(document.documentElement);
  const color = (v) => css.getPropertyValue(v).trim();
  const th = $("#chart-throughput"), se = $("#chart-sessions"), lo = $("#chart-logins");
  for (const s of [th, se, lo]) { s.replaceChildren(); s.dataset.points = history.length; }
  const maxRate = Math.max(1, ...history.map((s) => Math.max(s.up, s.down)));
  line(th, history, "up", maxRate, color("--up"));
  line(th, history, "down", maxRate, color("--down"));
  $("#max-throughput").textContent = "top " + bytes(maxRate) + "/s";
  const maxS = Math.max(1, ...history.map((s) => s.sessions));
  line(se, history, "sessions", maxS, color("--fg"));
  $("#max-sessions").textContent = "top " + maxS;
  // Logins and failures per minute, as bars: the last ten minutes.
  const now = history.length ? Math.floor(history[history.length - 1].t / 60) : 0;
  const minutes = new Map();
  for (const s of history) {
    const m = Math.floor(s.t / 60);
    const v = minutes.get(m) || { ok: 0, failed: 0 };
    v.ok += s.logins; v.failed += s.failures;
    minutes.set(m, v);
  }
  const maxL = Math.max(1, ...[...minutes.values()].map((r) => r.ok + r.failed));
  const bw = 600 / 10;
  for (const [m, r] of minutes) {
    const i = 9 - (now - m);
    if (i < 0) continue;
    let y = 136;
    for (const [v, c] of [[r.ok, "--ok"], [r.failed, "--bad"]]) {
      const hgt = (v / maxL) * 128;
      const b = document.createElementNS("http://www.w3.org/2000/svg", "rect");
      b.setAttribute("x", (i * bw + 4).toFixed(1)); b.setAttribute("width", (bw - 8).toFixed(1));
      b.setAttribute("y", (y - hgt).toFixed(1)); b.setAttribute("height", hgt.toFixed(1));
      b.setAttribute("fill", color(c));
      lo.append(b);
      y -= hgt;
    }
  }
  $("#max-logins").textContent = "top " + maxL + "/min";
  const last = history[history.length - 1];
  $("#rate-up").textContent = last ? bytes(last.up) + "/s" : "–";
  $("#rate-down").textContent = last ? bytes(last.down) + "/s" : "–";
}

function transferCell(t) {
  if (!t) return el("td", { class: "transfer" }, "");
  const arrow = t.direction === "upload" ? "↑ " : t.direction === "download" ? "↓ " : "";
  const bar = t.size
    ? el("progress", { max: t.size, value: t.bytes, class: "progress" })
    : el("span", { class: "bar progress" }, el("span"));
  const amount = t.size ? bytes(t.bytes) + " of " + bytes(t.size) : bytes(t.bytes);
  return el("td", { class: "transfer", "data-bytes": t.bytes },
    arrow, el("span", { class: "path", title: t.path }, t.path), " ", bar, " ",
    amount + ", " + bytes(t.bytes_per_second) + "/s");
}

function sessions(state) {
  const body = $("#sessions tbody");
  const rows = state.sessions.map((s) => {
    const traced = state.traced.includes(s.client) || (s.user && state.traced.includes(s.user));
    return el("tr", { "data-id": s.id },
      el("td", { class: "user" }, s.user || "(not logged in)"),
      el("td", { class: "host" }, s.host || ""),
      el("td", { class: "client" }, s.client),
      el("td", {}, s.tls ? "yes" : "no"),
      el("td", {}, ago(s.connected_seconds)),
      el("td", {}, s.command || ""),
      transferCell(s.transfer),
      el("td", { class: "row-actions" },
        el("button", { class: "kick danger", type: "button", onclick: () => act("POST", "/sessions/" + s.id + "/kick", undefined, "Kick session " + s.id) }, "Kick"),
        " ",
        el("button", { class: "ban danger", type: "button", onclick: () => act("POST", "/bans", { ip: s.client }, "Ban " + s.client) }, "Ban"),
        " ",
        el("button", { class: "trace", type: "button", onclick: () => act("POST", "/trace", { target: s.client, on: !traced }, (traced ? "Stop tracing " : "Trace ") + s.client) }, traced ? "Untrace" : "Trace"),
        " ",
        el("button", { class: "show-trace", type: "button", onclick: () => { traceShown = s.id; showTrace(); } }, "Show trace")));
  });
  body.replaceChildren(...rows);
  $("#sessions-total").textContent = state.sessions_total;
  $("#sessions-shown").textContent = state.sessions_total > state.sessions.length
    ? "(the " + state.sessions.length + " busiest of " + state.sessions_total + ")" : "";
}

async function showTrace() {
  if (traceShown === null) return;
  const r = await fetch("/sessions/" + traceShown + "/trace", { credentials: "same-origin" });
  const pre = $("#trace");
  pre.hidden = false;
  pre.textContent = r.ok
    ? "session " + traceShown + ":\n" + (await r.json()).join("\n")
    : "session " + traceShown + " has ended";
}

function bans(state) {
  const rows = state.bans.map((b) => el("tr", {},
    el("td", {}, b.ip), el("td", {}, ago(b.seconds_left) + " left"),
    el("td", {}, el("button", { class: "unban", type: "button", onclick: () => act("DELETE", "/bans/" + encodeURIComponent(b.ip), undefined, "Lift the ban of " + b.ip) }, "Unban"))));
  $("#bans tbody").replaceChildren(...rows);
}

function health(state) {
  const items = [];
  for (const s of state.health.storages) {
    items.push(el("li", { class: s.ok ? "good" : "bad" }, "storage " + s.name + " (" + s.location + "): " + (s.ok ? "reachable" : "unreachable — " + (s.error || ""))));
  }
  const c = state.health.cluster;
  if (c) {
    items.push(el("li", { class: c.database ? "good" : "bad" }, "database: " + (c.database ? "reachable" : "unreachable")));
    for (const n of c.nodes) items.push(el("li", {}, "node " + n.name + ": seen " + Math.round(n.seen_seconds_ago) + " s ago"));
  }
  if (!items.length) items.push(el("li", {}, "local storage only, no cluster"));
  $("#health").replaceChildren(...items);
  const range = state.passive_range;
  $("#passive").textContent = state.passive_in_use + (range ? " of " + (range[1] - range[0] + 1) : "");
  $("#node").textContent = state.node ? "· " + state.node : "";
}

async function poll() {
  try {
    const r = await fetch("/ui/state", { credentials: "same-origin" });
    if (r.status === 401 || r.status === 403) { location.reload(); return; }
    const state = await r.json();
    csrf = state.csrf;
    sessions(state);
    charts(state.history);
    bans(state);
    health(state);
    if (traceShown !== null) showTrace();
  } catch (e) {
    status("no answer from the server: " + e);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#reload").addEventListener("click", () => act("POST", "/reload", undefined, "Reload the configuration"));
  $("#logout").addEventListener("click", async () => {
    await fetch("/ui/logout", { method: "POST", headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" });
    location.reload();
  });
  $("#ban-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const ip = $("#ban-ip").value.trim();
    const secs = parseInt($("#ban-seconds").value, 10);
    act("POST", "/bans", secs > 0 ? { ip, seconds: secs } : { ip }, "Ban " + ip);
  });
  poll();
  setInterval(poll, 1000);
});
