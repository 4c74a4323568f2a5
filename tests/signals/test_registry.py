"""Every built-in signal on a known request, and the config-defined ones."""

from __future__ import annotations

import numpy as np
import pytest

from polyroute.routers import Estimates
from polyroute.signals import (
    BUILTINS,
    KINDS,
    SignalInputs,
    SignalsConfig,
    SignalSet,
    SignalValues,
    catalog,
)


def inputs(**changes) -> SignalInputs:
    body = {"model": "m", "stream": True, "metadata": {"team": "ml"},
            "messages": [{"role": "system", "content": "Be terse."},
                         {"role": "user", "content": "Review this Python code please"}],
            "tools": [{"type": "function", "function": {"name": "run"}}]}
    base = dict(body=body, text="Review this Python code please", key_id="one",
                key_tags=frozenset({"free"}), headers={"x-polyroute-meta-region": "eu"})
    return SignalInputs(**{**base, **changes})


def test_every_builtin_declares_a_known_kind_and_unique_name():
    names = [s.name for s in BUILTINS]
    assert len(names) == len(set(names))
    assert all(s.kind in KINDS for s in BUILTINS)


def test_request_signals_on_a_known_body():
    values = SignalValues(SignalSet(SignalsConfig()), inputs())
    assert values.get("text") == "Review this Python code please"
    assert values.get("language") == "en"
    assert values.get("prompt_tokens") == 8  # 30 characters / 4, rounded up
    assert values.get("context_tokens") > values.get("prompt_tokens")
    assert values.get("messages") == 2
    assert values.get("has_tools") is True and values.get("has_images") is False
    assert values.get("json_mode") is False and values.get("stream") is True
    assert values.get("key") == "one" and values.get("key_tags") == frozenset({"free"})


def test_metadata_from_the_body_else_a_header():
    values = SignalValues(SignalSet(SignalsConfig()), inputs())
    assert values.get("metadata.team") == "ml"
    assert values.get("metadata.region") == "eu"
    assert values.get("metadata.absent") is None


def test_keywords_match_whole_words_and_patterns():
    config = SignalsConfig.model_validate({"keywords": {
        "code": {"words": ["python", "code review"]},
        "ticket": {"patterns": [r"\bJIRA-\d+\b"], "case_sensitive": True}}})
    signals = SignalSet(config)

    def get(name, text):
        return SignalValues(signals, inputs(text=text)).get(name)

    assert get("keyword.code", "Please do a CODE REVIEW of this") is True
    assert get("keyword.code", "pythonic is not python-the-word? it is: python") is True
    assert get("keyword.code", "pythonic thoughts") is False
    assert get("keyword.ticket", "see JIRA-123") is True
    assert get("keyword.ticket", "see jira-123") is False


def test_router_signals_read_the_estimates():
    est = Estimates(models=("a", "b", "c"), quality=np.array([[0.2, 0.9, 0.5]]),
                    cost=np.array([[1e-4, 2e-4, 1e-5]]),
                    uncertainty=np.array([[0.3, 0.1, 0.2]]))
    values = SignalValues(SignalSet(SignalsConfig()),
                          inputs(embedding=np.ones(3), estimates=est))
    assert values.get("router.best_model") == "b"
    assert values.get("router.best_quality") == pytest.approx(0.9)
    assert values.get("router.spread") == pytest.approx(0.7)
    assert values.get("router.uncertainty") == pytest.approx(0.1)


def test_analysis_signals_refuse_before_the_analysis():
    values = SignalValues(SignalSet(SignalsConfig()), inputs())
    with pytest.raises(RuntimeError, match="needs the router's analysis"):
        values.get("router.best_quality")


def test_domains_by_example_similarity():
    vocab = ["contract", "clause", "poem", "verse"]

    def embed(texts):  # a bag of words over a tiny vocabulary: similarity is known
        return np.array([[t.lower().count(w) for w in vocab] for t in texts], dtype=float)

    config = SignalsConfig.model_validate({"domains": {
        "legal": {"examples": ["a contract clause"], "threshold": 0.6},
        "poetry": {"examples": ["a poem", "a verse"], "threshold": 0.6}}})
    signals = SignalSet(config, embed)
    legal = SignalValues(signals, inputs(embedding=embed(["contract contract clause"])[0]))
    assert legal.get("domain") == "legal"
    assert legal.get("domain.legal") > 0.9 and legal.get("domain.poetry") == 0.0
    verse = SignalValues(signals, inputs(embedding=embed(["verse"])[0]))
    assert verse.get("domain") == "poetry"  # the nearest example, not the centroid
    neither = SignalValues(signals, inputs(embedding=np.array([1.0, 0.0, 1.0, 1.0])))
    assert neither.get("domain") is None  # at most 0.58 (to "a poem"): below both thresholds


def test_catalog_lists_config_signals_and_what_they_need():
    config = SignalsConfig.model_validate({"keywords": {"k": {"words": ["x"]}},
                                           "domains": {"d": {"examples": ["y"]}}})
    known = catalog(config)
    assert known["keyword.k"] == ("bool", "request")
    assert known["domain"] == ("string", "analysis") and known["domain.d"][0] == "number"
    assert "domain" not in catalog(SignalsConfig())
