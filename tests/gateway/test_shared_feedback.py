"""Feedback given to one replica teaches every replica's online router (through Redis)."""

from __future__ import annotations

import time

import pytest
from gateway_world import MATH_PROMPT, make_outcomes, wait_for
from redis_world import new_space

from polyroute import Pipeline


@pytest.fixture
def bandit_dir(tmp_path):
    path = tmp_path / "bandit"
    Pipeline("bandit", featurizer="tfidf", cache=False).fit(make_outcomes()).save(path)
    return path


@pytest.fixture
def space():
    with new_space() as s:
        yield s


def _learnt(gw) -> int:
    return sum(gw.gateway.decider.pipeline.router.count_)


def test_feedback_on_one_replica_reaches_the_others_router(gateway_factory, standins,
                                                            bandit_dir, space, tmp_path):
    changes = {"router": {"path": str(bandit_dir)}, "shared": space.shared()}
    a = gateway_factory({**changes, "store": {"path": str(tmp_path / "a.sqlite")}})
    b = gateway_factory({**changes, "store": {"path": str(tmp_path / "b.sqlite")}})
    before = _learnt(a)
    assert _learnt(b) == before  # the same router files (its fit counts the training data)
    r = a.chat(MATH_PROMPT)
    assert r.status_code == 200
    with a.client() as c:
        sent = time.monotonic()
        answer = c.post("/v1/feedback", json={
            "request_id": r.headers["x-polyroute-request-id"], "score": 1.0}).json()
    assert answer["learned"] is True and _learnt(a) == before + 1
    wait_for(lambda: _learnt(b) == before + 1, "replica b to learn the score given to a",
             timeout=30)
    delay = time.monotonic() - sent
    print(f"\nfeedback to replica a learnt by replica b after {delay * 1000:.0f} ms")
    # a does not learn its own score twice from the stream
    time.sleep(1.5)
    assert _learnt(a) == before + 1


def test_without_shared_state_each_replica_learns_alone(gateway_factory, standins, bandit_dir,
                                                         tmp_path):
    changes = {"router": {"path": str(bandit_dir)}}
    a = gateway_factory({**changes, "store": {"path": str(tmp_path / "a.sqlite")}})
    b = gateway_factory({**changes, "store": {"path": str(tmp_path / "b.sqlite")}})
    before = _learnt(a)
    r = a.chat(MATH_PROMPT)
    with a.client() as c:
        assert c.post("/v1/feedback", json={
            "request_id": r.headers["x-polyroute-request-id"], "score": 1.0}).json()["learned"]
    time.sleep(1.5)
    assert _learnt(a) == before + 1 and _learnt(b) == before
