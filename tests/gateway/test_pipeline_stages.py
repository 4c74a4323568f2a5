"""The request pipeline's seams: ordered stages a stage can end early, and one serving strategy
per policy kind's call shape."""

from __future__ import annotations

from gateway_world import MATH_PROMPT
from starlette.responses import JSONResponse

from polyroute.gateway.serving import strategy_for
from polyroute.gateway.stages import PIPELINE
from polyroute.policies.kinds import policy_kinds


def test_every_policy_kind_is_served_by_a_registered_strategy():
    for kind in policy_kinds().values():
        strategy = strategy_for(kind.serving)
        assert callable(strategy.serve) and callable(strategy.reservation)
    assert [name for name, _ in PIPELINE] == ["admit", "parse", "decide", "reserve", "serve"]


def test_a_stage_can_end_the_request_early_with_a_reason(gateway, standins):
    seen = []

    async def block_math(ctx):
        seen.append(ctx.chat.text)
        if "equation" in ctx.chat.text:
            ctx.rec.ended_by = "guard: no equations today"
            ctx.rec.finish("error", 403, kind="blocked")
            return JSONResponse({"error": {"message": "blocked", "type": "policy"}},
                                status_code=403, headers=ctx.rec.headers())
        return None

    gw = gateway.gateway
    stages = list(gw.stages)
    stages.insert([n for n, _ in stages].index("decide"), ("block", block_math))
    gw.stages = tuple(stages)
    r = gateway.chat(MATH_PROMPT)
    assert r.status_code == 403
    assert r.headers["x-polyroute-ended-by"] == "guard: no equations today"
    assert all(s.calls == 0 for s in standins.values())  # later stages never ran
    gateway.flush()
    rec = gw.store.get_request(r.headers["x-polyroute-request-id"])
    assert rec.status == "error" and rec.http_status == 403
    assert rec.error == "guard: no equations today"
    # Requests the stage lets through are served as before.
    ok = gateway.chat("Write a short poem about the sea at dawn.")
    assert ok.status_code == 200 and "x-polyroute-ended-by" not in ok.headers
    assert len(seen) == 2
