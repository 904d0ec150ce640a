"""Gigvora Live's real-time core: app factory, lifecycle, config, identity, hub, hooks, CLI."""

__version__ = "0.5.0"
