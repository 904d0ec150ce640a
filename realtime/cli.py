"""The ``gigvora`` console script."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from realtime.config import ConfigError, lint_environment, load_settings, resolve_jwt_secret
from realtime.errors import AppError
from realtime.identity import TokenService
from realtime.observability import configure_logging


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

    return run_seed(load_settings())


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
    db.add_parser("migrate").set_defaults(func=_db)
    db.add_parser("check").set_defaults(func=_db)
    for name in ("backup", "restore"):
        cmd = db.add_parser(name)
        cmd.add_argument("path")
        cmd.add_argument("--force", action="store_true")
        cmd.set_defaults(func=_db)
    sub.add_parser("seed", help="create the seed data").set_defaults(func=_seed)
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


if __name__ == "__main__":
    sys.exit(main())
