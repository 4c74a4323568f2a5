"""Drive a gateway on loopback with bundled prompts for a few minutes, then photograph its
dashboard in headless Chromium: ``docs/dashboard.png``.

The backends are the test suite's stand-ins (``tests/gateway/standin.py``), one per bundled model
and named after it, answering at once; the router is kNN on TF-IDF trained on the bundled data
(the quick featurizer: the picture is of the view, not of a routing benchmark). Traffic: seeded
random bundled prompts over three profiles and two keys, one key with a spend limit, some
repeated prompts (the semantic cache answers them), a PII guard redacting e-mail addresses, and a
backend that fails now and then (fallbacks, and its breaker).

    python benchmarks/dashboard_screenshot.py [--seconds 150] [--out docs/dashboard.png]
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "gateway"))

from standin import ServerThread, StandIn  # noqa: E402

from polyroute import Pipeline, load_bundled  # noqa: E402
from polyroute.config import validate_config  # noqa: E402
from polyroute.gateway import create_app  # noqa: E402
from polyroute.gateway.auth import hash_key  # noqa: E402
from polyroute.gateway.server import uvicorn_config  # noqa: E402

ADMIN, TEAM = "sk-dashboard-admin-0123456789", "sk-dashboard-team-0123456789"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=240)
    ap.add_argument("--window", type=int, default=300, help="the view's window, seconds")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    args = ap.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        print("needs Debian's chromium package (apt-get install chromium)", file=sys.stderr)
        return 2
    outcomes = load_bundled()
    work = Path(tempfile.mkdtemp(prefix="polyroute-dashboard-"))
    Pipeline("knn", featurizer="tfidf", cache=False).fit(outcomes).save(work / "router")
    standins = {m.name: StandIn(m.name) for m in outcomes.models}
    servers = {n: ServerThread(app).start() for n, app in standins.items()}
    flaky = "mistral-7b-instruct-v0.3" if "mistral-7b-instruct-v0.3" in standins \
        else sorted(standins)[0]
    config = validate_config({
        "backends": [{"name": m.name, "base_url": f"{servers[m.name].url}/v1",
                      "input_price_per_mtok": m.input_price_per_mtok,
                      "output_price_per_mtok": m.output_price_per_mtok}
                     for m in outcomes.models],
        "router": {"path": str(work / "router")},
        "profiles": {"polyroute-auto": {"lam": 0.5}, "polyroute-best": {"lam": 0.0},
                     "polyroute-cheap": {"lam": 5.0}},
        "keys": [{"id": "ops", "sha256": hash_key(ADMIN), "admin": True},
                 {"id": "team-ml", "sha256": hash_key(TEAM), "spend_limit": 0.05,
                  "spend_period": "day"}],
        "store": {"path": str(work / "store.sqlite")},
        "cache": {"enabled": True},
        "guards": {"pii": {"enabled": True, "action": "redact"}},
    })
    app = create_app(config)
    gateway = ServerThread(app, uvicorn_config(app, config, log_level="warning")).start()
    rng = random.Random(0)
    prompts = list(outcomes.prompts)
    seen: list[str] = []
    sent = 0
    end = time.monotonic() + args.seconds
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        while time.monotonic() < end:
            standins[flaky].mode = "500" if rng.random() < 0.3 else "ok"
            if seen and rng.random() < 0.15:
                text = rng.choice(seen)  # a repeat: the cache answers
            else:
                text = rng.choice(prompts)
                if rng.random() < 0.05:
                    text += " Reply to jane.doe@example.com when done."
                seen.append(text)
            key = ADMIN if rng.random() < 0.6 else TEAM
            profile = rng.choices(["polyroute-auto", "polyroute-best", "polyroute-cheap"],
                                  [0.6, 0.15, 0.25])[0]
            client.post("/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                        json={"model": profile, "messages": [{"role": "user", "content": text}]})
            sent += 1
            time.sleep(rng.uniform(0.05, 0.3))
        app.state.gateway.store.flush(10)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={work / 'chromium'}", "--hide-scrollbars",
             "--window-size=1280,1500", "--virtual-time-budget=10000",
             f"--screenshot={args.out}",
             f"{gateway.url}/dashboard#key={ADMIN}&window={args.window}"],
            capture_output=True, text=True, timeout=120)
    gateway.stop()
    for server in servers.values():
        server.stop()
    if done.returncode != 0 or not args.out.exists():
        print(done.stderr[-2000:], file=sys.stderr)
        return 1
    print(f"{sent} requests sent over {args.seconds:.0f} s; screenshot: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
