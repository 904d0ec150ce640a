"""Storage: the only layer that speaks SQL (or Mongo). See :mod:`storage.base` for the protocol."""

from storage.base import (
    Channel,
    Message,
    MessageDraft,
    Store,
    StoreUnavailable,
    open_store,
)

__all__ = ["Channel", "Message", "MessageDraft", "Store", "StoreUnavailable", "open_store"]
