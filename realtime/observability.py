"""Structured JSON logs with correlation ids, and the Prometheus metrics of one app."""

from __future__ import annotations

import itertools
import logging
import os
import re
import sys
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

#: The correlation id of the HTTP request or socket event being handled.
correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_SECRET_KEYS = ("token", "secret", "password", "authorization", "cookie", "api_key")
#: Correlation ids are 32 hex chars: a random per-process prefix and a counter (unique, cheap:
#: one is made per socket event, and ``uuid4`` costs a ``urandom`` call each).
_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count(1)


def new_correlation_id(candidate: str | None = None) -> str:
    """Accept a safe caller-supplied id (≤64 chars) or make a new one."""
    if candidate and _SAFE_ID.match(candidate):
        return candidate
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def _add_correlation(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    cid = correlation_id.get()
    if cid is not None:
        event.setdefault("correlation_id", cid)
    return event


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if any(part in key.lower() for part in _SECRET_KEYS):
            event[key] = "[redacted]"
    return event


def _stdlib_extra(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Lift ``extra={...}`` fields of stdlib log records into the JSON event."""
    record = event.get("_record")
    if record is not None:
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                event.setdefault(key, value)
    return event


_RECORD_FIELDS = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message", "asctime", "taskName"}


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    """Route stdlib and structlog logs through one JSON (or console) renderer on stderr."""
    renderer: Any = (structlog.processors.JSONRenderer() if fmt == "json"
                     else structlog.dev.ConsoleRenderer(colors=False))
    shared: list[Any] = [structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name,
                         structlog.processors.TimeStamper(fmt="iso", utc=True),
                         _add_correlation]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, _stdlib_extra],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, _redact,
                    structlog.processors.format_exc_info, renderer])
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("engineio.server", "socketio.server", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.configure(processors=[*shared,
                                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
                        logger_factory=structlog.stdlib.LoggerFactory(),
                        wrapper_class=structlog.stdlib.BoundLogger, cache_logger_on_first_use=True)


class Metrics:
    """Every metric of one app, in the app's own registry (two apps never share one)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connections = Gauge("gigvora_connections", "Open Socket.IO connections",
                                 ["namespace"], registry=r)
        self.events = Counter("gigvora_events", "Socket events handled", ["event", "outcome"],
                              registry=r)
        self.ack_seconds = Histogram("gigvora_ack_seconds", "Time from event to ack", ["event"],
                                     registry=r, buckets=(.0005, .001, .0025, .005, .01, .025,
                                                          .05, .1, .25, .5, 1, 2.5))
        self.fanout_deliveries = Counter("gigvora_fanout_deliveries",
                                         "Frames written to recipients by broadcast", registry=r)
        self.outbound_bytes = Gauge("gigvora_outbound_buffered_bytes",
                                    "Bytes buffered for all sockets (sum)", registry=r)
        self.slow_consumers = Counter("gigvora_slow_consumer_disconnects",
                                      "Sockets dropped for not reading", registry=r)
        self.store_commit_seconds = Histogram("gigvora_store_commit_seconds",
                                              "Store group-commit duration", registry=r,
                                              buckets=(.0005, .001, .002, .005, .01, .02, .05,
                                                       .1, .5))
        self.store_batch_ops = Histogram("gigvora_store_batch_ops", "Operations per commit",
                                         registry=r, buckets=(1, 2, 4, 8, 16, 32, 64, 128, 512))
        self.store_queue_depth = Gauge("gigvora_store_write_queue_depth",
                                       "Writes waiting for the store", registry=r)
        self.plugin_hook_seconds = Histogram("gigvora_plugin_hook_seconds",
                                             "Plugin hook call time", ["plugin", "hook"],
                                             registry=r)
        self.plugin_failures = Counter("gigvora_plugin_failures", "Plugin hook failures",
                                       ["plugin", "hook", "kind"], registry=r)
        self.worker_crashes = Counter("gigvora_worker_crashes", "Background worker crashes",
                                      ["worker"], registry=r)
        self.rate_limited = Counter("gigvora_rate_limited", "Events refused by rate limits",
                                    ["event"], registry=r)
        self.http_requests = Counter("gigvora_http_requests", "HTTP requests",
                                     ["method", "route", "status"], registry=r)
