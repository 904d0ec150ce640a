"""Gig matching for the live chat: the first marketplace plugin (see docs/plugins.md,
"A marketplace plugin: matching"). Loaded only with ``GIGVORA_PLUGINS_ALLOW=matching``."""
