// The operator console: readiness detail per dependency (`GET /readyz` with the session's
// bearer token), queue depths and key metrics (`GET /metrics`), live room telemetry
// (`GET /api/v1/rooms`, see ops-rooms.js), the configuration lint (`GET /ops/config`),
// refreshed every few seconds until paused. Operators and admins see all of it.

import { el } from "./dom.js";
import { loadRooms } from "./ops-rooms.js";
import { has, histogramQuantile, parseMetrics, sum } from "./prometheus.js";
import { SessionToken } from "./session-token.js";

const $ = (id) => document.getElementById(id);
const root = $("main");
const REFRESH_MS = Number(root.dataset.refreshMs) || 5000;

const ui = {
  updated: $("ops-updated"), pause: $("ops-pause"), refresh: $("ops-refresh"),
  error: $("ops-error"), overall: $("ready-overall"), readyRows: $("ready-rows"),
  queues: $("queues"), metrics: $("metrics"), lint: $("config-lint"),
  problems: $("config-problems"), configRows: $("config-rows"),
  rooms: { summary: $("rooms-summary"), rows: $("rooms-rows") },
};
const tokens = new SessionToken(() => window.location.assign("/login?next=/ops"));
const state = { paused: false, timer: null, running: false };

// rendering ------------------------------------------------------------------------------------

function statusBadge(status) {
  return el("span", { className: `pill pill-${status}`, text: status });
}

function observed(result) {
  if (result.observedValue === undefined) return "—";
  const value = typeof result.observedValue === "object"
    ? JSON.stringify(result.observedValue) : String(result.observedValue);
  return result.observedUnit ? `${value} ${result.observedUnit}` : value;
}

const SHOWN_ELSEWHERE = new Set(["status", "observedValue", "observedUnit", "gvCode",
  "componentType", "time", "durationMs"]);

function detail(result) {
  const parts = [];
  for (const [name, value] of Object.entries(result)) {
    if (SHOWN_ELSEWHERE.has(name)) continue;
    parts.push(`${name}: ${typeof value === "object" ? JSON.stringify(value) : value}`);
  }
  return parts.join("; ") || "—";
}

function renderReadiness(body, httpStatus) {
  ui.overall.replaceChildren(
    document.createTextNode("Overall: "), statusBadge(body.status),
    document.createTextNode(` (HTTP ${httpStatus}${body.uptimeSeconds !== undefined
      ? `, up ${Math.round(body.uptimeSeconds)} s` : ""})`));
  if (!body.checks) {
    ui.readyRows.replaceChildren(el("tr", {}, [el("td", {
      text: "The per-check detail needs the operator or admin role.", attrs: { colspan: "5" } })]));
    return;
  }
  const rows = [];
  for (const [name, results] of Object.entries(body.checks)) {
    for (const result of results) {
      const row = el("tr", {}, [
        el("th", { text: name, attrs: { scope: "row" } }),
        el("td", {}, [statusBadge(result.status)]),
        el("td", { text: observed(result) }),
        el("td", { className: "code", text: result.gvCode || "—" }),
        el("td", { className: "wrap", text: detail(result) }),
      ]);
      row.dataset.check = name;
      rows.push(row);
    }
  }
  ui.readyRows.replaceChildren(...rows);
}

function stat(term, value, note) {
  return [el("dt", { text: term }), el("dd", {}, [
    document.createTextNode(value),
    note ? el("span", { className: "stat-note", text: ` ${note}` }) : null,
  ])];
}

const integer = (n) => Math.round(n).toLocaleString();

