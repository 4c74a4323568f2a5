"""The made-up world the gateway tests route in, and helpers to talk to a running gateway.

*Math* prompts are answered well only by ``alpha``, *poetry* prompts only by ``beta``; ``gamma``
is cheap and mediocre everywhere. A TF-IDF + kNN router trained on it (no encoder model, a second
to train) must therefore send math to alpha and poetry to beta at λ = 0, and everything to gamma
when cost dominates. (A module of its own, not conftest, so tests import it by a unique name.)
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from standin import ServerThread

from polyroute import ModelInfo, Outcomes
from polyroute.config import GatewayConfig
from polyroute.gateway import hash_key
from polyroute.routers import Router

KEY = "pr-test-key-one"
OTHER_KEY = "pr-test-key-two"
MODELS = (ModelInfo("alpha", 1.0, 4.0), ModelInfo("beta", 1.0, 4.0), ModelInfo("gamma", 0.1, 0.2))
_MATH = ("Solve the equation {a}x + {b} = {c} for x.", "What is {a} times {b} plus {c}?",
         "Compute the integral of x^{a} from 0 to {b}.", "Find the derivative of {a}x^2 + {b}x.")
_POETRY = ("Write a short poem about the {w} at dawn.", "Compose a haiku about a {w} in the rain.",
           "Write a sonnet describing the {w} in autumn.", "Give me a rhyming verse about a {w}.")
_WORDS = ("river", "moon", "forest", "ocean", "sparrow", "mountain", "lantern", "garden")

MATH_PROMPT = "Solve the equation 7x + 3 = 24 for x."
POETRY_PROMPT = "Write a short poem about the sea at dawn."


def make_outcomes(n: int = 30) -> Outcomes:
    prompts, quality = [], []
    for i in range(n):
        prompts.append(_MATH[i % 4].format(a=i + 2, b=3 * i + 1, c=i + 7))
        quality.append((1.0, 0.0, 0.3))
        prompts.append(_POETRY[i % 4].format(w=_WORDS[i % len(_WORDS)]))
        quality.append((0.0, 1.0, 0.3))
    cost = np.tile([2e-4, 2e-4, 1e-5], (len(prompts), 1))
    return Outcomes(tuple(f"p{i}" for i in range(len(prompts))), tuple(prompts),
                    tuple("math" if i % 2 == 0 else "poetry" for i in range(len(prompts))),
                    MODELS, np.array(quality), cost, source="<gateway test world>")


def swapped_outcomes() -> Outcomes:
    """The test world with alpha and beta's outcomes exchanged: math now goes to beta."""
    world = make_outcomes()
    q = world.quality[:, [1, 0, 2]]
    return Outcomes(world.prompt_ids, world.prompts, world.tasks, world.models, q, world.cost)


def save_router(outcomes: Outcomes, path) -> str:
    """Train and save a TF-IDF kNN router at ``path``; its identity as loading reports it."""
    from polyroute import Pipeline

    Pipeline("knn", featurizer="tfidf", cache=False).fit(outcomes).save(path)
    return Pipeline.load(path, cache=False).identity


def base_config(router_dir: Path, store: Path, urls: dict[str, str]) -> dict[str, Any]:
    prices = {m.name: m for m in MODELS}
    default = ModelInfo("other", 1.0, 1.0)
    return {
        "backends": [{"name": name, "base_url": f"{url}/v1", "model": f"upstream-{name}",
                      "input_price_per_mtok": prices.get(name, default).input_price_per_mtok,
                      "output_price_per_mtok": prices.get(name, default).output_price_per_mtok,
                      "timeout": 5}
                     for name, url in urls.items()],
        "router": {"path": str(router_dir)},
        "profiles": {"polyroute-auto": {"lam": 0.0},
                     "polyroute-best": {"lam": 0.0},
                     "polyroute-cheap": {"lam": 100.0},
                     "polyroute-no-alpha": {"models": ["beta", "gamma"]}},
        "keys": [{"id": "one", "sha256": hash_key(KEY)},
                 {"id": "two", "sha256": hash_key(OTHER_KEY)}],
        "store": {"path": str(store)},
        "breaker": {"failure_threshold": 3, "cooldown": 60},
    }


def deep_update(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in changes.items():
        out[k] = deep_update(out[k], v) if isinstance(v, dict) and isinstance(out.get(k),
                                                                                dict) else v
    return out


class RunningGateway:
    """A gateway served by uvicorn on 127.0.0.1, plus helpers to talk to it."""

    def __init__(self, config: GatewayConfig, server: ServerThread, app: Any) -> None:
        self.config = config
        self.server = server
        self.app = app
        self.url = server.url

    @property
    def gateway(self):
        return self.app.state.gateway

    def client(self, key: str | None = KEY, **kwargs: Any) -> httpx.Client:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        transport = httpx.HTTPTransport(
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        return httpx.Client(base_url=self.url, headers=headers, transport=transport,
                            timeout=30, **kwargs)

    def chat(self, text: str, model: str = "polyroute-auto", key: str | None = KEY,
             **body: Any) -> httpx.Response:
        with self.client(key) as c:
            return c.post("/v1/chat/completions",
                          json={"model": model, "messages": [{"role": "user", "content": text}],
                                **body})

    def flush(self) -> None:
        self.gateway.store.flush(10)




def wait_for(condition, what: str, timeout: float = 20.0, poll: float = 0.01) -> None:
    """Poll until ``condition()`` holds (a state, not a timing threshold)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(poll)


class MeanRouter(Router):
    """Every prompt gets the models' mean training quality: in this world alpha and beta 0.5,
    gamma 0.3, so at λ = 0 the best pair is {alpha, beta}."""

    def __init__(self) -> None:
        pass

    def _fit(self, outcomes, features) -> None:
        self.means_ = np.nanmean(outcomes.quality, axis=0)

    def _estimate(self, features):
        return np.tile(self.means_, (features.shape[0], 1)), None
