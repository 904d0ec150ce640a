#!/usr/bin/env python3
"""Fan-out benchmark: Gigvora Live against a plain Node Socket.IO 4 server, same load, same machine.

One command (from the repository root, after ``pip install -e .``)::

    .venv/bin/python benchmarks/fanout.py            # 3 interleaved rounds, prints the table
    .venv/bin/python benchmarks/fanout.py --write-results   # and appends it to RESULTS.md

Each round starts a fresh server (the Node reference in ``benchmarks/reference/`` and
``gigvora serve`` on a fresh data dir), pins it to its own core(s) with ``taskset``, drives it
with ``benchmarks/swarm.js`` (the official socket.io-client swarm) on the other core(s), then
stops it. Targets alternate order from round to round; the table shows medians over the valid
rounds. A round is rejected when the swarm reports any error, or when fewer messages were
delivered than the acked messages times the subscribers imply. A round where the swarm saturated
its cores while the server did not is marked client-bound: its throughput is a lower bound for
the server (``--strict`` rejects such rounds instead).

Only loopback addresses are used; every wait is bounded; child processes are killed on exit.
No third-party Python package is needed (tokens are signed with the standard library).
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import os
import platform
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
REFERENCE_DIR = BENCH_DIR / "reference"
SWARM_JS = BENCH_DIR / "swarm.js"
RESULTS_MD = BENCH_DIR / "RESULTS.md"
HOST = "127.0.0.1"
TARGET_LABELS = {"node": "Node reference", "naive": "naive python-socketio", "gigvora": "Gigvora",
                 "gigvora2": "Gigvora, 2 nodes + Redis"}
SHORT_LABELS = {"node": "Node", "naive": "naive", "gigvora": "Gigvora", "gigvora2": "Gigvora x2"}

_children: list[subprocess.Popen[bytes]] = []


# ------------------------------------------------------------------------------ processes


def _kill_group(proc: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """Stop a child started in its own session: SIGTERM, then SIGKILL after ``grace_s``."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def _kill_all_children() -> None:
    for proc in list(_children):
        _kill_group(proc, grace_s=3.0)


def _on_signal(signum: int, _frame: object) -> None:
    _kill_all_children()
    sys.exit(128 + signum)