function bytes(n) {
  if (n < 1024) return `${integer(n)} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function renderMetrics(samples) {
  const bus = has(samples, "gigvora_bus_pending")
    ? integer(sum(samples, "gigvora_bus_pending")) : "not used (no Redis bus on this node)";
  ui.queues.replaceChildren(
    ...stat("Store write queue", integer(sum(samples, "gigvora_store_write_queue_depth")), "writes waiting"),
    ...stat("Bus pending", bus),
    ...stat("Outbound buffered", bytes(sum(samples, "gigvora_outbound_buffered_bytes"))),
  );
  const perNamespace = samples.filter((s) => s.name === "gigvora_connections")
    .map((s) => `${s.labels.namespace}: ${integer(s.value)}`).join(", ");
  const p50 = histogramQuantile(samples, "gigvora_store_commit_seconds", 0.5);
  const p99 = histogramQuantile(samples, "gigvora_store_commit_seconds", 0.99);
  const ms = (seconds) => (seconds === null ? "—" : `${(seconds * 1000).toFixed(2)} ms`);
  ui.metrics.replaceChildren(
    ...stat("Connections", integer(sum(samples, "gigvora_connections")), perNamespace ? `(${perNamespace})` : ""),
    ...stat("Events ok", integer(sum(samples, "gigvora_events_total", (l) => l.outcome === "ok"))),
    ...stat("Events with errors", integer(sum(samples, "gigvora_events_total", (l) => l.outcome !== "ok"))),
    ...stat("Fan-out deliveries", integer(sum(samples, "gigvora_fanout_deliveries_total"))),
    ...stat("Store commit p50", ms(p50), p99 === null ? "" : `(p99 ${ms(p99)}, from histogram buckets)`),
    ...stat("Rate limited", integer(sum(samples, "gigvora_rate_limited_total")), "events refused"),
    ...stat("Slow-consumer disconnects", integer(sum(samples, "gigvora_slow_consumer_disconnects_total"))),
  );
}

function renderConfig(report) {
  ui.lint.replaceChildren(
    document.createTextNode("Config lint: "),
    statusBadge(report.ok ? "pass" : "fail"),
    document.createTextNode(report.ok ? " no problems found" : ` ${report.problems.length} `
      + `problem${report.problems.length === 1 ? "" : "s"} found`),
    document.createTextNode(` (environment ${report.env}).`));
  ui.problems.replaceChildren(...report.problems.map((problem) => el("li", { text: problem })));
  ui.configRows.replaceChildren(...Object.entries(report.settings).map(([name, value]) => el("tr", {}, [
    el("th", { text: name, attrs: { scope: "row" } }),
    el("td", { className: "wrap code", text: value === null ? "(unset)" : typeof value === "object"
      ? JSON.stringify(value) : String(value) }),
  ])));
}

// loading --------------------------------------------------------------------------------------

async function loadReadiness() {
  const response = await tokens.fetch("/readyz", { headers: { Accept: "application/health+json" } });
  renderReadiness(await response.json(), response.status); // 503 still carries the detail
}

async function loadMetrics() {
  const response = await tokens.fetch("/metrics", { headers: { Accept: "text/plain" } });
  if (!response.ok) throw new Error(`metrics: HTTP ${response.status}`);
  renderMetrics(parseMetrics(await response.text()));
}

async function loadConfig() {
  const response = await fetch("/ops/config", {
    credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`configuration: HTTP ${response.status}`);
  renderConfig(await response.json());
}

async function refresh({ withConfig = false } = {}) {
  if (state.running) return;
  state.running = true;
  const jobs = [loadReadiness(), loadMetrics(), loadRooms(tokens, ui.rooms)];
  if (withConfig) jobs.push(loadConfig());
  const failures = (await Promise.allSettled(jobs)).filter((r) => r.status === "rejected");
  state.running = false;
  const problems = failures.map((f) => f.reason?.message || String(f.reason));
  const text = problems.length ? `Could not refresh: ${problems.join("; ")}` : "";
  if (ui.error.textContent !== text) ui.error.textContent = text; // the alert speaks on change
  ui.updated.textContent = `Last updated ${new Date().toLocaleTimeString()}`
    + (state.paused ? " · auto-refresh paused" : ` · next in ${REFRESH_MS / 1000} s`);
  schedule();
}

function schedule() {
  clearTimeout(state.timer);
  if (!state.paused) state.timer = setTimeout(() => refresh(), REFRESH_MS);
}

ui.pause.addEventListener("click", () => {
  state.paused = !state.paused;
  ui.pause.textContent = state.paused ? "Resume auto-refresh" : "Pause auto-refresh";
  if (state.paused) {
    clearTimeout(state.timer);
    ui.updated.textContent = ui.updated.textContent.replace(/ · next in .*$/, " · auto-refresh paused");
  } else {
    refresh();
  }
});
ui.refresh.addEventListener("click", () => refresh({ withConfig: true }));
refresh({ withConfig: true });
