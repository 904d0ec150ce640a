"""Locust scenarios for any Gigvora Live deployment (locust's own ``SocketIOUser``).

    pip install 'locust>=2.47'            # or: pip install -e '.[bench]'
    locust -f benchmarks/locustfile.py --headless -u 200 -r 50 -t 30s \\
        --host http://127.0.0.1:8080 --gv-secret "$GIGVORA_JWT_SECRET" --gv-create-channels

Users (weights are options):

* ``MemberUser`` — a community member on ``/``: joins ``--gv-channels-per-user`` channels of the
  pool, then at Poisson-distributed moments chats (``message:send`` with a ``client_id``, waits
  for the durable ack), types (``typing`` true, then false), reacts to a message it saw
  (``reaction:add``), marks channels read, and now and then drops its connection and comes back
  with recovery (``channel:join`` with ``since_seq``). Rates are per user, per minute.
* ``AgentUser`` — a support agent (role ``agent``) connected to ``/inbox``; it only stays
  connected. When the deployment has no ``/inbox`` (Chatwoot bridge off) it notes that once and
  idles.
* ``RoomUser`` — joins a voice/video room on ``/rooms`` (signalling only: ``room:join`` then
  ``room:leave``, no media). Tolerates a deployment without ``/rooms`` the same way.

Tokens: ``--gv-secret`` mints HS256 tokens locally (the deployment's ``GIGVORA_JWT_SECRET``), or
``--gv-token-file`` / ``--gv-agent-token-file`` hand out tokens read from files (one per line,
round robin). Without either, users connect with no token (and are refused).

What the statistics mean (request type / name):

* ``WS connect`` — the Socket.IO connection (handshake + namespace connect), per namespace.
* ``WSC <event>`` — an event with its acknowledgement: time from emit to ack. An ack
  ``{"ok": false}`` counts as a failure named after its error code. (locust's ``call()`` would
  also log a 0 ms ``WSE`` sample for the emit inside it; this file does not, so percentiles are
  not diluted.)
* ``WSR message:new (delivery)`` — send -> receive latency of messages sent by this locust run
  (the send time travels in ``client_id``; all users share one clock, so run the workers on one
  machine or with synchronised clocks).
* ``WSE typing`` — fire-and-forget emits (0 ms by nature).
Other pushes (presence, typing, edits) are counted, not timed; the counts are printed at the end.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, deque
from typing import Any

import gevent
import socketio
from locust import User, events, task
from locust.contrib.socketio import SocketIOClient, SocketIOUser

log = logging.getLogger("gigvora.locust")
RUN_ID = f"lc{random.randrange(36**5):05x}"
_counter = itertools.count()
_pushes: Counter[str] = Counter()
_absent: dict[str, str] = {}  # namespace -> reason it was found missing
_lock = threading.Lock()


# ------------------------------------------------------------------------------- options


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    g = parser.add_argument_group("Gigvora Live")
    g.add_argument("--gv-secret", default="", env_var="GV_SECRET",
                   help="HS256 secret (GIGVORA_JWT_SECRET) to mint a token per user locally")
    g.add_argument("--gv-token-file", default="", help="member tokens, one per line")
    g.add_argument("--gv-agent-token-file", default="", help="agent tokens, one per line")
    g.add_argument("--gv-channels", type=int, default=10,
                   help="size of the channel pool (members spread over it)")
    g.add_argument("--gv-channel-prefix", default="load",
                   help="pool channels are <prefix>-0 .. <prefix>-N-1; with --gv-channels 0 "
                        "the seed channels general and help are used")
    g.add_argument("--gv-create-channels", action="store_true",
                   help="create the pool's channels first (needs --gv-secret: an admin token)")
    g.add_argument("--gv-channels-per-user", type=int, default=1)
    g.add_argument("--gv-messages-per-min", type=float, default=6, help="per member")
    g.add_argument("--gv-typing-per-min", type=float, default=6, help="per member")
    g.add_argument("--gv-reactions-per-min", type=float, default=2, help="per member")
    g.add_argument("--gv-reads-per-min", type=float, default=2, help="per member")
    g.add_argument("--gv-reconnects-per-min", type=float, default=0.5, help="per member")
    g.add_argument("--gv-text-bytes", type=int, default=60, help="approximate message length")
    g.add_argument("--gv-member-weight", type=int, default=20)
    g.add_argument("--gv-agent-weight", type=int, default=1)
    g.add_argument("--gv-room-weight", type=int, default=1)
    g.add_argument("--gv-room-size", type=int, default=5, help="room users per room")
    g.add_argument("--gv-room-stay-s", type=float, default=20, help="seconds in a room")
    g.add_argument("--gv-ack-timeout", type=float, default=10)


@events.init.add_listener
def _apply_weights(environment: Any, **_: Any) -> None:
    o = environment.parsed_options
    if o is None:
        return
    MemberUser.weight = o.gv_member_weight
    AgentUser.weight = o.gv_agent_weight
    RoomUser.weight = o.gv_room_weight


@events.test_start.add_listener
def _create_channels(environment: Any, **_: Any) -> None:
    o = environment.parsed_options
    if o is None or not o.gv_create_channels or o.gv_channels <= 0:
        return
    if not o.gv_secret:
        log.error("--gv-create-channels needs --gv-secret (an admin token is minted)")
        return
    token = mint(o.gv_secret, "locust-admin", "Locust Admin", ["admin", "member"])
    created = 0
    for cid in pool(o):
        body = json.dumps({"id": cid, "name": cid}).encode()
        req = urllib.request.Request(
            f"{environment.host}/api/v1/channels", data=body, method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10):
                created += 1
        except urllib.error.HTTPError as exc:
            if exc.code != 409:
                log.error("creating %s: HTTP %s", cid, exc.code)
        except OSError as exc:
            log.error("creating %s: %s", cid, exc)
            return
    log.info("channel pool ready (%d created)", created)


@events.quitting.add_listener
def _summary(environment: Any, **_: Any) -> None:
    if _pushes:
        print("pushes received (counted, not timed): "
              + ", ".join(f"{k} {v}" for k, v in _pushes.most_common()))
    for ns, reason in _absent.items():
        print(f"namespace {ns} absent on this deployment ({reason}); its users idled")


def pool(o: Any) -> list[str]:
    if o.gv_channels <= 0:
        return ["general", "help"]
    return [f"{o.gv_channel_prefix}-{i}" for i in range(o.gv_channels)]


# -------------------------------------------------------------------------------- tokens


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(secret: str, sub: str, name: str, roles: list[str], ttl_s: int = 3600) -> str:
    """An HS256 access token with the contract's claims (sub, name, roles, exp)."""
    now = int(time.time())
    claims = {"sub": sub, "name": name, "roles": roles, "iat": now, "exp": now + ttl_s}
    signing_input = ".".join(_b64(json.dumps(p, separators=(",", ":")).encode())
                             for p in ({"alg": "HS256", "typ": "JWT"}, claims))
    sig = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(sig)}"


