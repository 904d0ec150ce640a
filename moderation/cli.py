"""``gigvora moderation classify``: one JSON verdict per input line (see PROTOCOL.md)."""

from __future__ import annotations

import json
from typing import Any, TextIO

from moderation.pipeline import ModerationSettings, Pipeline, build_pipeline, classify_text


def settings_from_environment() -> ModerationSettings:
    """The server's classifier settings (``GIGVORA_MODERATION_*``, ``GIGVORA_DETOXIFY_*``),
    so the CLI runs the tiers the server would; a bad setting raises ``ConfigError``."""
    from moderation.plugin import classifier_settings
    from realtime.config import load_settings

    return classifier_settings(load_settings())


def parse_line(line: str) -> str | None:
    """The text of one input line: a JSON object's ``text`` field, else the line itself.

    Returns ``None`` for blank lines. A JSON object without a string ``text`` raises
    :class:`ValueError`.
    """
    stripped = line.rstrip("\r\n")
    if not stripped.strip():
        return None
    if stripped.lstrip().startswith("{"):
        try:
            payload: Any = json.loads(stripped)
        except json.JSONDecodeError:
            return stripped
        if not isinstance(payload, dict) or not isinstance(payload.get("text"), str):
            raise ValueError("JSON input lines need a string 'text' field")
        return payload["text"]
    return stripped


def run_classify(stdin: TextIO, stdout: TextIO, pipeline: Pipeline | None = None) -> int:
    """Classify every line of ``stdin`` and write one JSON object per line to ``stdout``.

    Returns the exit code: 0, or 1 if any line was invalid (an ``{"error": ...}`` object
    is written for it and the run continues).
    """
    pipeline = pipeline or build_pipeline(settings_from_environment())
    status = 0
    for number, line in enumerate(stdin, start=1):
        try:
            text = parse_line(line)
        except ValueError as exc:
            stdout.write(json.dumps({"error": str(exc), "line": number}) + "\n")
            status = 1
            continue
        if text is None:
            continue
        stdout.write(json.dumps(classify_text(text, pipeline), ensure_ascii=False) + "\n")
        stdout.flush()
    return status
