"""Token windows: which word pieces of a long prompt reach the encoder."""

from __future__ import annotations

import pytest

from polyroute.errors import ConfigError
from polyroute.features import TokenWindow

IDS = list(range(100))


def test_short_inputs_pass_whole() -> None:
    for keep in ("head", "tail", "headtail"):
        assert TokenWindow(200, keep).clip(IDS) == IDS


def test_head_tail_and_both() -> None:
    assert TokenWindow(8, "head").clip(IDS) == list(range(8))
    assert TokenWindow(8, "tail").clip(IDS) == list(range(92, 100))
    assert TokenWindow(8, "headtail").clip(IDS) == [0, 1, 94, 95, 96, 97, 98, 99]


def test_parse_names_the_window() -> None:
    window = TokenWindow.parse("headtail64")
    assert window == TokenWindow(64, "headtail") and window.label == "headtail64"
    for bad in ("tail", "middle64", "tail-3", "tail0"):
        with pytest.raises(ConfigError, match="token window"):
            TokenWindow.parse(bad)
