"""Voice and video rooms (aiortc SFU). Not built yet: see the issues."""
