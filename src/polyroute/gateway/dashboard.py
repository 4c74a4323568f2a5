"""The live view: ``GET /dashboard`` (a static page) and ``GET /v1/admin/stats`` (its numbers).

Why a static page reading a JSON endpoint: nothing to build at install time (one HTML file with
its own small script and inline SVG charts), and the numbers a person sees are the ones a script
or a test can fetch. The page holds no data, so it is served to anyone; the numbers need an admin
key, which the page asks for (or reads from the URL's fragment, ``/dashboard#key=…``, which a
browser never sends to the server) and keeps in the tab's sessionStorage.
"""

from __future__ import annotations

import asyncio
import time
from importlib.resources import files

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from polyroute.evaluation.traffic import Prices
from polyroute.gateway.admin import require_admin
from polyroute.gateway.errors import APIError, error_response
from polyroute.gateway.service import Gateway
from polyroute.gateway.spend import period_start
from polyroute.gateway.stats import window_stats

#: The longest window the stats endpoint reads (a week): a live view, not a report.
MAX_WINDOW_S = 7 * 86400
_PAGE = files("polyroute.gateway").joinpath("_static/dashboard.html")


async def dashboard(request: Request) -> Response:
    return HTMLResponse(_PAGE.read_text(encoding="utf-8"),
                        headers={"cache-control": "no-store",
                                 "content-security-policy": "default-src 'self'; "
                                 "script-src 'unsafe-inline' 'self'; style-src 'unsafe-inline'"})


async def stats(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    try:
        require_admin(gw, request)
        window = _int_param(request, "window", 3600, 60, MAX_WINDOW_S)
        buckets = _int_param(request, "buckets", 24, 1, 200)
    except APIError as exc:
        return error_response(exc)
    until = time.time()
    since = until - window
    prices = {b.name: Prices(b.input_price_per_mtok, b.output_price_per_mtok)
              for b in gw.config.backends}
    store = gw.store

    def read() -> tuple[dict, dict[str, float]]:  # the store's reads block: off the loop
        window = window_stats(store.requests_between(since, until), since=since,
                              until=until, buckets=buckets, prices=prices)
        spent: dict[str, float] = {}
        for k in gw.config.keys:  # what each key spent in its own limit period
            start = period_start(k.spend_period, until)
            spent[k.id] = store.spend_by_key(start).get(k.id, 0.0)
        return window, spent

    window_numbers, spent = await asyncio.to_thread(read)
    body = {
        "object": "polyroute.stats",
        "window": window_numbers,
        "router_identity": gw.pipeline.identity,
        "in_flight": gw.active,
        "backends": [{"name": n, "breaker": b.breaker.state, "load": b.load}
                     for n, b in gw.backends.items()],
        "keys": [{"id": k.id, "spent": spent[k.id], "limit": k.spend_limit,
                  "period": k.spend_period} for k in gw.config.keys],
    }
    return JSONResponse(body, headers={"cache-control": "no-store"})


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise APIError(400, f"{name} must be a whole number from {low} to {high}",
                       code="invalid_parameter")
    return int(raw)