_files: dict[str, list[str]] = {}


def token_for(o: Any, sub: str, roles: list[str], file_option: str) -> str | None:
    if o.gv_secret:
        return mint(o.gv_secret, sub, sub.replace("-", " ").title(), roles)
    path = getattr(o, file_option) or o.gv_token_file
    if not path:
        return None
    with _lock:
        if path not in _files:
            with open(path, encoding="utf-8") as f:
                _files[path] = [line.strip() for line in f if line.strip()]
        tokens = _files[path]
    return tokens[next(_counter) % len(tokens)] if tokens else None


# -------------------------------------------------------------------------------- client


class AckError(Exception):
    """An acknowledgement that said ``{"ok": false}``."""


class GigvoraClient(SocketIOClient):
    """locust's client, plus: acks judged by ``ok``, no 0 ms WSE sample inside ``call()``,
    delivery latency for this run's messages, other pushes counted instead of logged."""

    in_call = False

    def emit(self, event: str, data: Any = None, namespace: Any = None, callback: Any = None
             ) -> None:
        if self.in_call:  # the emit inside call(): measured by call() itself
            socketio.Client.emit(self, event, data, namespace, callback)
            return
        super().emit(event, data, namespace, callback)

    def call(self, event: str, data: Any = None, *args: Any, name: str | None = None,
             **kwargs: Any) -> Any:
        result: Any = None
        with self.request_event.measure("WSC", name or event) as meta:
            self.in_call = True
            try:
                result = socketio.Client.call(self, event, data, *args, **kwargs)
            finally:
                self.in_call = False
            if isinstance(result, dict) and result.get("ok") is False:
                code = (result.get("error") or {}).get("code", "error")
                meta["name"] = f"{name or event} [{code}]"
                raise AckError(code)
            meta["response_length"] = len(json.dumps(result)) if result is not None else 0
        return result

    def on_message(self, event: str, data: Any = None, *rest: Any) -> None:
        _pushes[event] += 1


