"""A running gateway switches to a new router without a restart (admin call or SIGHUP)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys

import httpx
import pytest
import yaml
from gateway_world import (
    KEY,
    MATH_PROMPT,
    OTHER_KEY,
    make_outcomes,
    save_router,
    swapped_outcomes,
    wait_for,
)
from standin import ServerThread, StandIn

from polyroute import Pipeline
from polyroute.gateway import hash_key

KEYS = [{"id": "one", "sha256": hash_key(KEY), "admin": True},
        {"id": "two", "sha256": hash_key(OTHER_KEY)}]


@pytest.fixture
def live_router(tmp_path, router_dir):
    path = tmp_path / "live-router"
    shutil.copytree(router_dir, path)
    return path


def test_admin_reload_switches_routers_and_names_both(gateway_factory, standins, live_router):
    gw = gateway_factory({"router": {"path": str(live_router)}, "keys": KEYS})
    assert gw.chat(MATH_PROMPT).headers["x-polyroute-model"] == "alpha"
    before = gw.gateway.pipeline.identity
    new_identity = save_router(swapped_outcomes(), live_router)
    with gw.client(OTHER_KEY) as c:
        assert c.post("/v1/admin/reload-router").status_code == 403
    with gw.client(None) as c:
        assert c.post("/v1/admin/reload-router").status_code == 401
    with gw.client(KEY) as c:
        r = c.post("/v1/admin/reload-router")
    assert r.status_code == 200, r.text
    assert r.json() == {"object": "router.switch", "previous": before, "current": new_identity}
    assert before != new_identity
    assert gw.chat(MATH_PROMPT).headers["x-polyroute-model"] == "beta"


def test_a_router_that_cannot_load_leaves_the_old_one_serving(gateway_factory, standins,
                                                             live_router):
    gw = gateway_factory({"router": {"path": str(live_router)}, "keys": KEYS})
    (live_router / "polyroute.json").write_text("{not json")
    with gw.client(KEY) as c:
        r = c.post("/v1/admin/reload-router")
    assert r.status_code == 409 and "not switched" in r.json()["error"]["message"]
    assert gw.chat(MATH_PROMPT).headers["x-polyroute-model"] == "alpha"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sighup_reloads_the_router_of_a_running_gateway(tmp_path, live_router):
    backend = StandIn("any")
    with ServerThread(backend) as server:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        config = {"backends": [{"name": n, "base_url": f"{server.url}/v1",
                                "input_price_per_mtok": p, "output_price_per_mtok": p}
                               for n, p in (("alpha", 1), ("beta", 1), ("gamma", 0.1))],
                  "router": {"path": str(live_router)}, "keys": KEYS,
                  "store": {"path": "state.sqlite"},
                  "server": {"port": port, "log_level": "info"}}
        (tmp_path / "gw.yaml").write_text(yaml.safe_dump(config))
        log = (tmp_path / "gw.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "polyroute", "serve", "--config",
                                 str(tmp_path / "gw.yaml")], stdout=log, stderr=log,
                                env={**os.environ, "HF_HUB_OFFLINE": "1"})
        url = f"http://127.0.0.1:{port}"

        def chosen() -> str | None:
            try:
                r = httpx.post(f"{url}/v1/chat/completions", timeout=10,
                               headers={"authorization": f"Bearer {KEY}"},
                               json={"model": "polyroute-auto",
                                     "messages": [{"role": "user", "content": MATH_PROMPT}]})
            except httpx.TransportError:
                return None
            return r.headers.get("x-polyroute-model")

        try:
            wait_for(lambda: chosen() == "alpha", "the gateway to route math to alpha", 90)
            new_identity = save_router(swapped_outcomes(), live_router)
            proc.send_signal(signal.SIGHUP)
            wait_for(lambda: chosen() == "beta", "the reloaded router to route math to beta",
                     60, poll=0.2)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
            log.close()
    text = (tmp_path / "gw.log").read_text()
    assert f"-> {new_identity}" in text and "router switched:" in text


def test_identity_changes_with_the_saved_state(tmp_path):
    world = make_outcomes()
    a = save_router(world, tmp_path / "a")
    assert a == save_router(world, tmp_path / "b")  # same data, same state: same identity
    assert a != save_router(swapped_outcomes(), tmp_path / "c")
    assert Pipeline("knn").identity == "knn@unsaved"
