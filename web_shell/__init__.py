"""Server-rendered pages (aiohttp-jinja2). Not built yet: see the issues."""
