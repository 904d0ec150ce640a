"""Readiness checks and the ``application/health+json`` document."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

CheckResult = dict[str, Any]


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """A named readiness check. ``probe`` returns fields such as ``observedValue`` and
    ``status`` (``pass``/``warn``/``fail``), plus ``gvCode`` (an outage code) when not passing.
    ``critical`` checks fail readiness; others only warn."""

    name: str
    component_type: str
    probe: Callable[[], Awaitable[CheckResult]]
    critical: bool = True


async def run_checks(checks: list[HealthCheck], timeout: float = 2.0) -> dict[str, Any]:
    """Run every check concurrently (each bounded by ``timeout``) into a health+json body."""
    results = await asyncio.gather(*(_run_one(check, timeout) for check in checks))
    status = "pass"
    for check, result in zip(checks, results, strict=True):
        if result["status"] == "fail" and check.critical:
            status = "fail"
        elif result["status"] != "pass" and status == "pass":
            status = "warn"
    return {"status": status, "checks": {c.name: [r] for c, r in zip(checks, results,
                                                                       strict=True)}}


async def _run_one(check: HealthCheck, timeout: float) -> CheckResult:
    started = time.perf_counter()
    try:
        result = await asyncio.wait_for(check.probe(), timeout)
    except TimeoutError:
        result = {"status": "fail", "gvCode": f"{check.component_type.upper()}_TIMEOUT",
                  "output": f"no answer within {timeout}s"}
    except asyncio.CancelledError:
        raise
    except Exception as error:
        result = {"status": "fail", "gvCode": f"{check.component_type.upper()}_ERROR",
                  "output": type(error).__name__ + ": " + str(error)[:200]}
    result.setdefault("status", "pass")
    result["componentType"] = check.component_type
    result["time"] = datetime.now(UTC).isoformat(timespec="seconds")
    result["durationMs"] = round((time.perf_counter() - started) * 1000, 2)
    return result
