"""The stage-facing layer: a request's texts share placeholders, the answer gets them back, a
suspect request is restricted to the safe set, and records never hold PII values."""

from __future__ import annotations

import numpy as np
import pytest

from polyroute.errors import ConfigError
from polyroute.guards import GuardsConfig
from polyroute.guards.config import JailbreakConfig, PiiConfig
from polyroute.guards.stage import RequestGuards, StreamRestorer

PII_ONLY = GuardsConfig(pii=PiiConfig(check_answers=True))


def test_texts_of_one_request_share_placeholders_and_record_has_no_values() -> None:
    guards = RequestGuards(PII_ONLY)
    out = guards.check_request(["Reply from ops@x.io only.", "Is ops@x.io or dev@x.io mine?"],
                               "Is ops@x.io or dev@x.io mine?", None)
    assert out.texts == ("Reply from <EMAIL_1> only.", "Is <EMAIL_1> or <EMAIL_2> mine?")
    assert out.placeholders == {"<EMAIL_1>": "ops@x.io", "<EMAIL_2>": "dev@x.io"}
    assert out.action == "flag" and out.safe_models == ()
    record = out.record()
    assert "ops@x.io" not in repr(record) and "dev@x.io" not in repr(record)
    assert [s["type"] for s in record["spans"]] == ["EMAIL"] * 3


def test_answer_restored_and_model_written_pii_redacted_apart() -> None:
    guards = RequestGuards(PII_ONLY)
    req = guards.check_request(["write to ops@x.io"], "write to ops@x.io", None)
    ans = guards.check_answer("Sure: <EMAIL_1>, or try leak@y.io.", req)
    assert ans.text == "Sure: ops@x.io, or try <EMAIL_2>."
    assert ans.verdict.placeholders == {"<EMAIL_2>": "leak@y.io"}


def test_no_restore_when_disabled_and_flag_mode_forwards_originals() -> None:
    guards = RequestGuards(GuardsConfig(pii=PiiConfig(restore_in_answer=False)))
    req = guards.check_request(["a@b.io"], "a@b.io", None)
    assert guards.check_answer("<EMAIL_1>", req).text == "<EMAIL_1>"
    flag = RequestGuards(GuardsConfig(pii=PiiConfig(action="flag")))
    out = flag.check_request(["a@b.io"], "a@b.io", None)
    assert out.texts == ("a@b.io",) and out.placeholders == {} and out.action == "flag"
    block = RequestGuards(GuardsConfig(pii=PiiConfig(action="block")))
    assert block.check_request(["hi", "a@b.io"], "a@b.io", None).action == "block"


def test_jailbreak_restricts_to_safe_models_with_the_routers_embedding() -> None:
    config = GuardsConfig(jailbreak=JailbreakConfig(action="restrict", safe_models=("safe-1",)))
    guards = RequestGuards(config)
    model = guards.jailbreak.model
    toward = model.coef / np.linalg.norm(model.coef)
    out = guards.check_request(["hello"], "hello", toward)
    assert out.action == "restrict" and out.safe_models == ("safe-1",)
    calm = guards.check_request(["hello"], "hello", -toward)
    assert calm.action == "allow" and calm.safe_models == ()


def test_the_classifier_gets_its_own_encoder_only_when_the_routers_differs() -> None:
    import dataclasses

    guards = RequestGuards(GuardsConfig(jailbreak=JailbreakConfig()))
    assert guards.own_featurizer(guards.featurizer_id) is None  # one embedding, shared
    own = guards.own_featurizer("tfidf:v1:abc")
    assert own is not None and own.id == guards.featurizer_id
    assert RequestGuards(PII_ONLY).own_featurizer("tfidf:v1:abc") is None
    custom = dataclasses.replace(guards.jailbreak.model, featurizer_id="st:my-own-model")
    odd = RequestGuards(GuardsConfig(jailbreak=JailbreakConfig()), jailbreak_model=custom)
    with pytest.raises(ConfigError, match="train_jailbreak"):
        odd.require_featurizer("tfidf:v1:abc")
    odd.require_featurizer("st:my-own-model")


@pytest.mark.parametrize(("chunks", "expected"), [
    (["Hi <EM", "AIL_1> bye"], "Hi a@b.io bye"),
    (["<", "EMAIL_1", ">", "!"], "a@b.io!"),
    (["a < b and ", "c<d"], "a < b and c<d"),
    (["ends with <EMAIL_1"], "ends with <EMAIL_1"),
    (["<EMAIL_2> unknown"], "<EMAIL_2> unknown"),
    (["x" * 50 + "<", "EMAIL_1>"], "x" * 50 + "a@b.io"),
])
def test_stream_restorer(chunks: list[str], expected: str) -> None:
    restorer = StreamRestorer({"<EMAIL_1>": "a@b.io"})
    out = "".join(restorer.feed(c) for c in chunks) + restorer.flush()
    assert out == expected


def test_stream_restorer_without_mapping_is_passthrough() -> None:
    guards = RequestGuards(GuardsConfig(pii=PiiConfig(restore_in_answer=False)))
    req = guards.check_request(["a@b.io"], "a@b.io", None)
    restorer = guards.stream_restorer(req)
    assert restorer.feed("<EMA") == "<EMA" and restorer.flush() == ""


def test_only_encoders_of_the_classifiers_kind_are_built_to_match_it(monkeypatch) -> None:
    """Finding the classifier's encoder must not build (export) an ONNX model for a
    classifier on sentence-transformers embeddings."""
    import dataclasses

    import polyroute.features as features

    built: list[str] = []
    real = features.make_featurizer

    def spy(spec: str = "minilm"):
        built.append(spec)
        return real(spec)

    monkeypatch.setattr(features, "make_featurizer", spy)
    base = RequestGuards(GuardsConfig(jailbreak=JailbreakConfig()))
    custom = dataclasses.replace(base.jailbreak.model, featurizer_id="st:my-own-model")
    guards = RequestGuards(GuardsConfig(jailbreak=JailbreakConfig()), jailbreak_model=custom)
    with pytest.raises(ConfigError):
        guards.own_featurizer("tfidf:v1:abc")
    assert built and "minilm-onnx-int8" not in built
