"""A gateway starts with backends its router has no outcome data for (before onboarding).

They are reachable by naming them as the model; a profile that can route none of them answers
503 with what to do; a backend that declares ``like: <known model>`` is routed on that model's
estimates, and every decision that used a borrowed estimate says so (header and record).
"""

from __future__ import annotations

from gateway_world import KEY, POETRY_PROMPT


def _start(gateway_factory, standin_urls, **delta):
    urls = {"alpha": standin_urls["alpha"], "delta": standin_urls["beta"]}
    return gateway_factory({"profiles": {"polyroute-no-alpha": {"models": ["delta"]}}},
                           urls=urls, backends={"delta": delta})


def test_unknown_backend_is_reachable_by_name_and_its_profile_says_how_to_onboard(
        gateway_factory, standin_urls, standins):
    gw = _start(gateway_factory, standin_urls)
    r = gw.chat("hello", model="delta", key=KEY)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == \
        "beta answers"
    r = gw.chat("hello", model="polyroute-no-alpha", key=KEY)
    assert r.status_code == 503
    assert "polyroute onboard" in r.json()["error"]["message"]
    assert r.json()["error"]["code"] == "no_routable_backend"
    # The profile that can route alpha still does.
    assert gw.chat("hello", model="polyroute-auto").headers["x-polyroute-model"] == "alpha"


def test_a_borrowing_backend_is_routed_and_the_decision_says_so(gateway_factory, standin_urls,
                                                                standins):
    gw = _start(gateway_factory, standin_urls, like="beta")
    r = gw.chat(POETRY_PROMPT, model="polyroute-auto")
    assert r.status_code == 200
    # Poetry is beta's strength; delta borrows beta's estimates, so it wins the poetry prompt.
    assert r.headers["x-polyroute-model"] == "delta"
    assert r.headers["x-polyroute-borrowed"] == "delta=beta"
    gw.flush()
    rec = gw.gateway.store.get_request(r.headers["x-polyroute-request-id"])
    assert {c.model: c.borrowed_from for c in rec.candidates} == {"delta": "beta",
                                                                  "alpha": None}
    # Naming a plain backend uses no estimate at all: no borrowed header.
    assert "x-polyroute-borrowed" not in gw.chat("hi", model="alpha").headers
