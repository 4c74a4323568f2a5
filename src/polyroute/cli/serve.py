"""``polyroute serve``: run the OpenAI-compatible routing gateway."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from polyroute.config import load_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve", help="run the OpenAI-compatible routing gateway",
        description="Start the gateway described by a YAML config (see examples/gateway.yaml). "
                    "Settings are read from the file, then POLYROUTE__SECTION__KEY environment "
                    "variables, then these flags (later wins). The port is claimed first (a busy "
                    "port fails at once); the config, the backend keys and the router are "
                    "checked before the gateway serves.",
    )
    p.add_argument("--config", type=Path, required=True, metavar="FILE", help="gateway config")
    p.add_argument("--host", help="address to listen on (server.host)")
    p.add_argument("--port", type=int, help="port to listen on (server.port)")
    p.add_argument("--store", metavar="FILE|URL",
                   help="the state store: a SQLite file (store.path) or a postgresql:// URL "
                        "(store.url)")
    p.add_argument("--router", type=Path, metavar="DIR",
                   help="trained router directory (router.path; replaces router.train)")
    p.add_argument("--log-level", choices=["critical", "error", "warning", "info", "debug"],
                   help="server.log_level")
    p.set_defaults(func=run)


def flag_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Command-line flags as dotted config overrides (the highest precedence)."""
    overrides: dict[str, Any] = {}
    if args.host is not None:
        overrides["server.host"] = args.host
    if args.port is not None:
        overrides["server.port"] = args.port
    if args.store is not None:
        from polyroute.store.opening import is_pg_url

        if is_pg_url(args.store):
            overrides["store.url"] = args.store
        else:
            overrides["store.path"] = str(Path(args.store).resolve())
            overrides["store.url"] = None
    if args.router is not None:
        overrides["router.path"] = str(args.router.resolve())
        overrides["router.train"] = None
    if args.log_level is not None:
        overrides["server.log_level"] = args.log_level
    return overrides


def run(args: argparse.Namespace) -> int:
    from polyroute.gateway import serve

    config = load_config(args.config, overrides=flag_overrides(args))
    configure_logging(config.server.log_level)
    serve(config)
    return 0


#: Libraries that log every upstream request (method, full URL, status) at INFO.
_QUIET_LOGGERS = ("httpx", "httpcore")


def configure_logging(level: str) -> None:
    """The gateway process's logging: ``level`` for polyroute and uvicorn, WARNING at least
    for httpx/httpcore — their INFO lines name every upstream URL, one per request, which
    is noise at a gateway's rate and would expose whatever a URL carries."""
    logging.basicConfig(level=level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(
            level.upper())))
