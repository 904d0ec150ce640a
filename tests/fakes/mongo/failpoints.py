"""mongod's ``failCommand`` fail point (``configureFailPoint``, a test command of real servers
started with ``enableTestCommands=1``): fail chosen commands with an error, a closed connection,
a delay, or a write concern error after the write, so the store's failure paths are tested with
the driver's real retry rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.fakes.mongo.engine import CommandError, Doc, bad_value

#: Codes the server labels ``RetryableWriteError`` on a retryable write (wire version >= 9:
#: the driver relies on the server's label).
RETRYABLE_WRITE_CODES = frozenset({6, 7, 63, 89, 91, 134, 150, 189, 262, 9001, 10107, 11600,
                                   11602, 13435, 13436})


class CloseConnection(Exception):
    """Close the client's connection without answering (``closeConnection: true``)."""


@dataclass
class FailPoint:
    """One configured ``failCommand``: which commands, how often, and how they fail."""

    data: Doc
    times: int | None  # None: always on
    skip: int = 0

    def take(self, command: str, app_name: str | None) -> Doc | None:
        """The failure for this command, if the fail point fires for it (and counts it)."""
        if command not in self.data.get("failCommands", []):
            return None
        if "appName" in self.data and self.data["appName"] != app_name:
            return None
        if self.skip > 0:
            self.skip -= 1
            return None
        if self.times is not None:
            if self.times <= 0:
                return None
            self.times -= 1
        return self.data


def configure(cmd: Doc) -> FailPoint | None:
    """The fail point a ``configureFailPoint`` command sets (None: off)."""
    if cmd.get("configureFailPoint") != "failCommand":
        raise bad_value(f"the fake has no fail point {cmd.get('configureFailPoint')!r}")
    mode: Any = cmd.get("mode")
    data = cmd.get("data") or {}
    if mode == "off":
        return None
    if mode == "alwaysOn":
        return FailPoint(data, None)
    if isinstance(mode, dict) and "times" in mode:
        return FailPoint(data, int(mode["times"]))
    if isinstance(mode, dict) and "skip" in mode:
        return FailPoint(data, None, int(mode["skip"]))
    raise bad_value(f"unsupported fail point mode {mode!r}")


def failure_error(failure: Doc, command: str, retryable_write: bool) -> CommandError:
    """The error a fail point with ``errorCode`` answers."""
    code = int(failure["errorCode"])
    labels = failure.get("errorLabels")
    if labels is None:
        labels = ["RetryableWriteError"] if retryable_write and \
            code in RETRYABLE_WRITE_CODES else []
    return CommandError(code, "FailPoint", f"Failing command {command} via 'failCommand' "
                        "failpoint", labels=labels)
