"""End to end: feedback is stored with its request, exported for training, and fed to routers
that learn online."""

from __future__ import annotations

import json
from typing import ClassVar

import numpy as np
from gateway_world import KEY, MATH_PROMPT, OTHER_KEY, POETRY_PROMPT, make_outcomes

from polyroute import Pipeline, load_outcomes
from polyroute.cli import main
from polyroute.routers import Router


def _feedback(gateway, key: str = KEY, **body):
    with gateway.client(key) as c:
        return c.post("/v1/feedback", json=body)


def test_feedback_round_trip(gateway, tmp_path):
    r = gateway.chat(MATH_PROMPT)
    rid = r.headers["x-polyroute-request-id"]
    fb = _feedback(gateway, request_id=rid, score=0.75, comment="good enough")
    assert fb.status_code == 200, fb.text
    assert fb.json()["request_id"] == rid and fb.json()["learned"] is False
    gateway.flush()
    assert gateway.gateway.store.get_request(rid).feedback == 0.75
    # A later score replaces the earlier one for training.
    assert _feedback(gateway, request_id=rid, score=1.0).status_code == 200


def test_feedback_errors(gateway):
    rid = gateway.chat(MATH_PROMPT).headers["x-polyroute-request-id"]
    assert _feedback(gateway, request_id="nope", score=1).status_code == 404
    # Another client's request looks exactly like an unknown one.
    other = _feedback(gateway, key=OTHER_KEY, request_id=rid, score=1)
    assert other.status_code == 404 and other.json()["error"]["code"] == "request_not_found"
    for bad in ({"request_id": rid, "score": 1.5}, {"request_id": rid, "score": True},
                {"request_id": rid}, {"score": 0.5}, {"request_id": rid, "score": 0.5, "x": 1},
                {"request_id": rid, "score": 0.5, "comment": 7}):
        r = _feedback(gateway, **bad)
        assert r.status_code == 400, bad
        assert r.json()["error"]["type"] == "invalid_request_error"
    assert _feedback(gateway, key="wrong", request_id=rid, score=1).status_code == 401


def test_logs_and_export_feedback_commands(gateway, tmp_path, capsys):
    ids = {}
    for text in (MATH_PROMPT, POETRY_PROMPT, "What is 2 + 2?"):
        ids[text] = gateway.chat(text).headers["x-polyroute-request-id"]
    gateway.chat("hi", model="bad-model")
    _feedback(gateway, request_id=ids[MATH_PROMPT], score=1.0)
    _feedback(gateway, request_id=ids[POETRY_PROMPT], score=0.25)
    gateway.flush()
    store = str(gateway.config.store.path)

    assert main(["logs", "--store", store, "-n", "10"]) == 0
    out = capsys.readouterr().out
    assert ids[MATH_PROMPT] in out and "alpha" in out and "spend per model" in out

    assert main(["logs", "--store", store, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["requests"]) == 4
    spend = {s["model"]: s for s in data["spend"]}
    assert spend["alpha"]["requests"] >= 1 and spend["alpha"]["cost"] > 0

    out_file = tmp_path / "feedback.jsonl"
    assert main(["export-feedback", "--store", store, "-o", str(out_file)]) == 0
    rows = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert {(r["prompt_id"], r["model"], r["quality"]) for r in rows} == {
        (ids[MATH_PROMPT], "alpha", 1.0), (ids[POETRY_PROMPT], "beta", 0.25)}
    assert {r["prompt"] for r in rows} == {MATH_PROMPT, POETRY_PROMPT}
    # The core loader reads it back as an outcomes table ready for training.
    outcomes = load_outcomes(out_file)
    assert outcomes.n_prompts == 2 and set(outcomes.model_names) == {"alpha", "beta"}


class RecordingOnlineRouter(Router):
    """A router that learns online: it remembers every ``learn_one`` call and, to prove the
    update is used, raises the learned model's quality to the score it was given."""

    learns_online: ClassVar[bool] = True

    def __init__(self) -> None:
        pass

    def _fit(self, outcomes, features) -> None:
        self.means_ = np.nanmean(outcomes.quality, axis=0)
        self.learned_: list = []

    def _estimate(self, features):
        return np.tile(self.means_, (features.shape[0], 1)), None

    def learn_one(self, features_row: np.ndarray, model_name: str, quality: float) -> None:
        self.learned_.append((np.asarray(features_row), model_name, quality))
        self.means_[self.models_.index(model_name)] = quality


def test_feedback_updates_a_router_that_learns_online(gateway_factory, standins):
    router = RecordingOnlineRouter()
    pipeline = Pipeline(router, featurizer="tfidf", cache=False).fit(make_outcomes())
    gw = gateway_factory(pipeline=pipeline)
    r = gw.chat(MATH_PROMPT, model="polyroute-cheap")
    assert r.headers["x-polyroute-model"] == "gamma"
    fb = _feedback(gw, request_id=r.headers["x-polyroute-request-id"], score=1.0)
    assert fb.json()["learned"] is True
    [(row, model, quality)] = router.learned_
    assert model == "gamma" and quality == 1.0
    assert row.shape == (router.n_features_in_,)
    # gamma now looks perfect and is still the cheapest: even λ = 0 picks it.
    assert gw.chat(POETRY_PROMPT).headers["x-polyroute-model"] == "gamma"
