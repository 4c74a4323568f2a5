"""Answer-length ceilings per model: learnt percentile, default, clamp, censoring, seeding."""

from __future__ import annotations

import pytest

from polyroute.config import CeilingsConfig
from polyroute.gateway.ceilings import OutputCeilings
from polyroute.store import ERROR, OK, RequestRecord, SQLiteStore


def _ceilings(default: int = 256, percentile: float = 90.0, window: int = 10,
              min_samples: int = 5, **max_tokens: int | None) -> OutputCeilings:
    return OutputCeilings(CeilingsConfig(default_tokens=default, percentile=percentile,
                                         window=window, min_samples=min_samples), max_tokens)


def test_the_default_holds_until_enough_answers_then_the_percentile_of_the_recent_ones():
    c = _ceilings()
    for tokens in (100, 200, 300, 400):
        c.observe("m", tokens)
    assert c.ceiling("m") == 256  # four answers: fewer than min_samples
    c.observe("m", 500)
    # Nearest rank: the 90th percentile of five answers is the fifth shortest.
    assert c.ceiling("m") == 500
    for tokens in range(1, 11):  # ten short answers push the long ones out of the window
        c.observe("m", tokens)
    assert c.ceiling("m") == 9
    assert c.ceiling("other") == 256  # per model


def test_the_ceiling_never_exceeds_the_backends_declared_maximum():
    c = _ceilings(default=4096, m=1000)
    assert c.ceiling("m") == 1000
    for _ in range(5):
        c.observe("m", 5000)
    assert c.ceiling("m") == 1000


def test_answers_that_hit_their_cap_raise_the_ceiling_instead_of_freezing_it():
    c = _ceilings(default=256)
    for _ in range(5):
        c.observe("m", 50)
    assert c.ceiling("m") == 50  # learnt from short answers
    # Longer answers now stop at the cap the gateway sends (the ceiling). Counted as they are,
    # they would keep the ceiling at 50 for ever; censored, they double it until answers fit.
    c.observe("m", 50, cap=50)
    assert c.ceiling("m") == 100  # counted as twice its cap
    for _ in range(10):
        cap = c.ceiling("m")
        c.observe("m", min(cap, 700), cap=cap)
    assert c.ceiling("m") >= 700


def test_a_capped_answer_below_the_ceiling_does_not_lower_it():
    c = _ceilings(default=256, m=800)
    for _ in range(5):
        c.observe("m", 400)
    c.observe("m", 20, cap=20)  # a client's (or a short budget's) small cap reached
    assert c.ceiling("m") == 400
    for _ in range(5):
        c.observe("m", 500, cap=500)  # censored at 2 × 500, clamped to the backend's 800
    assert c.ceiling("m") == 800


def test_ceilings_are_seeded_from_the_answers_in_the_store(tmp_path):
    store = SQLiteStore(tmp_path / "s.sqlite")
    try:
        for i in range(8):
            store.finish_request(RequestRecord(id=f"a{i}", ts=1000.0 + i, status=OK,
                                               http_status=200, chosen="alpha",
                                               prompt_tokens=10, completion_tokens=1000 + i))
        store.finish_request(RequestRecord(id="e", ts=2000.0, status=ERROR, http_status=502,
                                           chosen="alpha", completion_tokens=99999))
        store.finish_request(RequestRecord(id="g", ts=2001.0, status=OK, http_status=200,
                                           chosen="gone", completion_tokens=99999))
        store.flush(10)
        c = _ceilings(window=20)
        c.load(store, ["alpha", "beta"])
    finally:
        store.close()
    assert c.ceiling("alpha") == 1007  # 90th percentile of 1000..1007; errors ignored
    assert c.ceiling("beta") == 256
    assert c.ceiling("gone") == 256  # not a configured backend: not read


def test_min_samples_above_the_window_is_a_config_error():
    with pytest.raises(ValueError, match="min_samples"):
        CeilingsConfig(window=10, min_samples=11)
