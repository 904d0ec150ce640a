"""The Chatwoot bridge (support inbox). Not built yet: see the issues."""
