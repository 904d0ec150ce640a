"""``GET /static/{path}``: the shell's stylesheets, scripts, images and vendored bundles.

Served by the server itself (no CDN, no build step). The files are indexed once at boot, so a
request can only ever name a file that was there (no traversal, no listing, no stat on the
event loop); responses carry ``nosniff`` and revalidate (``no-cache`` + Last-Modified/ETag).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC_ROOT = Path(__file__).resolve().parent / "static"
#: Only these kinds of files are served; anything else under static/ is a 404.
CONTENT_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                 ".svg": "image/svg+xml", ".png": "image/png", ".map": "application/json"}


def index_files(root: Path) -> dict[str, Path]:
    """Every servable file under ``root`` by its URL path (no hidden files)."""
    files = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        hidden = any(part.startswith(".") for part in relative.split("/"))
        if path.is_file() and path.suffix in CONTENT_TYPES and not hidden:
            files[relative] = path
    return files


class StaticFiles:
    """Serves the files indexed at boot from one root directory."""

    def __init__(self, root: Path = STATIC_ROOT) -> None:
        self.files = index_files(root.resolve())

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Serve one file, or a plain 404."""
        path = self.files.get(request.match_info["path"])
        if path is None:
            return web.Response(status=404, text="not found",
                                headers={"X-Content-Type-Options": "nosniff"})
        return web.FileResponse(path, headers={
            "Content-Type": CONTENT_TYPES[path.suffix], "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff"})
