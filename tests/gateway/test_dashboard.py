"""The live view end to end: the stats endpoint behind an admin key, and the page rendered in a
real headless Chromium showing the numbers the store holds."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser

import pytest
from gateway_world import KEY, MATH_PROMPT, OTHER_KEY, POETRY_PROMPT

from polyroute.gateway.auth import hash_key

KEYS = [{"id": "one", "sha256": hash_key(KEY), "admin": True, "spend_limit": 5.0},
        {"id": "two", "sha256": hash_key(OTHER_KEY)}]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def busy(gateway_factory, standins):
    """A gateway with some traffic: routed requests, one fallback, a direct backend call."""
    gw = gateway_factory({"keys": KEYS})
    for _ in range(3):
        assert gw.chat(MATH_PROMPT).status_code == 200
    assert gw.chat(POETRY_PROMPT, key=OTHER_KEY).status_code == 200
    standins["alpha"].next("500")
    assert gw.chat("alpha please", model="alpha").status_code in (200, 502)
    assert gw.chat(MATH_PROMPT, model="polyroute-cheap").status_code == 200
    gw.flush()
    return gw


def _stats(gw, key=KEY, **params):
    with gw.client(key) as c:
        return c.get("/v1/admin/stats", params=params)


def test_stats_need_an_admin_key(busy):
    assert _stats(busy, key=None).status_code == 401
    assert _stats(busy, key=OTHER_KEY).status_code == 403
    assert _stats(busy, window="abc").status_code == 400
    assert _stats(busy, window=str(10 ** 9)).status_code == 400


def test_stats_match_the_store(busy):
    body = _stats(busy).json()
    w = body["window"]
    stored = busy.gateway.store.recent_requests(100)
    assert w["requests"] == len(stored) == 6
    assert w["spend"] == pytest.approx(sum(r.cost for r in stored))
    assert w["fallbacks"] == sum(r.fallbacks for r in stored)
    chosen = [r.chosen for r in stored if r.chosen]
    for model, share in w["share_by_model"].items():
        assert share == pytest.approx(chosen.count(model) / len(stored))
    assert {b["name"] for b in body["backends"]} == {"alpha", "beta", "gamma"}
    keys = {k["id"]: k for k in body["keys"]}
    assert keys["one"]["limit"] == 5.0
    for key_id in ("one", "two"):  # a key without a limit too (no in-process tally for it)
        assert keys[key_id]["spent"] == pytest.approx(
            sum(r.cost for r in stored if r.key_id == key_id))
    assert keys["two"]["spent"] > 0 and keys["two"]["limit"] is None
    assert body["router_identity"] == busy.gateway.pipeline.identity


class _Stats(HTMLParser):
    """``data-stat`` values and ``data-name`` rows of the rendered page."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self.names: list[str] = []
        self._open: str | None = None
        self.loaded = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "data-stat" in a:
            self._open = a["data-stat"]
        if "data-name" in a:
            self.names.append(a["data-name"])
        if tag == "body" and a.get("data-loaded") == "1":
            self.loaded = True

    def handle_data(self, data):
        if self._open is not None:
            self.values[self._open] = data.strip()
            self._open = None


def _chromium(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--virtual-time-budget=10000", *args],
        capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package "
                    "(apt-get install chromium) to render the dashboard")
def test_the_page_shows_the_stores_numbers_in_a_real_browser(busy, tmp_path):
    body = _stats(busy).json()
    done = _chromium(f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                     f"{busy.url}/dashboard#key={KEY}")
    page = _Stats()
    page.feed(done.stdout)
    assert page.loaded, done.stderr[-2000:]
    w = body["window"]
    assert page.values["requests"] == str(w["requests"])
    assert page.values["fallbacks"] == str(w["fallbacks"])
    assert float(page.values["spend"]) == pytest.approx(w["spend"], rel=1e-3)
    assert float(page.values["p50"]) == pytest.approx(w["latency_ms"]["p50"], abs=0.06)
    assert set(w["share_by_model"]) <= set(page.names)
    assert {"alpha", "beta", "gamma", "one", "two"} <= set(page.names)


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package")
def test_without_a_key_the_page_asks_for_one(busy, tmp_path):
    done = _chromium(f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                     f"{busy.url}/dashboard")
    assert 'id="login"' in done.stdout and 'id="login" hidden' not in done.stdout
    assert 'data-loaded="1"' not in done.stdout
