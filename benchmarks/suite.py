#!/usr/bin/env python3
"""The benchmark suite of issue 5: every figure, side by side with the Node reference, one command.

    .venv/bin/python benchmarks/suite.py --scenario all --write-results
    .venv/bin/python benchmarks/suite.py --scenario many-channels,join-storm

Scenarios (each boots a fresh server per round, pins it to its own core, drives it from the
other core(s), interleaves targets, and takes medians; see README.md):

* ``fanout``        one channel, 200 subscribers, 4 publishers back to back (``fanout.py``'s
                    default scenario) — deliveries/s, latency; Gigvora vs Node.
* ``many-channels`` 2,000 members in 200 channels, every member sends 1 msg/s on a fixed
                    schedule — deliveries/s and p50/p99 delivery latency; Gigvora vs Node.
* ``idle``          N idle connections (default 10,000) from a raw Engine.IO/Socket.IO client
                    (``idle.js``), held ~30 s (pings answered) — server RSS per connection.
* ``ack-latency``   1,000 msg/s sustained on a fixed schedule — p50/p99 ack latency (Gigvora's
                    ack means durably stored; goal p99 <= 10 ms). Node shown for context.
* ``join-storm``    1,000 connected clients join a channel holding 50 messages at the same
                    instant — time until every join is acked (goal <= 5 s). Node (with
                    HISTORY_LIMIT=50 in memory) shown for context.

``--write-results`` appends one dated section (machine description, one table per scenario) to
``RESULTS.md``. Loopback only; every wait is bounded; children are killed on exit (Ctrl-C too).
The machinery (process spawning, pinning, token minting, sampling, rounds, tables) is
``fanout.py``'s.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import dataclasses
import datetime as dt
import json
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fanout
from fanout import (
    BENCH_DIR,
    REFERENCE_DIR,
    REPO_DIR,
    TARGET_LABELS,
    Plan,
    Round,
    TreeSampler,
    fmt,
    mint_token,
)

SCENARIOS = ["fanout", "many-channels", "idle", "ack-latency", "join-storm"]
IDLE_JS = BENCH_DIR / "idle.js"


# ----------------------------------------------------------------------------------- helpers


def raise_fd_limit() -> tuple[int, int]:
    """Raise the soft open-files limit to the hard one (children inherit it); return both."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            target = hard if hard != resource.RLIM_INFINITY else 1 << 20
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def mint_file(path: Path, secret: str, subs: list[str]) -> None:
    """One member token per line for the given subjects."""
    lines = [mint_token(secret, sub, sub.replace("-", " ").title()) for sub in subs]
    path.write_text("\n".join(lines) + "\n")


