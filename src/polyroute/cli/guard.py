"""``polyroute guard``: run the configured guards over a JSONL file of texts, one verdict each."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from polyroute.errors import DataError

#: Texts embedded and judged per batch (bounded memory on large files).
BATCH = 256


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "guard", help="run PII / jailbreak guards over a JSONL file of texts",
        description="Read FILE (one JSON value per line: a string, or an object whose --field "
                    "holds the text) and print one JSON verdict per line, in input order: "
                    "action, detector scores, spans (character offsets and types), reason, and "
                    "for PII redaction the redacted text and its placeholders. An object's "
                    "\"id\" is copied into its verdict, so verdicts can be joined with labels.")
    p.add_argument("--config", type=Path, required=True, metavar="FILE",
                   help="a gateway config or a guards-only YAML; only its guards: section is read")
    p.add_argument("--input", type=Path, required=True, metavar="FILE",
                   help="JSONL of texts ('-' for standard input)")
    p.add_argument("--field", default="text", metavar="NAME",
                   help="key of the text in JSON objects (default: %(default)s)")
    p.add_argument("--no-cache", action="store_true",
                   help="do not read or write the embedding cache")
    p.set_defaults(func=run_guard)


def read_texts(fh: TextIO, name: str, field: str) -> Iterator[tuple[object, str]]:
    """``(id or None, text)`` per non-blank line; a malformed line is a DataError naming it."""
    for number, line in enumerate(fh, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{name}:{number}: not valid JSON ({exc.msg})") from None
        if isinstance(value, str):
            yield None, value
        elif isinstance(value, dict) and isinstance(value.get(field), str):
            yield value.get("id"), value[field]
        else:
            raise DataError(f"{name}:{number}: expected a JSON string or an object with a "
                            f"string {field!r} (use --field to name another key)")


def _open_input(path: Path) -> TextIO:
    if str(path) == "-":
        return sys.stdin
    if not path.is_file():
        raise DataError(f"{path}: no such input file")
    # Invalid UTF-8 becomes lone surrogates rather than an error: a scoring run must give one
    # verdict per line, and the guards handle any str.
    return path.open(encoding="utf-8", errors="surrogateescape")


def run_guard(args: argparse.Namespace) -> int:
    from polyroute.guards import build_guards, load_guards_config

    config = load_guards_config(args.config)
    featurizer = None
    if config.jailbreak.enabled:
        from polyroute.features import make_featurizer, with_cache

        featurizer = with_cache(make_featurizer("minilm"), False if args.no_cache else None)
    guards = build_guards(config, featurizer=featurizer)
    fh = _open_input(args.input)
    try:
        batch: list[tuple[object, str]] = []
        for item in read_texts(fh, str(args.input), args.field):
            batch.append(item)
            if len(batch) >= BATCH:
                _emit(guards, batch)
                batch = []
        if batch:
            _emit(guards, batch)
    finally:
        if fh is not sys.stdin:
            fh.close()
    return 0


def _emit(guards, batch: list[tuple[object, str]]) -> None:
    from polyroute.guards import run_guards

    verdicts = run_guards(guards, [t for _, t in batch])
    for (item_id, _), verdict in zip(batch, verdicts, strict=True):
        row = verdict.to_dict()
        if item_id is not None:
            row = {"id": item_id, **row}
        # ensure_ascii keeps any lone surrogate as an escape instead of failing to encode
        sys.stdout.write(json.dumps(row) + "\n")
    sys.stdout.flush()

