"""End to end on PostgreSQL: the gateway logs to it, the CLI reads it, and a database outage in
the middle of traffic loses nothing the gateway acknowledged.

*Acknowledged* means the gateway answered the request with a status other than 503
``store_unavailable`` (here: 200, its answer, and its ``x-polyroute-request-id``): every such
request has exactly one finished row once the database is back. While the database is
unreachable the gateway keeps answering, queueing the records in memory; once
``store.queue_limit`` writes wait it refuses new requests with 503 ``store_unavailable`` —
those are not acknowledged, and leave no row.
"""

from __future__ import annotations

import json

import openai
import pytest
import yaml
from gateway_world import KEY, MATH_PROMPT, POETRY_PROMPT, base_config, wait_for

from pgschema import via_port
from polyroute.cli import main
from polyroute.store import PostgresStore
from tcpcut import TcpCut


def _openai(gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=KEY, max_retries=0, timeout=30)


def _ask(client: openai.OpenAI, text: str, *, stream: bool = False) -> str:
    """One chat through the official client; the request id the gateway acknowledged it with."""
    if stream:
        with client.chat.completions.with_streaming_response.create(
                model="polyroute-auto", stream=True,
                messages=[{"role": "user", "content": text}]) as raw:
            text = "".join(c.choices[0].delta.content or "" for c in raw.parse())
            assert text.startswith(("alpha answers", "beta answers"))
            return raw.headers["x-polyroute-request-id"]
    raw = client.chat.completions.with_raw_response.create(
        model="polyroute-auto", messages=[{"role": "user", "content": text}])
    assert raw.parse().choices[0].message.content in ("alpha answers", "beta answers")
    return raw.headers["x-polyroute-request-id"]


def _metric(gateway, name: str) -> float:
    with gateway.client() as c:
        text = c.get("/metrics").text
    [line] = [ln for ln in text.splitlines() if ln.startswith(name + " ")]
    return float(line.split()[1])


def test_logs_and_export_feedback_read_the_postgres_store(gateway_factory, standins, pg_url,
                                                          tmp_path, capsys):
    gateway = gateway_factory({"store": {"url": pg_url}})
    client = _openai(gateway)
    math_id, poem_id = _ask(client, MATH_PROMPT), _ask(client, POETRY_PROMPT, stream=True)
    client.close()
    with gateway.client() as c:
        assert c.post("/v1/feedback", json={"request_id": math_id, "score": 1.0}).status_code \
            == 200
    gateway.flush()

    assert main(["logs", "--store", pg_url, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {r["id"]: r["chosen"] for r in data["requests"]} == {math_id: "alpha",
                                                                poem_id: "beta"}
    assert main(["logs", "--store", pg_url, "--id", poem_id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["stream"] is True
    out = tmp_path / "feedback.jsonl"
    assert main(["export-feedback", "--store", pg_url, "-o", str(out)]) == 0
    [row] = [json.loads(line) for line in out.read_text().splitlines()]
    assert (row["prompt_id"], row["model"], row["quality"]) == (math_id, "alpha", 1.0)


def test_a_database_outage_mid_run_loses_nothing_acknowledged(gateway_factory, standins,
                                                               pg_url):
    if "@127.0.0.1:5432/" not in pg_url:
        pytest.skip("the outage test relays to PostgreSQL at 127.0.0.1:5432")
    relay = TcpCut("127.0.0.1", 5432)
    limit = 24
    try:
        gateway = gateway_factory({"store": {"url": via_port(pg_url, relay.port),
                                             "queue_limit": limit, "connect_timeout": 1}})
        client = _openai(gateway)
        acked = [_ask(client, MATH_PROMPT), _ask(client, POETRY_PROMPT, stream=True)]
        gateway.flush()

        relay.cut()  # the database goes away mid-run; the gateway keeps answering
        refused = None
        for i in range(limit * 2):
            try:
                acked.append(_ask(client, MATH_PROMPT if i % 2 else POETRY_PROMPT,
                                  stream=i % 3 == 0))
            except openai.APIStatusError as exc:
                refused = exc
                break
        assert refused is not None, "the queue filled and new requests were refused"
        assert refused.status_code == 503 and refused.code == "store_unavailable"
        assert refused.response.headers["retry-after"] == "1"
        assert len(acked) > 2  # served while the database was away, before the queue filled
        with gateway.client() as c:
            health = c.get("/healthz")
        assert health.status_code == 503 and health.json()["status"] == "store_full"
        assert health.json()["store"]["reachable"] is False
        assert _metric(gateway, "polyroute_store_reachable") == 0
        assert _metric(gateway, "polyroute_store_queued_writes") >= limit
        assert _metric(gateway, "polyroute_store_refused_requests_total") == 1

        relay.restore()  # back: the queue is flushed in order, new requests are taken again

        def healthy() -> bool:
            with gateway.client() as c:
                return c.get("/healthz").json()["store"] == {"reachable": True,
                                                             "queued_writes": 0}

        wait_for(healthy, "the queue to drain into PostgreSQL", timeout=60)
        acked.append(_ask(client, MATH_PROMPT))
        client.close()
        gateway.flush()
    finally:
        relay.close()

    reader = PostgresStore(pg_url, readonly=True)
    try:
        rows = reader.recent_requests(1000)
    finally:
        reader.close()
    assert sorted(r.id for r in rows) == sorted(acked)  # each once; none for the refused one
    assert all(r.status == "ok" and r.http_status == 200 and r.chosen for r in rows)
    assert len(set(acked)) == len(acked)


def test_an_unreachable_database_at_start_is_one_line_from_serve(router_dir, standin_urls,
                                                                   tmp_path, capsys):
    raw = base_config(router_dir, tmp_path / "unused.sqlite", standin_urls)
    raw["store"] = "postgresql://postgres@127.0.0.1:9/test"  # nothing listens on port 9
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    assert main(["serve", "--config", str(cfg), "--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "postgresql://postgres@127.0.0.1:9/test: cannot connect to " \
        "PostgreSQL" in err[0]
