"""``polyroute config``: check a gateway config without starting it; make client keys."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from polyroute.config import GatewayConfig, backend_api_keys, load_config
from polyroute.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="check a gateway config; create client keys",
                       description="Work with the gateway's YAML config.")
    cmds = p.add_subparsers(dest="config_command", metavar="ACTION")
    cmds.required = True
    check = cmds.add_parser(
        "check", help="validate a config (and load its router) without starting the gateway",
        description="Validate FILE as `polyroute serve` would: every key, the backends' API key "
                    "variables, the router (loaded, or its training data read) and its model "
                    "names against the backends. Exit code 0 if it would start, 2 if not.")
    check.add_argument("file", type=Path, metavar="FILE")
    check.add_argument("--no-router", action="store_true",
                       help="skip loading the router (check the file and environment only)")
    check.set_defaults(func=run_check)
    new = cmds.add_parser("new-key", help="create a random client key and print its config entry",
                          description="Print a new random client key (give it to the client) "
                                      "and the `keys:` entry holding its SHA-256 digest.")
    new.add_argument("--id", default="client", help="key id shown in logs (default: client)")
    new.add_argument("--spend-limit", type=float, metavar="DOLLARS",
                     help="optional monthly spend limit")
    new.set_defaults(func=run_new_key)
    hk = cmds.add_parser("hash-key", help="print the SHA-256 digest of an existing key",
                         description="Print the digest to put in `keys[].sha256`; the key is "
                                     "read from standard input if not given.")
    hk.add_argument("key", nargs="?")
    hk.set_defaults(func=run_hash_key)


def check_config(path: Path, *, load_router: bool = True) -> tuple[GatewayConfig, list[str]]:
    """Everything `serve` checks before opening its port; returns the config and warnings."""
    from polyroute.data import load_outcomes
    from polyroute.gateway.routing import check_backends, load_pipeline
    from polyroute.gateway.service import demo_key_warnings

    config = load_config(path)
    backend_api_keys(config)
    warnings: list[str] = demo_key_warnings(config)
    if config.store.url is None and not config.store.path.parent.is_dir():
        raise ConfigError(f"store.path: the directory {config.store.path.parent} does not exist")
    if config.shared is not None:  # `serve` would refuse to start without it
        from polyroute.gateway.shared.redis_client import check_reachable

        check_reachable(config.shared)
    if load_router:
        router = config.router
        if router.path is not None:
            models = load_pipeline(router).models
        else:
            assert router.train is not None
            models = load_outcomes(router.train.data, router.train.models).model_names
            warnings.append("router.train: the router will be trained at start-up (not checked "
                            "here beyond reading its data)")
        warnings += check_backends(models, config)
    return config, warnings


def run_check(args: argparse.Namespace) -> int:
    config, warnings = check_config(args.file, load_router=not args.no_router)
    for w in warnings:
        print(f"polyroute: warning: {w}", file=sys.stderr)
    profiles = ", ".join(config.effective_profiles())
    print(f"{args.file}: OK — {len(config.backends)} backend(s) "
          f"({', '.join(config.backend_names)}); profiles: {profiles}; "
          f"{len(config.keys)} client key(s); {len(config.rules)} rule(s), "
          f"{len(config.routes)} named route(s); store: {config.store.location}")
    print(shared_summary(config))
    return 0


def shared_summary(config: GatewayConfig) -> str:
    """Where spend, rate limits and breakers live, in the words the gateway logs at start."""
    from polyroute.gateway.shared import open_shared

    return open_shared(config, check=False).describe()


def run_new_key(args: argparse.Namespace) -> int:
    from polyroute.gateway.auth import hash_key, new_key

    key = new_key()
    print(f"key (give this to the client; it is not stored anywhere): {key}")
    print("config entry:")
    print("keys:")
    print(f"  - id: {args.id}")
    print(f"    sha256: {hash_key(key)}")
    if args.spend_limit is not None:
        print(f"    spend_limit: {args.spend_limit}")
        print("    spend_period: month")
    return 0


def run_hash_key(args: argparse.Namespace) -> int:
    from polyroute.gateway.auth import hash_key

    key = args.key if args.key is not None else sys.stdin.readline().strip()
    if not key:
        raise ConfigError("no key given (pass it as an argument or on standard input)")
    print(hash_key(key))
    return 0
