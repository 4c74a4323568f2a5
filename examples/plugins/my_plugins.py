"""Example polyroute plugins: a signal and a guard, named in a gateway config as

    signals:
      plugins:
        - use: my_plugins:TicketPriority
    guards:
      plugins:
        - use: my_plugins:NoInternalHosts
          options: {domain: corp.internal}

with this file's folder on the Python path (or shipped in a package that declares them as entry
points of the groups ``polyroute.signals`` / ``polyroute.guards`` / ``polyroute.cache``; the
cache index backend below is named in ``cache.index``). See docs/extending.md.
"""

from __future__ import annotations

import re

from polyroute.guards import Span, Verdict
from polyroute.signals.base import SignalInputs


class TicketPriority:
    """``ticket.priority``: 1–4 from a "P1".."P4" tag in the routing text (None without one)."""

    name = "ticket.priority"
    kind = "number"
    needs = "request"  # computed from the request alone, before any embedding
    _TAG = re.compile(r"\bP([1-4])\b")

    def compute(self, inputs: SignalInputs) -> float | None:
        m = self._TAG.search(inputs.text)
        return None if m is None else float(m.group(1))


class NoInternalHosts:
    """Blocks a request that names a host of the company's internal domain."""

    def __init__(self, domain: str = "corp.internal") -> None:
        self._host = re.compile(r"\b[\w-]+(?:\.[\w-]+)*\." + re.escape(domain) + r"\b")

    def check(self, text: str, embedding=None) -> Verdict:
        spans = tuple(Span(m.start(), m.end(), "INTERNAL_HOST") for m in
                      self._host.finditer(text))
        if not spans:
            return Verdict()
        return Verdict("block", {"internal_hosts": 1.0}, spans,
                       "names an internal host")


class BruteForceIndex:
    """A cache index backend: exact cosine search over a dict (``cache.index``). A stand-in for
    a vector database client; polyroute builds one per cache partition as ``Index(dim)``."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._vectors: dict[int, list[float]] = {}

    def __len__(self) -> int:
        return len(self._vectors)

    def __contains__(self, key: int) -> bool:
        return key in self._vectors

    def add(self, key: int, vec) -> None:
        norm = sum(float(x) * float(x) for x in vec) ** 0.5 or 1.0
        self._vectors[key] = [float(x) / norm for x in vec]

    def remove(self, key: int) -> None:
        self._vectors.pop(key, None)

    def search(self, vec, k: int = 1) -> list[tuple[int, float]]:
        norm = sum(float(x) * float(x) for x in vec) ** 0.5 or 1.0
        q = [float(x) / norm for x in vec]
        scored = [(key, sum(a * b for a, b in zip(q, v, strict=True)))
                  for key, v in self._vectors.items()]
        return sorted(scored, key=lambda kv: -kv[1])[:k]
