"""End to end: the router's choice decides which stand-in backend answers."""

from __future__ import annotations

from gateway_world import KEY, MATH_PROMPT, POETRY_PROMPT


def test_router_separates_prompts_it_was_trained_on(gateway, standins):
    math = gateway.chat(MATH_PROMPT)
    poetry = gateway.chat(POETRY_PROMPT)
    assert math.status_code == 200 and poetry.status_code == 200
    assert math.headers["x-polyroute-model"] == "alpha"
    assert poetry.headers["x-polyroute-model"] == "beta"
    # The OpenAI response shape is kept, and the answer comes from the chosen backend.
    assert math.json()["object"] == "chat.completion"
    assert math.json()["choices"][0]["message"]["content"] == "alpha answers"
    assert poetry.json()["choices"][0]["message"]["content"] == "beta answers"
    assert standins["alpha"].calls == 1 and standins["beta"].calls == 1
    assert standins["gamma"].calls == 0


def test_backend_receives_upstream_model_id_and_client_fields(gateway, standins):
    r = gateway.chat(MATH_PROMPT, temperature=0.3, max_tokens=17,
                     polyroute={"lam": 0.0})
    assert r.status_code == 200
    sent = standins["alpha"].requests[-1]
    assert sent["model"] == "upstream-alpha"
    assert sent["temperature"] == 0.3 and sent["max_tokens"] == 17
    assert "polyroute" not in sent  # the gateway's own extension is not forwarded
    assert standins["alpha"].headers[-1]["x-request-id"] == r.headers["x-polyroute-request-id"]


def test_backend_api_key_comes_from_the_named_environment_variable(gateway_factory, standins):
    gw = gateway_factory(backends={"alpha": {"api_key_env": "ALPHA_KEY"}},
                         env={"ALPHA_KEY": "sk-upstream-secret"})
    assert gw.chat(MATH_PROMPT).status_code == 200
    assert standins["alpha"].headers[-1]["authorization"] == "Bearer sk-upstream-secret"
    # The client's own key never reaches a backend.
    assert gw.chat(MATH_PROMPT, model="beta").status_code == 200
    assert "authorization" not in standins["beta"].headers[-1]


def test_profiles_apply_their_policy(gateway, standins):
    cheap = gateway.chat(MATH_PROMPT, model="polyroute-cheap")
    assert cheap.headers["x-polyroute-model"] == "gamma"
    assert cheap.headers["x-polyroute-profile"] == "polyroute-cheap"
    restricted = gateway.chat(MATH_PROMPT, model="polyroute-no-alpha")
    assert restricted.headers["x-polyroute-model"] in ("beta", "gamma")
    assert standins["alpha"].calls == 0


def test_per_request_preference_in_body_or_header(gateway):
    assert gateway.chat(MATH_PROMPT, polyroute={"lam": 100}).headers["x-polyroute-model"] == \
        "gamma"
    with gateway.client() as c:
        r = c.post("/v1/chat/completions", headers={"x-polyroute-lambda": "100"},
                   json={"model": "polyroute-best",
                         "messages": [{"role": "user", "content": MATH_PROMPT}]})
    assert r.headers["x-polyroute-model"] == "gamma"
    # A quality floor of 0.25 is reached by cheap gamma (0.3): the cheapest model above it wins.
    assert gateway.chat(MATH_PROMPT, polyroute={"floor": 0.25}).headers["x-polyroute-model"] == \
        "gamma"
    # A floor gamma cannot reach sends math to alpha.
    assert gateway.chat(MATH_PROMPT, polyroute={"floor": 0.9}).headers["x-polyroute-model"] == \
        "alpha"


def test_naming_a_backend_skips_routing(gateway, standins):
    r = gateway.chat(MATH_PROMPT, model="beta")
    assert r.status_code == 200
    assert r.headers["x-polyroute-model"] == "beta"
    assert "x-polyroute-profile" not in r.headers
    gateway.flush()
    rec = gateway.gateway.store.get_request(r.headers["x-polyroute-request-id"])
    assert rec.profile is None and [c.model for c in rec.candidates] == ["beta"]


def test_models_lists_profiles_then_backends(gateway):
    with gateway.client() as c:
        data = c.get("/v1/models").json()
    ids = [m["id"] for m in data["data"]]
    assert data["object"] == "list"
    assert ids[:4] == ["polyroute-auto", "polyroute-best", "polyroute-cheap",
                       "polyroute-no-alpha"]
    assert set(ids[4:]) == {"alpha", "beta", "gamma"}


def test_request_is_recorded_with_candidates_and_cost(gateway):
    r = gateway.chat(MATH_PROMPT)
    gateway.flush()
    rec = gateway.gateway.store.get_request(r.headers["x-polyroute-request-id"])
    assert rec.status == "ok" and rec.http_status == 200 and rec.key_id == "one"
    assert rec.profile == "polyroute-auto" and rec.chosen == "alpha"
    assert rec.candidates[0].model == "alpha"
    assert {c.model for c in rec.candidates} == {"alpha", "beta", "gamma"}
    assert rec.candidates[0].estimated_quality > rec.candidates[1].estimated_quality
    assert [a.outcome for a in rec.attempts] == ["ok"]
    # The stand-in reports 10 prompt + 20 completion tokens; alpha costs $1 / $4 per million.
    assert rec.prompt_tokens == 10 and rec.completion_tokens == 20
    assert abs(rec.cost - (10 * 1.0 + 20 * 4.0) / 1e6) < 1e-12
    assert KEY not in repr(rec)


def test_decision_threads_follow_the_cores_this_process_may_use(monkeypatch):
    """A gateway pinned to fewer cores than the machine has (taskset, a container's cpuset)
    sizes its decision workers and encoder threads by the cores it may use."""
    import os

    from polyroute.gateway import routing

    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert routing.usable_cores() == 1
    assert routing.default_workers() == 1 and routing.default_threads() == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(9)), raising=False)
    assert routing.default_workers() == 4 and routing.default_threads(4) == 2
