"""Voice and video rooms: an aiortc SFU with pass-through forwarding (see docs/rooms.md)."""
