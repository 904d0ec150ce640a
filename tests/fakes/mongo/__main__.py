"""``python -m tests.fakes.mongo [--host H] [--port P]``: run the fake until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from tests.fakes.mongo import FakeMongo


async def main(host: str, port: int) -> None:
    """Serve until cancelled."""
    server = await FakeMongo(host, port).start()
    print(f"fake MongoDB listening: {server.url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=27017)
    parser.add_argument("--log-commands", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.log_commands else logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.host, args.port))
