"""The web shell: server-rendered pages (Jinja2) with small ES-module scripts, as a plugin.

``web_shell.plugin`` contributes the routes through the documented ``gigvora_http_routes`` hook;
the pages talk to the same Socket.IO and HTTP contract as every other client.
"""
