"""Marketplace plugins on the hook API, loaded from entry points only when allowed
(``GIGVORA_PLUGINS_ALLOW``): ``matching`` (gig matching for the live chat). Ads and finance are
not built yet."""
