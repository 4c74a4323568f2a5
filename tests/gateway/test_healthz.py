"""``/healthz`` says whether the gateway can serve: by how many backends can take traffic, with
each breaker's state in words an operator reads."""

from __future__ import annotations

from gateway_world import MATH_PROMPT, wait_for


def _health(gw):
    with gw.client(key=None) as c:
        return c.get("/healthz")


def test_all_backends_healthy_is_ok(gateway):
    r = _health(gateway)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["health"] == {"alpha": "healthy", "beta": "healthy", "gamma": "healthy"}


def test_some_backends_cooling_down_is_degraded(gateway_factory, standins):
    gw = gateway_factory({"breaker": {"failure_threshold": 1, "cooldown": 3600,
                                      "max_cooldown": 3600}})
    standins["alpha"].mode = "500"
    assert gw.chat(MATH_PROMPT, model="alpha").status_code == 502
    r = _health(gw)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "degraded"
    assert body["backends"]["alpha"] == "open"  # the raw state stays for scripts
    assert body["health"]["alpha"].startswith("cooling down (")
    assert body["health"]["alpha"].endswith(" s left)")
    assert body["health"]["beta"] == body["health"]["gamma"] == "healthy"


def test_every_backend_cooling_down_is_down_with_503(gateway_factory, standins):
    gw = gateway_factory({"breaker": {"failure_threshold": 1, "cooldown": 3600,
                                      "max_cooldown": 3600}})
    for name in ("alpha", "beta", "gamma"):
        standins[name].mode = "500"
        gw.chat(MATH_PROMPT, model=name)
    r = _health(gw)
    assert r.status_code == 503
    assert r.json()["status"] == "down"
    assert all(h.startswith("cooling down") for h in r.json()["health"].values())


def test_a_backend_whose_cooldown_ended_is_probing(gateway_factory, standins):
    gw = gateway_factory({"breaker": {"failure_threshold": 1, "cooldown": 0.05}})
    standins["alpha"].mode = "500"
    gw.chat(MATH_PROMPT, model="alpha")
    wait_for(lambda: gw.gateway.backends["alpha"].breaker.retry_after() == 0, "the cooldown")
    body = _health(gw).json()
    assert body["health"]["alpha"] == "probing"
    assert body["status"] == "degraded"
