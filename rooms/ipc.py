"""Frames between the main process and a media worker, over a Unix socket pair.

A frame is a 4-byte big-endian length and an orjson object. The main process sends requests
``{"id", "op", "args"}``; the worker answers ``{"id", "ok": true, "result"}`` or
``{"id", "ok": false, "error": {"code", "message", "details"}}`` and sends notifications
``{"event", ...}`` (``ready``, ``publication_failed``, ``subscription_failed``). The first
frame the main process sends is the worker's configuration ``{"config": ...}``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

#: A frame larger than this is a protocol error (SDPs and samples are a few kB).
MAX_FRAME = 16 * 1024 * 1024


class FrameError(Exception):
    """The peer sent something that is not a frame."""


async def read_frame(reader: asyncio.StreamReader) -> dict[str, Any]:
    """The next frame; ``asyncio.IncompleteReadError`` at end of stream."""
    size = int.from_bytes(await reader.readexactly(4), "big")
    if size > MAX_FRAME:
        raise FrameError(f"frame of {size} bytes")
    message = orjson.loads(await reader.readexactly(size))
    if not isinstance(message, dict):
        raise FrameError("a frame is an object")
    return message


def write_frame(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
    """Queue one frame (the transport writes it without blocking the loop)."""
    data = orjson.dumps(message)
    writer.write(len(data).to_bytes(4, "big") + data)
