"""Who is online: several tabs (sockets) per user, one status per user."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Status = Literal["online", "away", "offline"]


@dataclass(slots=True)
class _Entry:
    name: str
    sids: set[str] = field(default_factory=set)
    status: Status = "online"


class Presence:
    """In-process presence. ``connect``/``disconnect`` return True when the user's visible
    status changed (first tab opened, last tab closed)."""

    def __init__(self) -> None:
        self._users: dict[str, _Entry] = {}

    def connect(self, user_id: str, name: str, sid: str) -> bool:
        """Record a socket; True if the user just came online."""
        entry = self._users.get(user_id)
        if entry is None:
            self._users[user_id] = _Entry(name, {sid})
            return True
        entry.sids.add(sid)
        return False

    def disconnect(self, user_id: str, sid: str) -> bool:
        """Forget a socket; True if it was the user's last one."""
        entry = self._users.get(user_id)
        if entry is None:
            return False
        entry.sids.discard(sid)
        if entry.sids:
            return False
        del self._users[user_id]
        return True

    def set_status(self, user_id: str, status: Status) -> bool:
        """Set online/away for a connected user; True if it changed."""
        entry = self._users.get(user_id)
        if entry is None or entry.status == status:
            return False
        entry.status = status
        return True

    def status(self, user_id: str) -> Status:
        """The user's status (``offline`` when no socket is open)."""
        entry = self._users.get(user_id)
        return entry.status if entry else "offline"

    def online(self) -> list[dict[str, object]]:
        """Every connected user as a presence event payload."""
        return [{"user": {"id": uid, "name": e.name}, "status": e.status}
                for uid, e in self._users.items()]

    def __len__(self) -> int:
        return len(self._users)
