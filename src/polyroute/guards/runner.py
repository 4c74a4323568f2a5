"""Build the configured guards and run them over texts: what the CLI, the benchmark and (later)
the gateway's guard stages share."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from polyroute.guards.base import Guard, Verdict, combine
from polyroute.guards.config import GuardsConfig


def build_guards(config: GuardsConfig, *, featurizer=None) -> list[Guard]:
    """The enabled guards, PII first. ``featurizer`` embeds texts for the jailbreak classifier
    when the caller has no embeddings (the gateway passes the router's instead)."""
    from polyroute.guards.stage import RequestGuards

    return RequestGuards(config, featurizer=featurizer).guards


def run_guards(guards: Sequence[Guard], texts: Sequence[str],
               embeddings: np.ndarray | None = None) -> list[Verdict]:
    """One combined verdict per text. Each guard gets all texts at once (``check_many``), so an
    encoder, if any, runs once per batch."""
    per_guard = [guard.check_many(texts, embeddings) for guard in guards]
    return [combine(vs) for vs in zip(*per_guard, strict=True)] if per_guard else \
        [Verdict() for _ in texts]