# --------------------------------------------------------------------------------- users


def poisson_wait(per_minute_total: float) -> float:
    return random.expovariate(per_minute_total / 60) if per_minute_total > 0 else 3600.0


class GigvoraUser(SocketIOUser):
    """Common plumbing: our client class, connect with a token, disconnect on stop."""

    abstract = True
    namespace = "/"
    roles = ["member"]
    token_option = "gv_token_file"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        User.__init__(self, *args, **kwargs)  # not SocketIOUser's: it builds its own client
        self.o = self.environment.parsed_options
        self.sio = GigvoraClient(self.environment.events.request, reconnection=False)
        self.sio.on("*", self.sio.on_message, namespace=self.namespace)
        self.sio_greenlet = None
        self.sub = f"{RUN_ID}-{self.__class__.__name__.lower()[:-4]}-{next(_counter)}"

    def connect(self) -> bool:
        if self.namespace in _absent:
            return False
        token = token_for(self.o, self.sub, self.roles, self.token_option)
        refusal: list[Any] = []
        self.sio.on("connect_error", refusal.append, namespace=self.namespace)
        # measure() records a failure (and swallows it) when connecting raises.
        with self.environment.events.request.measure("WS", f"connect {self.namespace}") as meta:
            try:
                socketio.Client.connect(self.sio, self.host, auth={"token": token},
                                        transports=["websocket"], namespaces=[self.namespace],
                                        wait_timeout=10)
            except socketio.exceptions.ConnectionError:
                # Gigvora refuses with {"code", "message"}; a namespace the server does not
                # serve is refused by python-socketio with a bare "Unable to connect".
                data = refusal[0] if refusal else None
                if self.namespace != "/" and not (isinstance(data, dict) and "code" in data):
                    meta["name"] = f"connect {self.namespace} (namespace absent)"
                    self.mark_absent(f"connect_error {data!r}")
                else:
                    raise
        if not self.sio.connected:
            return False
        if self.sio_greenlet is None or self.sio_greenlet.dead:
            self.sio_greenlet = gevent.spawn(self.sio.wait)
        return True

    def mark_absent(self, reason: str) -> None:
        with _lock:
            if self.namespace not in _absent:
                _absent[self.namespace] = reason
                log.warning("namespace %s looks absent (%s): its users will idle",
                            self.namespace, reason)

    def on_stop(self) -> None:
        if self.sio.connected:
            self.sio.disconnect()


