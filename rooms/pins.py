"""Room PINs: admins issue single-use 8-digit PINs for a room (``POST /api/v1/admin/codes``
with ``purpose`` ``room_pin`` and the room id as ``subject``). While any PIN of a room is
unexpired, the room is PIN-protected: a member enters once with a valid PIN (``room:join``
``pin``), which uses it up and grants that member the room until the PIN's expiry, so they may
leave and come back without another one. Staff (moderators, admins, operators) and the host of
the room's scheduled session never need one. A room without PINs is open as before.

PINs are stored as argon2id hashes (``storage/secrets.py``); checking one runs in a thread.
Five wrong guesses lock every open PIN of the room. Needs the embedded store (the secrets
tables live there); on MongoDB no PIN can be issued, so rooms stay open.
"""

from __future__ import annotations

import time
from typing import Any

from realtime.errors import AppError
from storage.secrets import SecretRecords

PURPOSE = "room_pin"


class PinGate:
    """Admits joins of PIN-protected rooms (see the module docstring)."""

    def __init__(self, records: SecretRecords | None = None) -> None:
        self.records = records

    async def check(self, room: str, user_id: str, exempt: bool, pin: str | None) -> str:
        """How the join is admitted — ``open``, ``exempt``, ``granted`` or ``pin`` — or refuse
        with ``forbidden`` and reason ``pin_required`` or ``pin_invalid``."""
        if self.records is None:
            return "open"
        access = await self.records.access(PURPOSE, room, user_id, time.time())
        if access == "open":
            return "open"
        if exempt:
            return "exempt"
        if access == "granted":
            return "granted"
        if pin is None:
            raise AppError("forbidden", "this room needs a PIN", room=room, reason="pin_required")
        used: dict[str, Any] | None = await self.records.redeem_code(PURPOSE, room, pin, user_id)
        if used is None:
            raise AppError("forbidden", "the PIN is wrong, expired, used or locked", room=room,
                           reason="pin_invalid")
        return "pin"
