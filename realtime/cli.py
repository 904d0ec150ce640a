"""The ``gigvora`` console script."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from realtime.config import ConfigError, lint_environment, load_settings, resolve_jwt_secret
from realtime.errors import AppError
from realtime.identity import TokenService
from realtime.observability import configure_logging
from storage.admin import AdminError


def _serve(args: argparse.Namespace) -> int:
    from realtime.server import run
    from storage.base import StoreUnavailable

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        run(settings)
    except (StoreUnavailable, RuntimeError, OSError) as error:  # boot failed: one clear line
        print(f"gigvora serve: cannot start: {error}", file=sys.stderr)
        return 1
    return 0


def _token(args: argparse.Namespace) -> int:
    settings = load_settings()
    tokens = TokenService(resolve_jwt_secret(settings))
    roles = [r.strip() for r in args.roles.split(",") if r.strip()]
    print(tokens.mint(args.sub, args.name or args.sub, roles, ttl=args.ttl))
    return 0


def _config_lint(args: argparse.Namespace) -> int:
    _, problems = lint_environment()
    for problem in problems:
        print(problem)
    if not problems:
        print("config ok")
    return 1 if problems else 0


def _db(args: argparse.Namespace) -> int:
    from storage.admin import run_db_command

    return run_db_command(load_settings(), args.db_command, getattr(args, "path", None),
                          force=getattr(args, "force", False))


def _seed(args: argparse.Namespace) -> int:
    from storage.admin import run_seed

    return run_seed(load_settings(), args.pack)


def _contracts_export(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from realtime.contracts import export

    allow = tuple(p.strip() for p in args.plugins_allow.split(",") if p.strip())
    print(json.dumps(asyncio.run(export(args.dir, allow))))
    return 0


def _audit_verify(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from storage.admin import verify_audit

    result = asyncio.run(verify_audit(load_settings()))
    print(json.dumps(result))
    return 0 if result["ok"] else 1


def _moderation_classify(args: argparse.Namespace) -> int:
    try:
        from moderation.cli import run_classify
    except ImportError:
        print("moderation is not installed", file=sys.stderr)
        return 2
    return run_classify(sys.stdin, sys.stdout)


def parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    top = argparse.ArgumentParser(prog="gigvora", description="Gigvora Live")
    sub = top.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the server").set_defaults(func=_serve)
    token = sub.add_parser("token", help="print an access token")
    token.add_argument("--sub", required=True)
    token.add_argument("--name")
    token.add_argument("--roles", default="member")
    token.add_argument("--ttl", type=int, default=3600)
    token.set_defaults(func=_token)
    config = sub.add_parser("config", help="configuration").add_subparsers(dest="config_command",
                                                                           required=True)
    config.add_parser("lint", help="validate the environment").set_defaults(func=_config_lint)
    db = sub.add_parser("db", help="storage governance").add_subparsers(dest="db_command",
                                                                        required=True)
    db.add_parser("migrate", help="apply pending migrations (MongoDB: create the indexes)"
                  ).set_defaults(func=_db)
    db.add_parser("check", help="compare the live schema with storage/schema_snapshot.json"
                  ).set_defaults(func=_db)
    snap = db.add_parser("snapshot", help="regenerate storage/schema_snapshot.json from a "
                         "fresh migrate")
    snap.add_argument("--output", dest="path", help="write elsewhere (default: the package's)")
    snap.set_defaults(func=_db)
    backup = db.add_parser("backup", help="online, consistent copy + manifest")
    backup.add_argument("path")
    backup.set_defaults(func=_db)
    restore = db.add_parser("restore", help="replace the store with a verified backup")
    restore.add_argument("path")
    restore.add_argument("--force", action="store_true", help="overwrite an existing store")
    restore.set_defaults(func=_db)
    seed = sub.add_parser("seed", help="apply a seed pack (idempotent)")
    seed.add_argument("--pack", default="core", help="core (default) or demo")
    seed.set_defaults(func=_seed)
    contracts = sub.add_parser("contracts", help="client contracts").add_subparsers(
        dest="contracts_command", required=True)
    export = contracts.add_parser("export", help="write the OpenAPI document and the "
                                  "Socket.IO event schemas to DIR")
    export.add_argument("dir")
    export.add_argument("--plugins-allow", default="", metavar="NAMES",
                        help="entry-point plugins to load too, comma-separated (e.g. matching); "
                        "the committed docs/contracts holds the built-ins only")
    export.set_defaults(func=_contracts_export)
    moderation = sub.add_parser("moderation").add_subparsers(dest="moderation_command",
                                                             required=True)
    moderation.add_parser("classify", help="classify stdin lines").set_defaults(
        func=_moderation_classify)
    audit = sub.add_parser("audit", help="the moderation audit log").add_subparsers(
        dest="audit_command", required=True)
    audit.add_parser("verify", help="recompute the hash chain").set_defaults(func=_audit_verify)
    return top


def main(argv: list[str] | None = None) -> int:
    """Entry point: run a subcommand; configuration problems print one line each, exit 2."""
    args = parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ConfigError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return 2
    except AppError as error:
        print(f"{error.code}: {error.message}", file=sys.stderr)
        return 2
    except AdminError as error:
        print(f"gigvora {args.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