class MemberUser(GigvoraUser):
    """A member chatting in a few channels."""

    weight = 20

    def on_start(self) -> None:
        o = self.o
        self.rates = {"chat": o.gv_messages_per_min, "typing": o.gv_typing_per_min,
                      "react": o.gv_reactions_per_min, "read": o.gv_reads_per_min,
                      "reconnect": o.gv_reconnects_per_min}
        self.total_rate = sum(self.rates.values())
        channels = pool(o)
        self.channels = random.sample(channels, min(len(channels), o.gv_channels_per_user))
        self.last_seq: dict[str, int] = {}
        self.recent: deque[str] = deque(maxlen=20)
        self.n = 0
        self.pad = "x" * max(0, o.gv_text_bytes - 40)
        self.sio.on("message:new", self._on_message_new, namespace="/")
        if self.connect():
            self.join_all()

    def wait_time(self) -> float:
        return poisson_wait(self.total_rate)

    def _on_message_new(self, message: Any) -> None:
        _pushes["message:new"] += 1
        if not isinstance(message, dict):
            return
        seq, channel = message.get("seq"), message.get("channel")
        if isinstance(seq, int) and isinstance(channel, str):
            self.last_seq[channel] = max(seq, self.last_seq.get(channel, 0))
        if isinstance(message.get("id"), str):
            self.recent.append(message["id"])
        cid = message.get("client_id")
        if isinstance(cid, str) and cid.startswith(RUN_ID + "-"):
            sent_us = int(cid.rsplit("-", 1)[1])
            self.environment.events.request.fire(
                request_type="WSR", name="message:new (delivery)",
                response_time=max(0.0, time.time() * 1000 - sent_us / 1000),
                response_length=len(message.get("text") or ""), exception=None, context={})

    def join_all(self, recover: bool = False) -> None:
        for channel in self.channels:
            payload: dict[str, Any] = {"channel": channel}
            name = "channel:join"
            if recover and channel in self.last_seq:
                payload["since_seq"] = self.last_seq[channel]
                name = "channel:join (recovery)"
            ack = self.sio.call("channel:join", payload, name=name,
                                timeout=self.o.gv_ack_timeout)
            data = ack.get("data") if isinstance(ack, dict) else None
            if isinstance(data, dict):
                for m in data.get("messages") or []:
                    if isinstance(m, dict) and isinstance(m.get("seq"), int):
                        self.last_seq[channel] = max(m["seq"], self.last_seq.get(channel, 0))
                        self.recent.append(m.get("id"))
                if isinstance(data.get("last_seq"), int):
                    self.last_seq.setdefault(channel, data["last_seq"])

    def pick(self) -> str:
        r = random.uniform(0, self.total_rate)
        for name, rate in self.rates.items():
            r -= rate
            if r <= 0:
                return name
        return "chat"

    @task
    def act(self) -> None:
        if not self.sio.connected:
            if self.connect():
                self.join_all(recover=True)
            return
        getattr(self, "do_" + self.pick())()

    def do_chat(self) -> None:
        self.n += 1
        channel = random.choice(self.channels)
        now_us = int(time.time() * 1e6)
        cid = f"{RUN_ID}-{self.sub}-{self.n}-{now_us}"
        self.sio.call("message:send", {"channel": channel, "client_id": cid,
                                       "text": f"hello from {self.sub} #{self.n} {self.pad}"},
                      timeout=self.o.gv_ack_timeout)

    def do_typing(self) -> None:
        channel = random.choice(self.channels)
        self.sio.emit("typing", {"channel": channel, "typing": True})
        gevent.sleep(random.uniform(0.5, 2.0))
        if self.sio.connected:
            self.sio.emit("typing", {"channel": channel, "typing": False})

    def do_react(self) -> None:
        ids = [i for i in self.recent if i]
        if not ids:
            return self.do_chat()
        self.sio.call("reaction:add", {"id": random.choice(ids),
                                       "emoji": random.choice(["👍", "🎉", "❤️", "😂"])},
                      timeout=self.o.gv_ack_timeout)
        return None

    def do_read(self) -> None:
        channel = random.choice(self.channels)
        if channel in self.last_seq:
            self.sio.call("read", {"channel": channel, "seq": self.last_seq[channel]},
                          timeout=self.o.gv_ack_timeout)

    def do_reconnect(self) -> None:
        self.sio.disconnect()
        gevent.sleep(random.uniform(0.2, 1.0))
        if self.connect():
            self.join_all(recover=True)


class AgentUser(GigvoraUser):
    """A support agent on ``/inbox``: connects and stays (idles if ``/inbox`` is absent)."""

    weight = 1
    namespace = "/inbox"
    roles = ["agent", "member"]
    token_option = "gv_agent_token_file"

    def on_start(self) -> None:
        self.connect()

    def wait_time(self) -> float:
        return 5.0

    @task
    def stay(self) -> None:
        if self.namespace not in _absent and not self.sio.connected:
            self.connect()


class RoomUser(GigvoraUser):
    """Joins a room on ``/rooms`` (signalling only), stays a while, leaves; repeats."""

    weight = 1
    namespace = "/rooms"

    def on_start(self) -> None:
        self.connect()

    def wait_time(self) -> float:
        return random.uniform(1, 3)

    @task
    def visit_room(self) -> None:
        if self.namespace in _absent:
            return
        if not self.sio.connected and not self.connect():
            return
        runner = self.environment.runner
        rooms = max(1, (runner.user_count if runner else 1) // max(1, self.o.gv_room_size))
        room = f"{RUN_ID}-room-{random.randrange(rooms)}"
        ack = self.sio.call("room:join", {"room": room}, namespace=self.namespace,
                            timeout=self.o.gv_ack_timeout)
        if isinstance(ack, dict) and ack.get("ok"):
            gevent.sleep(self.o.gv_room_stay_s)
            if self.sio.connected:
                self.sio.call("room:leave", {"room": room}, namespace=self.namespace,
                              timeout=self.o.gv_ack_timeout)