def spawn(cmd: list[str], *, env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own process group (so its children die with it), output to ``log``."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _children.append(proc)
    return proc


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file (for error reports)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# ---------------------------------------------------------------------- process-tree sampling


def _descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = [root], [root]
    while frontier:
        children = [pid for pid, ppid in parents.items() if ppid in frontier]
        tree.extend(children)
        frontier = children
    return tree


def _cpu_and_rss(pids: list[int]) -> tuple[float, int]:
    """CPU seconds (user+system) and resident bytes summed over ``pids``."""
    ticks = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGE_SIZE")
    cpu, rss = 0.0, 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / ticks
            rss += int(fields[21]) * page
    return cpu, rss


class TreeSampler:
    """Samples CPU time and RSS of a process tree every 100 ms in a background thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, float, int]] = []  # (epoch s, cpu s, rss bytes)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        pids = _descendants(self.pid)
        refreshed = time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() - refreshed > 1.0:
                pids, refreshed = _descendants(self.pid), time.monotonic()
            cpu, rss = _cpu_and_rss(pids)
            self.samples.append((time.time(), cpu, rss))
            self._stop.wait(0.1)

    def cpu_cores_between(self, start: float, end: float) -> float | None:
        """Average cores used between two epoch times (nearest samples)."""
        inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2:
            return None
        first, last = inside[0], inside[-1]
        return (last[1] - first[1]) / max(1e-6, last[0] - first[0])

    def peak_rss(self) -> int:
        """The largest resident size seen."""
        return max((s[2] for s in self.samples), default=0)


# ---------------------------------------------------------------------------------- tokens


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint_token(secret: str, sub: str, name: str, ttl_s: int = 3600) -> str:
    """An HS256 access token with the claims of PROTOCOL.md: sub, name, roles, exp."""
    now = int(time.time())
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {"sub": sub, "name": name, "roles": ["member"], "iat": now, "exp": now + ttl_s}
    signing_input = ".".join(
        _b64(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def write_tokens(path: Path, secret: str, subscribers: int, publishers: int) -> None:
    """One token per connection: subscribers first, then publishers (swarm.js's order)."""
    names = [f"s{i}" for i in range(subscribers)] + [f"p{j}" for j in range(publishers)]
    lines = [mint_token(secret, f"bench-{n}", f"Bench {n.upper()}") for n in names]
    path.write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------- servers


@dataclasses.dataclass
class Plan:
    """What runs where, shared by every round."""

    args: argparse.Namespace
    workdir: Path
    secret: str
    token_file: Path
    server_prefix: list[str]
    client_prefix: list[str]
    server_cpus: list[int]
    client_cpus: list[int]
    # Used by suite.py's other scenarios (defaults: the fan-out scenario as before).
    swarm_extra: list[str] = dataclasses.field(default_factory=list)  # more swarm.js options
    node_env: dict[str, str] = dataclasses.field(default_factory=dict)  # reference server env
    prepare: Callable[[str, str], None] | None = None  # (target, url) after boot, before swarm


def server_command(
    target: str, plan: Plan, port: int, data_dir: Path
) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that start ``target`` on ``port``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIGVORA_")}
    if target == "node":
        env.update(HOST=HOST, PORT=str(port), **plan.node_env)
        return [*plan.server_prefix, "node", str(REFERENCE_DIR / "server.js"), str(port)], env
    if target == "naive":
        env.update(HOST=HOST, PORT=str(port))
        script = REFERENCE_DIR / "naive_socketio.py"
        return [*plan.server_prefix, sys.executable, str(script), str(port)], env
    env.update(
        GIGVORA_HOST=HOST,
        GIGVORA_PORT=str(port),
        GIGVORA_DATA_DIR=str(data_dir),
        GIGVORA_JWT_SECRET=plan.secret,
        GIGVORA_MESSAGE_RATE_PER_S="0",
        # The default install's moderation: the rule pipeline runs on every message; the
        # optional ML tier (extra `moderation-ml`) is off even if this venv has it.
        GIGVORA_MODERATION_ML="off",
    )
    for item in plan.args.gigvora_env:
        key, _, value = item.partition("=")
        env[key] = value
    return [*plan.server_prefix, plan.args.gigvora_bin, "serve"], env


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Poll ``GET /healthz`` until it answers 200, the process dies, or the timeout passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode} during boot")
        with contextlib.suppress(OSError, urllib.error.URLError):
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return
        time.sleep(0.1)
    raise RuntimeError(f"no healthy /healthz within {timeout_s:.0f} s")


def cluster_command(plan: Plan, ports: list[int], redis_port: int, data_dir: Path
                    ) -> tuple[list[str], dict[str, str]]:
    """One shell that runs redis-server and two Gigvora nodes sharing it and one SQLite file
    (so the sampler measures the whole cluster's CPU and memory)."""
    _, env = server_command("gigvora", plan, ports[0], data_dir)
    env["GIGVORA_REDIS_URL"] = f"redis://{HOST}:{redis_port}/0"
    nodes = " ".join(f"GIGVORA_PORT={p} {shlex.quote(plan.args.gigvora_bin)} serve &"
                     for p in ports)
    script = (f"redis-server --port {redis_port} --bind {HOST} --save '' --appendonly no "
              f"--dir {shlex.quote(str(data_dir))} & sleep 0.5; {nodes} wait")
    return [*plan.server_prefix, "bash", "-c", script], env


@contextlib.contextmanager
def running_server(target: str, plan: Plan, round_no: int
                   ) -> Iterator[tuple[str, int, Path, list[str]]]:
    """A fresh server (or cluster) for one round; yields (url, pid, log path, subscriber URLs)
    and always stops it."""
    ports = [free_port()] + ([free_port()] if target == "gigvora2" else [])
    data_dir = plan.workdir / f"{target}-round{round_no}"
    data_dir.mkdir()
    log = data_dir / "server.log"
    if target == "gigvora2":
        cmd, env = cluster_command(plan, ports, free_port(), data_dir)
    else:
        cmd, env = server_command(target, plan, ports[0], data_dir)
    proc = spawn(cmd, env=env, cwd=REPO_DIR, log=log)
    urls = [f"http://{HOST}:{port}" for port in ports]
    try:
        for url in urls:
            wait_healthy(url, proc, plan.args.boot_timeout)
        yield urls[0], proc.pid, log, urls
    finally:
        _kill_group(proc)
        _children.remove(proc)


# ------------------------------------------------------------------------------------ swarm


def run_swarm(plan: Plan, url: str, log: Path, sub_urls: list[str] | None = None
              ) -> tuple[dict[str, Any], str]:
    """Run swarm.js once against ``url``; returns its JSON report and its stderr."""
    a = plan.args
    cmd = [
        *plan.client_prefix,
        "node",
        str(SWARM_JS),
        "--url",
        url,
        "--token-file",
        str(plan.token_file),
        "--channel",
        a.channel,
        "--subscribers",
        str(a.subscribers),
        "--publishers",
        str(a.publishers),
        "--duration",
        str(a.duration),
        "--warmup",
        str(a.warmup),
        "--workers",
        str(a.workers),
        "--text-bytes",
        str(a.text_bytes),
        "--drain",
        str(a.drain),
        "--rate",
        str(a.rate),
        "--deflate",
        a.deflate,
    ]
    if a.publishers_join:
        cmd.append("--publishers-join")
    cmd += plan.swarm_extra
    if sub_urls and len(sub_urls) > 1:
        cmd += ["--sub-urls", ",".join(sub_urls)]
    budget = 30 + a.warmup + a.duration + a.drain + 60
    proc = subprocess.Popen(
        cmd,
        cwd=BENCH_DIR,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    _children.append(proc)
    try:
        out, err = proc.communicate(timeout=budget)
    except subprocess.TimeoutExpired:
        _kill_group(proc, grace_s=1)
        return {"ok": False, "errors": {"swarm_timeout": 1}}, ""
    finally:
        if proc in _children:
            _children.remove(proc)
    stderr = err.decode(errors="replace")
    lines = [ln for ln in out.decode(errors="replace").splitlines() if ln.startswith("{")]
    if not lines:
        return {"ok": False, "errors": {f"swarm_exit_{proc.returncode}": 1}}, stderr
    with log.open("a") as f:
        f.write(lines[-1] + "\n")
    return json.loads(lines[-1]), stderr


@dataclasses.dataclass
class Round:
    """The outcome of one target in one round."""

    target: str
    round_no: int
    report: dict[str, Any]
    server_cpu: float | None
    server_rss_mb: float
    problems: list[str]  # reasons the round is rejected
    client_bound: bool = False  # valid, but the swarm (not the server) was saturated

    @property
    def valid(self) -> bool:
        return not self.problems

    def figure(self, name: str) -> float | None:
        """A figure of the table from this round's report (None when absent)."""
        r = self.report
        deliveries = r.get("deliveries_per_s")
        per_cpu = None
        if isinstance(deliveries, int | float) and self.server_cpu:
            per_cpu = deliveries / self.server_cpu
        values: dict[str, Any] = {
            "deliveries_per_s": deliveries,
            "acks_per_s": r.get("acks_per_s"),
            "delivery_p50": (r.get("delivery_latency_ms") or {}).get("p50"),
            "delivery_p99": (r.get("delivery_latency_ms") or {}).get("p99"),
            "ack_p50": (r.get("ack_latency_ms") or {}).get("p50"),
            "ack_p99": (r.get("ack_latency_ms") or {}).get("p99"),
            "server_cpu": self.server_cpu,
            "deliveries_per_cpu_s": per_cpu,
            "client_cpu": (r.get("client_cpu") or {}).get("total"),
            "server_rss_mb": self.server_rss_mb,
        }
        value = values[name]
        return float(value) if isinstance(value, int | float) else None


def judge(report: dict[str, Any], server_cpu: float | None, plan: Plan) -> tuple[list[str], bool]:
    """Reasons to reject a round (empty when valid), and whether the swarm was the bottleneck."""
    problems = [f"{k} x{v}" for k, v in sorted((report.get("errors") or {}).items())]
    if report.get("error"):
        problems.append(str(report["error"]))
    expected = report.get("expected_deliveries")
    delivered = report.get("delivered_window_messages")
    if isinstance(expected, int) and isinstance(delivered, int) and delivered < expected:
        if not any(p.startswith("missing_deliveries") for p in problems):
            problems.append(f"delivered {delivered} < expected {expected}")
    if not problems and not report.get("ok", False):
        problems.append("swarm reported not ok")
    client_cpu = (report.get("client_cpu") or {}).get("total")
    client_bound = bool(
        plan.client_cpus
        and plan.server_cpus
        and isinstance(client_cpu, int | float)
        and client_cpu >= 0.85 * len(plan.client_cpus)
        and server_cpu is not None
        and server_cpu < 0.85 * len(plan.server_cpus)
    )
    if client_bound and plan.args.strict:
        problems.append(
            f"client-bound: swarm used {client_cpu:.2f} cores of {len(plan.client_cpus)}, "
            f"server only {server_cpu:.2f}"
        )
    return problems, client_bound


def run_round(target: str, plan: Plan, round_no: int) -> Round:
    """Boot a fresh ``target``, run the swarm against it, stop it, judge the outcome."""
    try:
        with running_server(target, plan, round_no) as (url, pid, log, urls):
            if plan.prepare is not None:
                plan.prepare(target, url)
            with TreeSampler(pid) as sampler:
                report, stderr = run_swarm(plan, url, log.with_name("swarm.json"), urls)
            start, end = report.get("window_start_us"), report.get("window_end_us")
            cpu = None
            if isinstance(start, int | float) and isinstance(end, int | float):
                cpu = sampler.cpu_cores_between(start / 1e6, end / 1e6)
            rss_mb = sampler.peak_rss() / 2**20
            if stderr.strip():
                report.setdefault("stderr", stderr.strip()[-2000:])
    except RuntimeError as exc:
        log = plan.workdir / f"{target}-round{round_no}" / "server.log"
        detail = tail(log)
        message = f"{target} did not start: {exc}" + (f"\n{detail}" if detail else "")
        return Round(target, round_no, {"ok": False}, None, 0.0, [message])
    problems, client_bound = judge(report, cpu, plan)
    return Round(target, round_no, report, cpu, rss_mb, problems, client_bound)


# ------------------------------------------------------------------------------------ table

FIGURES = [
    ("deliveries_per_s", "deliveries/s", "higher is better", 0),
    ("acks_per_s", "acks/s (messages stored and acked)", "higher is better", 0),
    ("delivery_p50", "delivery latency p50, ms", "lower is better", 1),
    ("delivery_p99", "delivery latency p99, ms", "lower is better", 1),
    ("ack_p50", "ack latency p50, ms", "lower is better", 1),
    ("ack_p99", "ack latency p99, ms", "lower is better", 1),
    ("server_cpu", "server CPU, cores busy", "", 2),
    ("deliveries_per_cpu_s", "deliveries per server CPU-second", "higher is better", 0),
    ("client_cpu", "swarm CPU, cores busy", "", 2),
    ("server_rss_mb", "server RSS peak, MB", "lower is better", 0),
]
THROUGHPUT = {"deliveries_per_s", "acks_per_s"}  # a lower bound when the swarm was saturated


def median_of(rounds: list[Round], figure: str) -> float | None:
    """Median of a figure over the valid rounds."""
    values = [v for r in rounds if r.valid and (v := r.figure(figure)) is not None]
    return statistics.median(values) if values else None


def paired_ratio(rounds: list[Round], target: str, figure: str) -> float | None:
    """Median over rounds of target/Node within the same round (robust to a drifting host)."""
    ratios = []
    for r in rounds:
        if r.target != target or not r.valid:
            continue
        node = next((n for n in rounds if n.target == "node" and n.round_no == r.round_no), None)
        a, b = r.figure(figure), node.figure(figure) if node and node.valid else None
        if a is not None and b:
            ratios.append(a / b)
    return statistics.median(ratios) if ratios else None


def fmt(value: float | None, digits: int) -> str:
    """A figure for the table ('—' when missing)."""
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def _cell(rounds: list[Round], key: str, digits: int, fixed_rate: bool) -> str:
    value = fmt(median_of(rounds, key), digits)
    valid = [r for r in rounds if r.valid]
    bound = any(r.client_bound for r in valid)
    if key in THROUGHPUT and value != "—" and bound and not fixed_rate:
        value = "≥ " + value  # the swarm was saturated: a lower bound
    if key == "deliveries_per_s" and len(valid) > 1:
        values = [v for r in valid if (v := r.figure(key)) is not None]
        value += f" ({fmt(min(values), 0)} to {fmt(max(values), 0)})"
    return value


def render_table(rounds: list[Round], targets: list[str], fixed_rate: bool = False) -> str:
    """The Markdown table of medians, with each target's ratio to the Node reference."""
    by_target = {t: [r for r in rounds if r.target == t] for t in targets}
    compared = [t for t in targets if t != "node"] if "node" in targets else []
    head = ["figure", *(TARGET_LABELS[t] for t in targets)]
    head += [f"{SHORT_LABELS[t]} / Node" for t in compared]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, label, better, digits in FIGURES:
        row = [label, *(_cell(by_target[t], key, digits, fixed_rate) for t in targets)]
        for t in compared:
            ratio = paired_ratio(rounds, t, key)
            text = "—" if ratio is None else f"{ratio:.2f}x"
            row.append(f"{text} ({better})" if better and ratio is not None else text)
        lines.append("| " + " | ".join(row) + " |")
    valid = [f"{sum(r.valid for r in by_target[t])}/{len(by_target[t])}" for t in targets]
    lines.append("| " + " | ".join(["valid rounds", *valid, *([""] * len(compared))]) + " |")
    bound = [
        TARGET_LABELS[t] for t in targets if any(r.valid and r.client_bound for r in by_target[t])
    ]
    if bound:
        what = (
            "latency there includes queueing in the load generator"
            if fixed_rate
            else "throughput there is a lower bound for the server"
        )
        lines.append(
            f"\n{'' if fixed_rate else '≥: '}In some rounds of {', '.join(bound)} the swarm "
            f"saturated its cores while the server did not: {what}."
        )
    return "\n".join(lines)


def render_rounds(rounds: list[Round], fixed_rate: bool = False) -> str:
    """One line per round, with the reasons a round was rejected."""
    out = []
    for r in rounds:
        figures = (
            f"deliveries/s {fmt(r.figure('deliveries_per_s'), 0)}, "
            f"acks/s {fmt(r.figure('acks_per_s'), 0)}, "
            f"p50/p99 {fmt(r.figure('delivery_p50'), 1)}/{fmt(r.figure('delivery_p99'), 1)} ms, "
            f"server cpu {fmt(r.server_cpu, 2)}, swarm cpu {fmt(r.figure('client_cpu'), 2)}"
        )
        status = "ok" if r.valid else "REJECTED: " + "; ".join(r.problems)
        if r.valid and r.client_bound:
            status += (
                " (swarm busy: latency includes load-generator queueing)"
                if fixed_rate
                else " (client-bound: throughput is a lower bound)"
            )
        order = r.report.get("order_violations")
        note = f", order violations {order}" if order else ""
        out.append(
            f"- round {r.round_no + 1} {TARGET_LABELS[r.target]}: {figures}{note} — {status}"
        )
    return "\n".join(out)


def describe_scenario(plan: Plan) -> str:
    """One paragraph saying what was measured and where things ran."""
    a = plan.args
    mode = f"fixed rate {a.rate:g} msg/s" if a.rate > 0 else "closed loop, back to back"
    deflate = "offered" if a.deflate == "offer" else "not offered"
    pin = (
        f"server on CPU {','.join(map(str, plan.server_cpus))}, "
        f"swarm on CPU {','.join(map(str, plan.client_cpus))}"
        if plan.server_prefix
        else "no CPU pinning"
    )
    return (
        f"One channel, {a.subscribers} subscribers, {a.publishers} publishers ({mode}), "
        f"{a.duration:g} s measured after {a.warmup:g} s warm-up; official socket.io-client "
        f"4.8 over WebSocket (permessage-deflate {deflate}), "
        f"{a.workers} subscriber processes + 1 publisher process; "
        f"{pin}; medians of {a.rounds} interleaved rounds, fresh server per round."
    )


def machine_description() -> str:
    """nproc, CPU model, kernel, Python, Node and package versions, Gigvora commit."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    node = _output(["node", "--version"])
    commit = _output(["git", "-C", str(REPO_DIR), "rev-parse", "--short", "HEAD"]) or "uncommitted"
    dirty = _output(["git", "-C", str(REPO_DIR), "status", "--porcelain", "--untracked-files=no"])
    return (
        f"{os.cpu_count()} CPUs ({model}), Linux {platform.release()}, "
        f"Python {platform.python_version()}, Node {node}, "
        f"socket.io {_locked_version(REFERENCE_DIR, 'socket.io')}, "
        f"socket.io-client {_locked_version(BENCH_DIR, 'socket.io-client')}, "
        f"Gigvora commit {commit}{' (with local changes)' if dirty else ''}"
    )


def _output(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _locked_version(directory: Path, package: str) -> str:
    with contextlib.suppress(OSError, KeyError, ValueError):
        lock = json.loads((directory / "package-lock.json").read_text())
        return str(lock["packages"][f"node_modules/{package}"]["version"])
    return "?"


def append_results(text: str) -> None:
    """Append a dated section to RESULTS.md (created with a heading if missing)."""
    if not RESULTS_MD.exists():
        RESULTS_MD.write_text(
            "# Benchmark results\n\n"
            "Appended by `benchmarks/fanout.py --write-results` and "
            "`benchmarks/suite.py --write-results`; newest last. "
            "See README.md for what each figure means.\n"
        )
    with RESULTS_MD.open("a") as f:
        f.write("\n" + text + "\n")


# ------------------------------------------------------------------------------------- main


def ensure_npm(directory: Path) -> None:
    """Install the pinned packages of ``directory`` (npm ci) when node_modules is missing."""
    if (directory / "node_modules").is_dir():
        return
    print(f"installing {directory.relative_to(REPO_DIR)} (npm ci)...", file=sys.stderr)
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=directory,
        check=True,
        timeout=600,
    )


def plan_cpus(args: argparse.Namespace) -> tuple[list[int], list[int]]:
    """Server and swarm CPU sets (empty lists: no pinning)."""
    if args.no_pin or not shutil.which("taskset"):
        return [], []
    allowed = sorted(os.sched_getaffinity(0))
    if args.server_cpus:
        server = [int(c) for c in args.server_cpus.split(",")]
    else:
        server = allowed[:1]
    client = [c for c in allowed if c not in server]
    if not client:
        return [], []
    return server, client


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (every default is the scenario of the issue)."""
    default_bin = REPO_DIR / ".venv" / "bin" / "gigvora"
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--targets",
        default="node,gigvora",
        help="comma list of node, gigvora and naive (a plain python-socketio server)",
    )
    p.add_argument("--subscribers", type=int, default=200)
    p.add_argument("--publishers", type=int, default=4)
    p.add_argument("--duration", type=float, default=10, help="measured seconds per round")
    p.add_argument("--warmup", type=float, default=1, help="unmeasured seconds before the window")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--workers", type=int, default=2, help="subscriber processes of the swarm")
    p.add_argument("--rate", type=float, default=0, help="fixed total msg/s instead of closed loop")
    p.add_argument("--channel", default="general")
    p.add_argument("--text-bytes", type=int, default=40, help="approximate message text length")
    p.add_argument(
        "--drain", type=float, default=10, help="max seconds to wait for late deliveries"
    )
    p.add_argument(
        "--deflate",
        choices=["offer", "off"],
        default="offer",
        help="offer permessage-deflate like browsers do (default) or not",
    )
    p.add_argument("--publishers-join", action="store_true", help="publishers join the channel too")
    p.add_argument("--boot-timeout", type=float, default=60)
    p.add_argument("--gigvora-bin", default=str(default_bin if default_bin.exists() else "gigvora"))
    p.add_argument(
        "--gigvora-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for gigvora serve (repeatable)",
    )
    p.add_argument("--server-cpus", default="", help="CPU list for the server (default: first)")
    p.add_argument("--no-pin", action="store_true", help="do not use taskset")
    p.add_argument(
        "--strict",
        action="store_true",
        help="reject rounds where the swarm, not the server, was saturated",
    )
    p.add_argument("--json", dest="json_out", default="", help="write every round's report here")
    p.add_argument("--write-results", action="store_true", help="append the table to RESULTS.md")
    args = p.parse_args(argv)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = [t for t in args.targets if t not in TARGET_LABELS]
    if unknown or not args.targets:
        p.error(f"unknown target(s): {unknown}; choose from node, gigvora, naive")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run every round, print the table, optionally append it to RESULTS.md."""
    args = parse_args(argv)
    atexit.register(_kill_all_children)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    if "gigvora" in args.targets and not shutil.which(args.gigvora_bin):
        print(
            f"error: {args.gigvora_bin} not found (pip install -e . first, or --targets node)",
            file=sys.stderr,
        )
        return 2
    ensure_npm(BENCH_DIR)
    if "node" in args.targets:
        ensure_npm(REFERENCE_DIR)
    server_cpus, client_cpus = plan_cpus(args)
    with tempfile.TemporaryDirectory(prefix="gigvora-fanout-") as tmp:
        workdir = Path(tmp)
        secret = secrets.token_urlsafe(36)  # 48 characters
        token_file = workdir / "tokens.txt"
        write_tokens(token_file, secret, args.subscribers, args.publishers)
        plan = Plan(
            args,
            workdir,
            secret,
            token_file,
            ["taskset", "-c", ",".join(map(str, server_cpus))] if server_cpus else [],
            ["taskset", "-c", ",".join(map(str, client_cpus))] if client_cpus else [],
            server_cpus,
            client_cpus,
        )
        print(describe_scenario(plan), file=sys.stderr)
        rounds: list[Round] = []
        for round_no in range(args.rounds):
            order = args.targets if round_no % 2 == 0 else list(reversed(args.targets))
            for target in order:
                result = run_round(target, plan, round_no)
                rounds.append(result)
                print(render_rounds([result], args.rate > 0), file=sys.stderr, flush=True)
    return report(args, plan, rounds)


def cluster_ratio_lines(rounds: list[Round], targets: list[str]) -> str:
    """Cross-node fan-out against single-node, as ratios of the medians (scale-out issue)."""
    if not {"gigvora", "gigvora2"} <= set(targets):
        return ""
    lines = ["", "", "| figure | 2 nodes + Redis / 1 node |", "|---|---|"]
    for key, label, better, _digits in FIGURES:
        one, two = median_of(rounds_of(rounds, "gigvora"), key), median_of(
            rounds_of(rounds, "gigvora2"), key)
        ratio = f"{two / one:.2f}x" if one and two is not None else "n/a"
        lines.append(f"| {label} | {ratio}{f' ({better})' if better else ''} |")
    return "\n".join(lines)


def rounds_of(rounds: list[Round], target: str) -> list[Round]:
    """The rounds of one target."""
    return [r for r in rounds if r.target == target]


def report(args: argparse.Namespace, plan: Plan, rounds: list[Round]) -> int:
    """Print (and optionally record) the results; 0 when every target has a valid round."""
    fixed_rate = args.rate > 0
    table = render_table(rounds, args.targets, fixed_rate)
    scenario = describe_scenario(plan)
    table += cluster_ratio_lines(rounds, args.targets)
    print(f"\n{scenario}\n\n{table}\n\n{render_rounds(rounds, fixed_rate)}")
    if args.json_out:
        Path(args.json_out).write_text(
            json.dumps([dataclasses.asdict(r) for r in rounds], indent=1)
        )
    if args.write_results:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        append_results(
            f"## {stamp}\n\nMachine: {machine_description()}.\n\n{scenario}\n\n{table}\n\n"
            f"Rounds:\n\n{render_rounds(rounds, fixed_rate)}\n"
        )
        print(f"\nappended to {RESULTS_MD.relative_to(REPO_DIR)}", file=sys.stderr)
    ok = all(any(r.valid for r in rounds if r.target == t) for t in args.targets)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
