"""Per-model answer-length ceilings, learnt from the lengths of recorded answers.

Why: a spend reservation must bound what a request can cost, and when the client sets no
``max_tokens`` nothing bounds an answer's length — except a cap the gateway sends upstream
itself. That cap should let almost every answer finish (so it is a high percentile of the
lengths this model's answers really had), yet be no larger than that: every in-flight request
of a limited key holds its cap's cost, so a loose ceiling starves the key's concurrency, and a
fixed guess (the cost model's 256 tokens) is overrun by long answers.

Per model: the ``percentile`` (nearest rank) of the completion tokens of its last ``window``
answers; until ``min_samples`` are known, ``default_tokens``; never above the backend's declared
``max_output_tokens``. Seeded at start from the store's recent requests, updated as requests
finish (:meth:`OutputCeilings.observe`, on the event loop, so no lock).

Censoring: an answer that stopped *at* the cap it was sent with says only "at least this long".
Counted at its cap, such answers could never raise the ceiling — a ceiling learnt once from short
answers would truncate every longer answer for good. So a capped answer counts as twice its cap
(at least the current ceiling): when more than ``100 - percentile`` % of answers hit the cap, the
ceiling doubles, until answers fit or the backend's maximum is reached. (Lengths read from the
store at start carry no cap, so they count as they are.)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping

from polyroute.config import CeilingsConfig, GatewayConfig
from polyroute.store import OK, Store


class OutputCeilings:
    """Completion-token ceilings per model name (a backend), learnt from answer lengths."""

    def __init__(self, settings: CeilingsConfig,
                 max_tokens: Mapping[str, int | None] | None = None) -> None:
        self.settings = settings
        self._max = {m: t for m, t in (max_tokens or {}).items() if t is not None}
        self._samples: dict[str, deque[int]] = {}
        self._cached: dict[str, int] = {}

    @classmethod
    def from_config(cls, config: GatewayConfig) -> OutputCeilings:
        return cls(config.ceilings, {b.name: b.max_output_tokens for b in config.backends})

    def ceiling(self, model: str) -> int:
        """Completion tokens an answer of ``model`` is allowed (and reserved for)."""
        cached = self._cached.get(model)
        if cached is None:
            cached = self._cached[model] = self._compute(model)
        return cached

    def _compute(self, model: str) -> int:
        s = self.settings
        samples = self._samples.get(model)
        if samples is None or len(samples) < s.min_samples:
            value = s.default_tokens
        else:
            ordered = sorted(samples)
            value = ordered[max(math.ceil(s.percentile / 100 * len(ordered)) - 1, 0)]
        top = self._max.get(model)
        return max(1, min(value, top) if top is not None else value)

    def observe(self, model: str, tokens: int, cap: int | None = None) -> None:
        """Record an answer of ``tokens`` completion tokens; ``cap`` is the ``max_tokens`` it was
        sent with (None if unknown or none): an answer that reached it counts as censored."""
        if tokens < 0:
            return
        if cap is not None and tokens >= cap:
            tokens = max(2 * cap, self.ceiling(model))
            top = self._max.get(model)
            if top is not None:
                tokens = min(tokens, top)
        samples = self._samples.get(model)
        if samples is None:
            samples = self._samples[model] = deque(maxlen=self.settings.window)
        samples.append(int(tokens))
        self._cached.pop(model, None)

    def seed(self, answers: Iterable[tuple[str, int]]) -> None:
        """Record past answers (model, completion tokens), oldest first."""
        for model, tokens in answers:
            self.observe(model, tokens)

    def load(self, store: Store, models: Iterable[str]) -> None:
        """Seed from the store's most recent answered requests (blocking read; at start-up).

        Reads the last ``window`` requests per model on average; a request's completion tokens
        are those it was charged, which for a cascade or top-k request sum several calls (a
        pessimistic sample, never a short one).
        """
        models = set(models)
        recent = store.recent_requests(self.settings.window * max(len(models), 1))
        self.seed((r.chosen, r.completion_tokens) for r in reversed(recent)
                  if r.status == OK and r.chosen in models
                  and isinstance(r.completion_tokens, int))
