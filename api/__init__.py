"""The REST API (``/api/v1``): a built-in plugin on the ``gigvora_http_routes`` hook."""
