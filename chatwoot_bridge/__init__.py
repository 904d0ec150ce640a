"""The Chatwoot bridge (support inbox): members' support messages ↔ a Chatwoot API-channel inbox
↔ the agents' live inbox on ``/inbox``. See ``docs/chatwoot.md``; the plugin is
``chatwoot_bridge.plugin`` (off while ``GIGVORA_CHATWOOT_BASE_URL`` is unset)."""
