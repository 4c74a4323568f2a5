"""JSON on the request path: orjson where it agrees with the standard library, json elsewhere.

Why: every request parses its body, serialises the upstream payload and parses the answer (or
every streamed event); orjson does each several times faster than ``json``. Why the fallback:
the two differ at the edges — orjson reads an integer beyond 64 bits as a float (a ``seed``
passed through would reach the backend changed), refuses a byte-order mark, UTF-16 and ``NaN``
where ``json`` accepts them (or, for ``NaN``, refuses them with the gateway's own message) — so
a document with a run of 19 or more digits, and anything orjson declines, is handed to ``json``
unchanged: what a client sees, accepted or refused, is exactly what it saw with ``json`` alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import orjson

__all__ = ["dumps", "loads"]

#: A digit run that may be an integer orjson cannot hold exactly (2**63 has 19 digits).
_LONG_DIGITS = re.compile(rb"\d{19}")


def loads(data: bytes, *, parse_constant: Callable[[str], Any] | None = None) -> Any:
    """``json.loads(data, parse_constant=...)``, by orjson when it reads ``data`` the same way.

    orjson accepts no ``NaN``/``Infinity`` constants at all, so ``parse_constant`` only ever
    runs in the fallback, on the documents orjson refused.
    """
    if _LONG_DIGITS.search(data) is None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data, parse_constant=parse_constant)


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON (``json.dumps(obj, ensure_ascii=False, separators=(",", ":"))``
    encoded), by orjson unless the value holds what it cannot write (a >64-bit integer, a
    non-string key). Only for values without ``NaN``/``Infinity`` (orjson writes them as
    ``null``): request bodies have none, :func:`~polyroute.gateway.body.check_json` refuses
    them."""
    try:
        return orjson.dumps(obj)
    except TypeError:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