def mint_roles(secret: str, sub: str, roles: list[str], ttl_s: int = 3600) -> str:
    """An HS256 token with explicit roles (fanout.mint_token always says member)."""
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    now = int(time.time())
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {"sub": sub, "name": sub, "roles": roles, "iat": now, "exp": now + ttl_s}
    signing_input = ".".join(
        b64(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def create_channels(url: str, secret: str, ids: list[str]) -> None:
    """Create public channels on a Gigvora server (POST /api/v1/channels as an admin)."""
    token = mint_roles(secret, "bench-admin", ["admin", "member"])
    for cid in ids:
        body = json.dumps({"id": cid, "name": cid}).encode()
        req = urllib.request.Request(
            f"{url}/api/v1/channels", data=body, method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            if exc.code != 409:  # already there is fine
                raise RuntimeError(f"creating channel {cid}: HTTP {exc.code} {exc.read()[:200]!r}"
                                   ) from None
        except OSError as exc:
            raise RuntimeError(f"creating channel {cid}: {exc}") from None


def make_plan(args: argparse.Namespace, workdir: Path, secret: str, token_file: Path,
              fanout_args: argparse.Namespace) -> Plan:
    """A fanout.Plan (pinning as fanout.py does) for one scenario's arguments."""
    server_cpus, client_cpus = fanout.plan_cpus(fanout_args)
    return Plan(
        fanout_args, workdir, secret, token_file,
        ["taskset", "-c", ",".join(map(str, server_cpus))] if server_cpus else [],
        ["taskset", "-c", ",".join(map(str, client_cpus))] if client_cpus else [],
        server_cpus, client_cpus,
    )


def common_fanout_argv(args: argparse.Namespace) -> list[str]:
    """Options every swarm-based scenario passes on to fanout.py's parser."""
    argv = ["--targets", args.targets, "--gigvora-bin", args.gigvora_bin]
    if args.no_pin:
        argv.append("--no-pin")
    if args.server_cpus:
        argv += ["--server-cpus", args.server_cpus]
    for item in args.gigvora_env:
        argv += ["--gigvora-env", item]
    return argv


def pin_text(plan: Plan) -> str:
    if not plan.server_prefix:
        return "no CPU pinning"
    return (f"server on CPU {','.join(map(str, plan.server_cpus))}, "
            f"load generator on CPU {','.join(map(str, plan.client_cpus))}")


@dataclasses.dataclass
class Section:
    """One scenario's outcome: a title, what was measured, a table, per-round lines, verdicts."""

    name: str
    title: str
    scenario: str
    table: str
    rounds: str
    verdicts: list[str]
    ok: bool
    raw: list[dict[str, Any]]

    def markdown(self) -> str:
        verdicts = "\n".join(f"- {v}" for v in self.verdicts)
        return (f"### {self.title}\n\n{self.scenario}\n\n{self.table}\n\n"
                f"{verdicts}\n\nRounds:\n\n{self.rounds}\n")


def run_interleaved(plan: Plan, targets: list[str], rounds: int) -> list[Round]:
    """fanout.run_round for each target and round, order alternating round to round."""
    out: list[Round] = []
    for round_no in range(rounds):
        order = targets if round_no % 2 == 0 else list(reversed(targets))
        for target in order:
            result = fanout.run_round(target, plan, round_no)
            out.append(result)
            print(fanout.render_rounds([result], plan.args.rate > 0 or bool(plan.swarm_extra)),
                  file=sys.stderr, flush=True)
    return out


def ratio(rounds: list[Round], key: str) -> float | None:
    return fanout.paired_ratio(rounds, "gigvora", key)


def noisy_note(rounds: list[Round], key: str) -> str:
    """'noisy' when the valid rounds of a target spread by more than 30 % around the median."""
    notes = []
    for target in sorted({r.target for r in rounds}):
        values = [v for r in rounds if r.target == target and r.valid
                  and (v := r.figure(key)) is not None]
        if len(values) >= 2:
            med = statistics.median(values)
            if med and (max(values) - min(values)) / med > 0.3:
                notes.append(f"{TARGET_LABELS[target]} {fmt(min(values), 1)} to "
                             f"{fmt(max(values), 1)}")
    return ("noisy: per-round " + key.replace("_", " ") + " " + "; ".join(notes)) if notes else ""


# --------------------------------------------------------------------------- swarm scenarios


def swarm_section(name: str, title: str, args: argparse.Namespace, workdir: Path, secret: str,
                  fanout_argv: list[str], *, swarm_extra: list[str] | None = None,
                  prepare: Any = None, node_env: dict[str, str] | None = None,
                  describe: str, goals: Any) -> Section:
    """Run a swarm.js-driven scenario through fanout.py's machinery."""
    fargs = fanout.parse_args(fanout_argv)
    sub_dir = workdir / name
    sub_dir.mkdir()
    token_file = sub_dir / "tokens.txt"
    fanout.write_tokens(token_file, secret, fargs.subscribers, fargs.publishers)
    plan = make_plan(args, sub_dir, secret, token_file, fargs)
    plan.swarm_extra = swarm_extra or []
    plan.prepare = prepare
    plan.node_env = node_env or {}
    scenario = f"{describe} {pin_text(plan)}; medians of {fargs.rounds} interleaved rounds, " \
               f"fresh server per round."
    print(f"\n== {title}\n{scenario}", file=sys.stderr, flush=True)
    rounds = run_interleaved(plan, fargs.targets, fargs.rounds)
    fixed = True if swarm_extra or fargs.rate > 0 else False
    table = fanout.render_table(rounds, fargs.targets, fixed)
    verdicts = [v for v in goals(rounds) if v]
    ok = all(any(r.valid for r in rounds if r.target == t) for t in fargs.targets)
    return Section(name, title, scenario, table, fanout.render_rounds(rounds, fixed), verdicts,
                   ok, [dataclasses.asdict(r) for r in rounds])


def compare_goal(rounds: list[Round], what: str) -> list[str]:
    """The '>= 1.0x, p99 <= reference' verdicts of the fan-out style scenarios."""
    out = []
    gigvora = fanout.rounds_of(rounds, "gigvora")
    if gigvora and not any(r.valid for r in gigvora):
        # No valid round: say what it did manage, and why the rounds were rejected.
        def med(key: str, digits: int) -> str:
            values = [v for r in gigvora if (v := r.figure(key)) is not None]
            return fmt(statistics.median(values), digits) if values else "—"
        problems = sorted({p.split(" x")[0] for r in gigvora for p in r.problems})
        out.append(f"{what}: goal NOT met — no valid Gigvora round: it acked "
                   f"{med('acks_per_s', 0)} msg/s and delivered {med('deliveries_per_s', 0)}/s "
                   f"(medians of the rejected rounds) with its core at "
                   f"{med('server_cpu', 2)}; errors: {', '.join(problems)}")
    g = fanout.median_of(gigvora, "deliveries_per_s")
    n = fanout.median_of(fanout.rounds_of(rounds, "node"), "deliveries_per_s")
    r = ratio(rounds, "deliveries_per_s")
    if g is not None and n is not None and r is not None:
        out.append(f"{what} deliveries/s: Gigvora {fmt(g, 0)} vs Node {fmt(n, 0)} "
                   f"({r:.2f}x) — goal >= 1.0x {'met' if r >= 0.995 else 'NOT met'}")
    g99 = fanout.median_of(fanout.rounds_of(rounds, "gigvora"), "delivery_p99")
    n99 = fanout.median_of(fanout.rounds_of(rounds, "node"), "delivery_p99")
    if g99 is not None and n99 is not None:
        out.append(f"delivery p99: Gigvora {fmt(g99, 1)} ms vs Node {fmt(n99, 1)} ms — goal "
                   f"p99 <= reference {'met' if g99 <= n99 else 'NOT met'}")
    out.append(noisy_note(rounds, "delivery_p99"))
    out.append(noisy_note(rounds, "deliveries_per_s"))
    return out


def scenario_fanout(args: argparse.Namespace, workdir: Path, secret: str) -> Section:
    argv = [*common_fanout_argv(args), "--rounds", str(args.rounds),
            "--duration", str(args.duration)]
    return swarm_section(
        "fanout", "Fan-out: one channel, 200 subscribers, 4 publishers back to back", args,
        workdir, secret, argv,
        describe=("One channel, 200 subscribers, 4 publishers in a closed loop (fanout.py's "
                  f"default scenario), {args.duration:g} s measured after 1 s warm-up; official "
                  "socket.io-client 4.8 (swarm.js, 2 subscriber processes + 1 publisher "
                  "process);"),
        goals=lambda rounds: compare_goal(rounds, "fan-out"))


def scenario_many_channels(args: argparse.Namespace, workdir: Path, secret: str) -> Section:
    members, channels, rate = args.members, args.member_channels, args.member_rate
    argv = [*common_fanout_argv(args), "--rounds", str(args.rounds),
            "--duration", str(args.duration), "--warmup", "2",
            "--subscribers", str(members), "--publishers", "0", "--channel", "mc",
            "--workers", str(args.workers), "--drain", "10"]
    ids = [f"mc-{i}" for i in range(channels)] if channels > 1 else ["mc"]

    def prepare(target: str, url: str) -> None:
        if target != "node":
            create_channels(url, secret, ids)

    return swarm_section(
        "many-channels",
        f"Many channels: {members:,} members in {channels} channels, {rate:g} msg/s each",
        args, workdir, secret, argv,
        swarm_extra=["--channels", str(channels), "--member-rate", str(rate),
                     "--connect-concurrency", "100"],
        prepare=prepare,
        describe=(f"{members:,} members spread evenly over {channels} channels "
                  f"({members // max(1, channels)} per channel); every member sends "
                  f"{rate:g} msg/s into its channel on a fixed schedule (open loop, latency from "
                  f"the due time), so {members * rate:,.0f} msg/s stored and "
                  f"{members * rate * members / max(1, channels):,.0f} deliveries/s expected "
                  f"(sender included); {args.duration:g} s measured after 2 s warm-up; official "
                  f"socket.io-client 4.8 (swarm.js --member-rate, {args.workers} processes);"),
        goals=lambda rounds: compare_goal(rounds, "many-channels"))


def scenario_ack_latency(args: argparse.Namespace, workdir: Path, secret: str) -> Section:
    rate, pubs = args.ack_rate, args.ack_publishers
    argv = [*common_fanout_argv(args), "--rounds", str(args.rounds),
            "--duration", str(max(args.duration, 20)), "--warmup", "2",
            "--subscribers", "20", "--publishers", str(pubs), "--rate", str(rate)]

    def goals(rounds: list[Round]) -> list[str]:
        p99 = fanout.median_of(fanout.rounds_of(rounds, "gigvora"), "ack_p99")
        acks = fanout.median_of(fanout.rounds_of(rounds, "gigvora"), "acks_per_s")
        out = []
        if p99 is not None:
            worst = max((v for r in fanout.rounds_of(rounds, "gigvora") if r.valid
                         and (v := r.figure("ack_p99")) is not None), default=p99)
            out.append(f"Gigvora durable ack p99 {fmt(p99, 1)} ms at {fmt(acks, 0)} msg/s "
                       f"(worst round {fmt(worst, 1)} ms) — goal p99 <= 10 ms "
                       f"{'met' if p99 <= 10 else 'NOT met'}")
        out.append(noisy_note(rounds, "ack_p99"))
        return out

    return swarm_section(
        "ack-latency", f"Durable ack latency at {rate:,.0f} msg/s sustained", args, workdir,
        secret, argv,
        describe=(f"{pubs} publishers together send {rate:,.0f} msg/s on a fixed schedule "
                  f"(open loop) into one channel with 20 subscribers, "
                  f"{max(args.duration, 20):g} s measured after 2 s warm-up; ack latency = "
                  "send -> ack (for Gigvora: after the message is durably stored, SQLite WAL "
                  "synchronous=FULL); Node acks from memory (context only);"),
        goals=goals)


# ----------------------------------------------------------------------------- join storm


def scenario_join_storm(args: argparse.Namespace, workdir: Path, secret: str) -> Section:
    clients, history = args.storm_clients, args.storm_history
    fargs = fanout.parse_args([*common_fanout_argv(args), "--rounds", str(args.rounds),
                               "--subscribers", str(clients), "--publishers", "1"])
    sub_dir = workdir / "join-storm"
    sub_dir.mkdir()
    token_file = sub_dir / "tokens.txt"
    fanout.write_tokens(token_file, secret, clients, 1)
    plan = make_plan(args, sub_dir, secret, token_file, fargs)
    plan.node_env = {"HISTORY_LIMIT": str(history)}
    scenario = (f"{clients:,} clients (official socket.io-client 4.8, {args.workers} processes) "
                f"connect (timed: connect, up to 500 handshakes in flight), then all emit "
                f"`channel:join` on `general` at the same instant; the channel holds {history} "
                f"messages, so every join ack carries {history} messages of history (checked). "
                f"Figure: time from the storm's start to the last join ack. Node keeps the last "
                f"{history} messages in memory (HISTORY_LIMIT) — context only. {pin_text(plan)}; "
                f"medians of {fargs.rounds} interleaved rounds, fresh server per round.")
    print(f"\n== join storm\n{scenario}", file=sys.stderr, flush=True)
    results: list[dict[str, Any]] = []
    for round_no in range(fargs.rounds):
        order = fargs.targets if round_no % 2 == 0 else list(reversed(fargs.targets))
        for target in order:
            res = storm_round(plan, target, round_no, clients, history, args.workers)
            results.append(res)
            print(f"- round {round_no + 1} {TARGET_LABELS[target]}: {storm_line(res)}",
                  file=sys.stderr, flush=True)
    rows = [("connect_s", "connect all, s", 2),
            ("join_storm_s", "join storm: all joins acked, s", 2),
            ("join_p50", "join ack latency p50, ms", 0),
            ("join_p99", "join ack latency p99, ms", 0),
            ("server_cpu", "server CPU during storm, cores", 2),
            ("server_rss_mb", "server RSS peak, MB", 0)]
    table = simple_table(results, fargs.targets, rows, ratio_keys={"join_storm_s", "connect_s"})
    verdicts = []
    med = median_field(results, "gigvora", "join_storm_s")
    tot = median_field(results, "gigvora", "total_s")
    if med is not None:
        verdicts.append(f"Gigvora: {clients:,} joins with {history} messages of history acked in "
                        f"{med:.2f} s (connect + join: {fmt(tot, 2)} s) — goal <= 5 s "
                        f"{'met' if med <= 5 else 'NOT met'}")
    ok = all(any(r["valid"] for r in results if r["target"] == t) for t in fargs.targets)
    title = f"Join storm: {clients:,} joins with {history} messages of history"
    return Section("join-storm", title, scenario, table, "\n".join(f"- round {r['round'] + 1} "
                                              f"{TARGET_LABELS[r['target']]}: {storm_line(r)}"
                                              for r in results), verdicts, ok, results)


def storm_round(plan: Plan, target: str, round_no: int, clients: int, history: int,
                workers: int) -> dict[str, Any]:
    cmd = [*plan.client_prefix, "node", str(BENCH_DIR / "swarm.js"), "--url", "{url}",
           "--token-file", str(plan.token_file), "--subscribers", str(clients),
           "--workers", str(workers), "--join-storm", "--history", str(history),
           "--channel", "general", "--connect-concurrency", "500", "--ack-timeout", "30"]
    res: dict[str, Any] = {"target": target, "round": round_no, "valid": False}
    try:
        with fanout.running_server(target, plan, round_no) as (url, pid, _log, _urls):
            with TreeSampler(pid) as sampler:
                report = run_json([c.replace("{url}", url) for c in cmd], 180)
            start, storm_s = report.get("storm_start_us"), report.get("join_storm_s")
            if isinstance(start, int | float) and isinstance(storm_s, int | float):
                end = start / 1e6 + storm_s
                res["server_cpu"] = sampler.cpu_cores_between(start / 1e6 - 0.2, end + 0.2)
            res["server_rss_mb"] = sampler.peak_rss() / 2**20
    except RuntimeError as exc:
        res["problems"] = [f"{target} did not start: {exc}"]
        return res
    res["report"] = report
    res["connect_s"] = report.get("connect_s")
    res["join_storm_s"] = report.get("join_storm_s")
    lat = report.get("join_ack_latency_ms") or {}
    res["join_p50"], res["join_p99"] = lat.get("p50"), lat.get("p99")
    if isinstance(res["connect_s"], int | float) and isinstance(res["join_storm_s"], int | float):
        res["total_s"] = res["connect_s"] + res["join_storm_s"]
    res["problems"] = [f"{k} x{v}" for k, v in sorted((report.get("errors") or {}).items())]
    if report.get("error"):
        res["problems"].append(str(report["error"]))
    res["valid"] = bool(report.get("ok")) and not res["problems"]
    return res


def storm_line(r: dict[str, Any]) -> str:
    text = (f"connect {fmt(r.get('connect_s'), 2)} s, storm {fmt(r.get('join_storm_s'), 2)} s, "
            f"join p50/p99 {fmt(r.get('join_p50'), 0)}/{fmt(r.get('join_p99'), 0)} ms, "
            f"history {((r.get('report') or {}).get('history_min'))}, "
            f"server cpu {fmt(r.get('server_cpu'), 2)}")
    return text + (" — ok" if r["valid"] else " — REJECTED: " + "; ".join(r.get("problems", [])))


# ----------------------------------------------------------------------------------- idle


def scenario_idle(args: argparse.Namespace, workdir: Path, secret: str) -> Section:
    n, hold, users = args.idle_connections, args.idle_hold, args.idle_users or args.idle_connections
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    fargs = fanout.parse_args([*common_fanout_argv(args), "--rounds", str(args.idle_rounds)])
    sub_dir = workdir / "idle"
    sub_dir.mkdir()
    token_file = sub_dir / "tokens.txt"
    mint_file(token_file, secret, [f"idle-{i}" for i in range(users)])
    plan = make_plan(args, sub_dir, secret, token_file, fargs)
    workers = max(args.workers, (n + 4999) // 5000)
    fd_note = (f"open-files limit {soft}/{hard} (soft/hard) after raising"
               + (" — too low for the server's connections" if soft < n + 200 else ""))
    scenario = (f"{n:,} concurrent idle Socket.IO connections to `/` over WebSocket "
                f"({users:,} distinct users), opened by `idle.js` (raw Engine.IO v4 / Socket.IO "
                f"v5 handshake over the `ws` package, {workers} processes, 100 handshakes in "
                f"flight per process), then held {hold:g} s; every server ping must be answered "
                f"and every connection still open at the end. Server RSS per connection = (median "
                f"RSS over the last 10 s of the hold minus median RSS before connecting) / N. "
                f"{fd_note}. {pin_text(plan)}; {fargs.rounds} round(s) per target, "
                f"interleaved, fresh server per round.")
    print(f"\n== idle\n{scenario}", file=sys.stderr, flush=True)
    results = []
    for round_no in range(fargs.rounds):
        order = fargs.targets if round_no % 2 == 0 else list(reversed(fargs.targets))
        for target in order:
            res = idle_round(plan, target, round_no, n, hold, workers)
            results.append(res)
            print(f"- round {round_no + 1} {TARGET_LABELS[target]}: {idle_line(res)}",
                  file=sys.stderr, flush=True)
    rows = [("connected", "connected", 0), ("open_at_end", f"still open after {hold:g} s", 0),
            ("connect_s", "time to connect all, s", 1),
            ("rss_base_mb", "server RSS before, MB", 0), ("rss_hold_mb", "server RSS held, MB", 0),
            ("kb_per_conn", "server RSS per connection, KB", 1),
            ("hold_cpu", "server CPU while idle, cores", 3),
            ("pushed_frames", "frames pushed to the idle clients", 0)]
    table = simple_table(results, fargs.targets, rows, ratio_keys={"kb_per_conn", "connect_s"})
    verdicts = []
    g = median_field(results, "gigvora", "kb_per_conn")
    nd = median_field(results, "node", "kb_per_conn")
    ok_g = any(r["valid"] for r in results if r["target"] == "gigvora")
    if g is not None:
        held = "all held" if ok_g else "NOT all held"
        line = f"Gigvora: {n:,} concurrent connections {held} for {hold:g} s, {g:.1f} KB each"
        if nd is not None:
            line += (f" vs Node {nd:.1f} KB — goal <= reference "
                     f"{'met' if g <= nd else 'NOT met'}")
        verdicts.append(line)
    pushed = median_field(results, "gigvora", "pushed_frames")
    if pushed:
        verdicts.append(f"Gigvora pushed {pushed:,.0f} frames to the idle clients while they "
                        f"connected (a presence broadcast to every socket per user coming "
                        f"online: O(N²)); connecting all took "
                        f"{fmt(median_field(results, 'gigvora', 'connect_s'), 1)} s vs Node "
                        f"{fmt(median_field(results, 'node', 'connect_s'), 1)} s")
    ok = all(any(r["valid"] for r in results if r["target"] == t) for t in fargs.targets)
    return Section("idle", f"Idle connections: {n:,} concurrent", scenario, table,
                   "\n".join(f"- round {r['round'] + 1} {TARGET_LABELS[r['target']]}: "
                             f"{idle_line(r)}" for r in results), verdicts, ok, results)


def idle_round(plan: Plan, target: str, round_no: int, n: int, hold: float, workers: int
               ) -> dict[str, Any]:
    res: dict[str, Any] = {"target": target, "round": round_no, "valid": False}
    cmd = [*plan.client_prefix, "node", str(IDLE_JS), "--url", "{url}", "--token-file",
           str(plan.token_file), "--connections", str(n), "--workers", str(workers),
           "--hold", str(hold), "--connect-concurrency", "100", "--pre-delay", "3",
           "--connect-timeout", "120"]
    try:
        with fanout.running_server(target, plan, round_no) as (url, pid, _log, _urls):
            time.sleep(1)  # let the fresh server settle before the baseline
            with TreeSampler(pid) as sampler:
                report = run_json([c.replace("{url}", url) for c in cmd],
                                  3 + 240 + hold + 60)
            samples = sampler.samples
    except RuntimeError as exc:
        res["problems"] = [f"{target} did not start: {exc}"]
        return res
    res["report"] = report
    for key in ("connected", "open_at_end", "connect_s", "pushed_frames"):
        res[key] = report.get(key)
    start, h0, h1 = (report.get(k) for k in ("start_us", "hold_start_us", "hold_end_us"))
    if all(isinstance(v, int | float) for v in (start, h0, h1)):
        base = [s[2] for s in samples if s[0] < start / 1e6]
        held = [s[2] for s in samples if max(h0 / 1e6, h1 / 1e6 - 10) <= s[0] <= h1 / 1e6]
        if base and held:
            res["rss_base_mb"] = statistics.median(base) / 2**20
            res["rss_hold_mb"] = statistics.median(held) / 2**20
            connected = report.get("connected") or 0
            if connected:
                res["kb_per_conn"] = (statistics.median(held) - statistics.median(base)) \
                    / connected / 1024
        inside = [s for s in samples if h0 / 1e6 <= s[0] <= h1 / 1e6]
        if len(inside) >= 2:
            span = max(1e-6, inside[-1][0] - inside[0][0])
            res["hold_cpu"] = (inside[-1][1] - inside[0][1]) / span
    res["problems"] = [f"{k} x{v}" for k, v in sorted((report.get("errors") or {}).items())]
    if report.get("error"):
        res["problems"].append(str(report["error"]))
    res["valid"] = bool(report.get("ok")) and not res["problems"]
    return res


def idle_line(r: dict[str, Any]) -> str:
    text = (f"connected {fmt(r.get('connected'), 0)}, open at end {fmt(r.get('open_at_end'), 0)}, "
            f"connect {fmt(r.get('connect_s'), 1)} s, RSS {fmt(r.get('rss_base_mb'), 0)} -> "
            f"{fmt(r.get('rss_hold_mb'), 0)} MB ({fmt(r.get('kb_per_conn'), 1)} KB/conn), "
            f"pushed frames {fmt(r.get('pushed_frames'), 0)}")
    return text + (" — ok" if r["valid"] else " — REJECTED: " + "; ".join(r.get("problems", [])))


# -------------------------------------------------------------------------- shared tables


def run_json(cmd: list[str], budget_s: float) -> dict[str, Any]:
    """Run a load generator that prints one JSON line; its report (or an error report)."""
    proc = subprocess.Popen(cmd, cwd=BENCH_DIR, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    fanout._children.append(proc)
    try:
        out, err = proc.communicate(timeout=budget_s)
    except subprocess.TimeoutExpired:
        fanout._kill_group(proc, grace_s=1)
        return {"ok": False, "error": "load generator timed out"}
    finally:
        if proc in fanout._children:
            fanout._children.remove(proc)
    lines = [ln for ln in out.decode(errors="replace").splitlines() if ln.startswith("{")]
    if not lines:
        return {"ok": False, "error": f"exit {proc.returncode}: {err.decode()[-500:]}"}
    return dict(json.loads(lines[-1]))


def median_field(results: list[dict[str, Any]], target: str, key: str) -> float | None:
    values = [r[key] for r in results if r["target"] == target and r["valid"]
              and isinstance(r.get(key), int | float)]
    return statistics.median(values) if values else None


def simple_table(results: list[dict[str, Any]], targets: list[str],
                 rows: list[tuple[str, str, int]], ratio_keys: set[str]) -> str:
    compared = "gigvora" in targets and "node" in targets
    head = ["figure", *(TARGET_LABELS[t] for t in targets)] + (["Gigvora / Node"] if compared
                                                               else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, label, digits in rows:
        cells = [fmt(median_field(results, t, key), digits) for t in targets]
        if compared:
            g, n = median_field(results, "gigvora", key), median_field(results, "node", key)
            cells.append(f"{g / n:.2f}x (lower is better)" if key in ratio_keys and g is not None
                         and n else "")
        lines.append("| " + " | ".join([label, *cells]) + " |")
    valid = [f"{sum(r['valid'] for r in results if r['target'] == t)}/"
             f"{sum(r['target'] == t for r in results)}" for t in targets]
    lines.append("| " + " | ".join(["valid rounds", *valid] + ([""] if compared else [])) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    default_bin = REPO_DIR / ".venv" / "bin" / "gigvora"
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", default="all",
                   help=f"comma list of {', '.join(SCENARIOS)}, or all")
    p.add_argument("--targets", default="node,gigvora", help="node and/or gigvora")
    p.add_argument("--rounds", type=int, default=3, help="rounds per target (swarm scenarios, "
                   "join storm)")
    p.add_argument("--duration", type=float, default=10, help="measured seconds per round")
    p.add_argument("--workers", type=int, default=2, help="load-generator processes")
    p.add_argument("--members", type=int, default=2000)
    p.add_argument("--member-channels", type=int, default=200)
    p.add_argument("--member-rate", type=float, default=1.0, help="msg/s per member")
    p.add_argument("--idle-connections", type=int, default=10000)
    p.add_argument("--idle-users", type=int, default=0,
                   help="distinct users among the idle connections (default: one per connection)")
    p.add_argument("--idle-hold", type=float, default=30)
    p.add_argument("--idle-rounds", type=int, default=1)
    p.add_argument("--ack-rate", type=float, default=1000)
    p.add_argument("--ack-publishers", type=int, default=10)
    p.add_argument("--storm-clients", type=int, default=1000)
    p.add_argument("--storm-history", type=int, default=50)
    p.add_argument("--gigvora-bin", default=str(default_bin if default_bin.exists() else "gigvora"))
    p.add_argument("--gigvora-env", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--server-cpus", default="")
    p.add_argument("--no-pin", action="store_true")
    p.add_argument("--note", default="", help="a remark recorded with the results (e.g. noisy)")
    p.add_argument("--json", dest="json_out", default="")
    p.add_argument("--write-results", action="store_true")
    args = p.parse_args(argv)
    chosen = SCENARIOS if args.scenario == "all" else [
        s.strip() for s in args.scenario.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown or not chosen:
        p.error(f"unknown scenario(s) {unknown}; choose from {', '.join(SCENARIOS)}, all")
    args.scenarios = chosen
    return args


RUNNERS = {"fanout": scenario_fanout, "many-channels": scenario_many_channels,
           "idle": scenario_idle, "ack-latency": scenario_ack_latency,
           "join-storm": scenario_join_storm}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    atexit.register(fanout._kill_all_children)
    signal.signal(signal.SIGTERM, fanout._on_signal)
    signal.signal(signal.SIGINT, fanout._on_signal)
    if "gigvora" in args.targets and not shutil.which(args.gigvora_bin):
        print(f"error: {args.gigvora_bin} not found (pip install -e . first)", file=sys.stderr)
        return 2
    soft, hard = raise_fd_limit()
    print(f"open-files limit: {soft} (hard {hard})", file=sys.stderr)
    fanout.ensure_npm(BENCH_DIR)
    fanout.ensure_npm(REFERENCE_DIR)
    sections: list[Section] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gigvora-suite-") as tmp:
        workdir = Path(tmp)
        secret = secrets.token_urlsafe(36)
        for name in args.scenarios:
            section = RUNNERS[name](args, workdir, secret)
            sections.append(section)
            print(f"\n{section.markdown()}", flush=True)
    minutes = (time.monotonic() - started) / 60
    print("\nSummary:")
    for s in sections:
        for v in s.verdicts:
            print(f"- [{s.name}] {v}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps([dataclasses.asdict(s) for s in sections],
                                                  indent=1, default=str))
    if args.write_results:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() \
            else []
        note = f" Note: {args.note}" if args.note else ""
        body = "\n".join(s.markdown() for s in sections)
        fanout.append_results(
            f"## {stamp} — suite.py --scenario {','.join(args.scenarios)}\n\n"
            f"Machine: {fanout.machine_description()}. Load average at the end: "
            f"{' '.join(load)}; {minutes:.1f} min.{note}\n\n{body}")
        print(f"\nappended to {fanout.RESULTS_MD.relative_to(REPO_DIR)}", file=sys.stderr)
    return 0 if all(s.ok for s in sections) else 1


if __name__ == "__main__":
    sys.exit(main())
