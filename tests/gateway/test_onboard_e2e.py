"""End to end: backends no training data names → ``polyroute onboard --yes`` against replay
stand-ins → ``polyroute serve`` routes among them, each stand-in getting its strong task."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import yaml
from gateway_world import KEY
from replay import ReplayBackend, bundled
from standin import ServerThread

from polyroute.cli import main
from polyroute.config import load_config
from polyroute.gateway import create_app, hash_key
from polyroute.gateway.server import uvicorn_config
from polyroute.store import SQLiteStore

#: Stand-in name → (bundled model it replays, the task where it is the best of the three).
STANDINS = {"frontier": ("llama-3.3-nemotron-super-49b-v1", "math"),
            "local": ("qwen2.5-7b-instruct", "arc_challenge"),
            "small": ("gemma-2-9b-it", "agentverse-logicgrid")}


@pytest.fixture
def replays():
    apps = {name: ReplayBackend(model) for name, (model, _) in STANDINS.items()}
    servers = {name: ServerThread(app).start() for name, app in apps.items()}
    yield apps, {name: s.url for name, s in servers.items()}
    for s in servers.values():
        s.stop()


def _config(tmp_path, urls) -> str:
    prices = {"frontier": (0.6, 0.6), "local": (0.2, 0.2), "small": (0.1, 0.1)}
    config = {
        "backends": [{"name": n, "base_url": f"{u}/v1", "input_price_per_mtok": prices[n][0],
                      "output_price_per_mtok": prices[n][1]} for n, u in urls.items()],
        "router": {"path": "router", "featurizer": "tfidf"},
        "keys": [{"id": "one", "sha256": hash_key(KEY)}],
        "store": {"path": "state.sqlite"},
        "profiles": {"polyroute-best": {"lam": 0.0}},
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_onboard_then_serve_routes_each_task_to_its_strong_backend(tmp_path, replays, capsys):
    apps, urls = replays
    config_path = _config(tmp_path, urls)
    assert main(["onboard", "--config", config_path, "--per-model", "150", "--yes"]) == 0
    printed = capsys.readouterr().out
    assert "onboarding plan" in printed and "collected answers" in printed
    assert (tmp_path / "router" / "polyroute.json").is_file()
    sent = {name: app.requests for name, app in apps.items()}
    # Each backend is asked each of its 150 prompts; a call whose answer is lost in transit (a
    # loaded machine) is asked again, so a stand-in may see a few more requests, never fewer.
    assert all(150 <= n <= 155 for n in sent.values()), sent
    rows = [json.loads(line) for line in
            (tmp_path / "onboarding-outcomes.jsonl").read_text().splitlines()]
    assert {r["model"] for r in rows} == set(STANDINS) and all("answer" in r for r in rows)

    # Resumable: a second run finds every answer in the store and sends nothing.
    assert main(["onboard", "--config", config_path, "--per-model", "150", "--yes"]) == 0
    assert "nothing to onboard" in capsys.readouterr().out  # the router now knows them all
    assert {name: app.requests for name, app in apps.items()} == sent

    config = load_config(config_path)
    store = SQLiteStore(config.store.path, readonly=True)
    try:
        kept = store.calibration_answers()
    finally:
        store.close()
    assert len(kept) == 450 and all(a.cost > 0 for a in kept)
    assert Counter(a.backend for a in kept) == {name: 150 for name in STANDINS}

    # Serve: prompts of each stand-in's strong task (not asked during onboarding) go to it.
    outcomes, _, _ = bundled()
    asked = {a.prompt_id for a in kept}
    app = create_app(config, env={})
    with ServerThread(app, uvicorn_config(app, config, log_level="warning")) as server:
        import httpx

        with httpx.Client(base_url=server.url, timeout=30,
                          headers={"authorization": f"Bearer {KEY}"}) as client:
            for name, (_, task) in STANDINS.items():
                rows_of_task = [i for i, (t, p) in enumerate(zip(outcomes.tasks,
                                                                 outcomes.prompt_ids,
                                                                 strict=True))
                                if t == task and p not in asked]
                picked = np.random.default_rng(0).choice(rows_of_task, 15, replace=False)
                chosen = Counter()
                for i in picked:
                    r = client.post("/v1/chat/completions", json={
                        "model": "polyroute-best",
                        "messages": [{"role": "user", "content": outcomes.prompts[i]}]})
                    assert r.status_code == 200, r.text
                    chosen[r.headers["x-polyroute-model"]] += 1
                assert chosen.most_common(1)[0][0] == name, (task, chosen)
