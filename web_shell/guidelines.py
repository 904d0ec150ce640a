"""Community-guidelines acknowledgements: who accepted which policy version, and when.

Kept in a small JSON file under ``GIGVORA_DATA_DIR`` for now (one node); every file access runs
off the event loop. Publishing a new ``POLICY_VERSION`` makes everyone accept again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: The version of /guidelines members acknowledge; bump it when the text changes materially.
POLICY_VERSION = "2025-06-01"
ACKS_FILE = "web_shell_acks.json"


class GuidelineAcks:
    """Acknowledgements by user id: ``{"version", "accepted_at"}`` (ISO 8601, UTC)."""

    def __init__(self, path: Path, version: str = POLICY_VERSION) -> None:
        self.path = path
        self.version = version
        self._acks: dict[str, dict[str, str]] | None = None
        self._lock = asyncio.Lock()

    async def accepted(self, user_id: str) -> bool:
        """True if ``user_id`` accepted the current policy version."""
        acks = await self._loaded()
        return acks.get(user_id, {}).get("version") == self.version

    async def accept(self, user_id: str) -> dict[str, str]:
        """Record that ``user_id`` accepts the current version now; return the record."""
        async with self._lock:
            acks = await self._load_locked()
            record = {"version": self.version,
                      "accepted_at": datetime.now(UTC).isoformat(timespec="seconds")}
            updated = {**acks, user_id: record}
            await asyncio.to_thread(_write_atomically, self.path, updated)
            self._acks = updated
            return record

    async def _loaded(self) -> dict[str, dict[str, str]]:
        if self._acks is not None:
            return self._acks
        async with self._lock:
            return await self._load_locked()

    async def _load_locked(self) -> dict[str, dict[str, str]]:
        if self._acks is not None:
            return self._acks
        loaded: dict[str, dict[str, str]] = await asyncio.to_thread(_read, self.path)
        self._acks = loaded
        return loaded


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return {k: v for k, v in data.items() if isinstance(v, dict)}


def _write_atomically(path: Path, data: dict[str, Any]) -> None:
    """Write to a temporary file, fsync, then rename over the old file (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
