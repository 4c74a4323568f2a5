"""Which word pieces of a prompt reach the encoder: a window of the head, the tail or both.

A transformer's cost grows with the tokens it reads (attention quadratically), and a routing
decision rarely needs all of a long prompt: the question is usually at the end, the instruction
at the start. A :class:`TokenWindow` keeps ``max_tokens`` word pieces of the routing text and
drops the rest before the encoder runs; ``benchmarks/featurizer_speed_quality.py`` measures how
few keep routing quality on the bundled data.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from polyroute.errors import ConfigError

KEEPS = ("head", "tail", "headtail")
#: Share of a ``headtail`` window given to the head (the rest is the tail), as in ``focus_text``.
HEAD_SHARE = 0.25
_SPEC = re.compile(r"^(head|tail|headtail)(\d+)$")


@dataclass(frozen=True)
class TokenWindow:
    """Keep ``max_tokens`` word pieces: the first (``head``), the last (``tail``), or a quarter
    from the start and the rest from the end (``headtail``)."""

    max_tokens: int
    keep: str = "head"

    def __post_init__(self) -> None:
        if self.keep not in KEEPS:
            raise ConfigError(f"token window keeps one of {', '.join(KEEPS)}, not {self.keep!r}")
        if not 1 <= self.max_tokens <= 100_000:
            raise ConfigError(f"a token window needs 1 or more tokens, got {self.max_tokens}")

    @classmethod
    def parse(cls, spec: str) -> TokenWindow:
        """``tail64`` → ``TokenWindow(64, "tail")``; the suffix of featurizer names such as
        ``minilm-onnx-int8:tail64``."""
        match = _SPEC.match(spec)
        if match is None:
            raise ConfigError(f"unknown token window {spec!r}: expected head<N>, tail<N> or "
                              f"headtail<N>, e.g. tail64")
        return cls(int(match.group(2)), match.group(1))

    @property
    def label(self) -> str:
        return f"{self.keep}{self.max_tokens}"

    def clip(self, ids: Sequence[int]) -> list[int]:
        """The kept word pieces of ``ids`` (special tokens not included), in their order."""
        n = self.max_tokens
        if len(ids) <= n:
            return list(ids)
        if self.keep == "head":
            return list(ids[:n])
        if self.keep == "tail":
            return list(ids[-n:])
        head = int(n * HEAD_SHARE)
        return list(ids[:head]) + list(ids[len(ids) - (n - head):])

    def chars_needed(self) -> int:
        """Characters of each end of a text that surely hold the window's tokens (a word piece
        is rarely longer than 8 characters), so a long prompt is not tokenized whole."""
        return 8 * self.max_tokens
