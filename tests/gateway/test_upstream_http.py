"""Both upstream HTTP clients (aiohttp, httpx) behave the same behind ``upstream_http``'s
interface: status, headers, body, and the same three kinds of failure — against the loopback
stand-in backends."""

from __future__ import annotations

import asyncio
import json

import pytest
from standin import free_socket

from polyroute.gateway.upstream_http import (
    UpstreamConnectError,
    UpstreamHTTPError,
    UpstreamTimeout,
    UpstreamTransportError,
    open_client,
)

KINDS = ("aiohttp", "httpx")
HEADERS = {"content-type": "application/json", "accept-encoding": "identity"}


def _body(stream: bool = False) -> bytes:
    return json.dumps({"model": "m", "stream": stream,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()


async def _call(kind: str, url: str, body: bytes, *, timeout: float = 5.0,
                max_connections: int = 4, abandon: bool = False) -> tuple[int, str, bytes]:
    client = open_client(kind, base_headers=HEADERS, max_connections=max_connections,
                         timeout=timeout, connect_timeout=2.0)
    try:
        response = await client.post(url, body, {"x-request-id": "t-1"})
        try:
            if abandon:
                return response.status_code, response.headers.get("Content-Type", ""), b""
            parts = [chunk async for chunk in response.aiter_bytes()]
        finally:
            await response.aclose()
        return response.status_code, response.headers.get("Content-Type", ""), b"".join(parts)
    finally:
        await client.aclose()


def _url(standin_urls, name: str = "alpha") -> str:
    return f"{standin_urls[name]}/v1/chat/completions"


@pytest.mark.parametrize("kind", KINDS)
def test_a_complete_answer_and_its_headers(kind, standins, standin_urls):
    status, ctype, body = asyncio.run(_call(kind, _url(standin_urls), _body()))
    assert status == 200 and ctype.startswith("application/json")  # headers: any case
    assert json.loads(body)["choices"][0]["message"]["content"]
    assert standins["alpha"].headers[-1]["x-request-id"] == "t-1"


@pytest.mark.parametrize("kind", KINDS)
def test_a_stream_arrives_whole(kind, standins, standin_urls):
    status, ctype, body = asyncio.run(_call(kind, _url(standin_urls), _body(stream=True)))
    assert status == 200 and ctype.startswith("text/event-stream")
    assert body.count(b"data: ") >= standins["alpha"].chunks and body.endswith(b"[DONE]\n\n")


@pytest.mark.parametrize("kind", KINDS)
def test_an_error_status_is_a_response_not_an_exception(kind, standins, standin_urls):
    standins["alpha"].mode = "503"
    status, _, _ = asyncio.run(_call(kind, _url(standin_urls), _body()))
    assert status == 503


@pytest.mark.parametrize("kind", KINDS)
def test_nobody_listening_is_a_connect_error(kind):
    sock = free_socket()  # bound, never listening: connecting is refused
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(UpstreamConnectError):
        asyncio.run(_call(kind, f"http://127.0.0.1:{port}/v1/chat/completions", _body()))


@pytest.mark.parametrize("kind", KINDS)
def test_a_silent_backend_is_a_timeout(kind, standins, standin_urls):
    standins["alpha"].mode = "delay:3"
    with pytest.raises(UpstreamTimeout):
        asyncio.run(_call(kind, _url(standin_urls), _body(), timeout=0.3))


@pytest.mark.parametrize("kind", KINDS)
def test_a_stream_that_breaks_off_is_a_transport_error(kind, standins, standin_urls):
    standins["alpha"].mode = "drop_mid"
    with pytest.raises(UpstreamTransportError) as caught:
        asyncio.run(_call(kind, _url(standin_urls), _body(stream=True)))
    assert isinstance(caught.value, UpstreamHTTPError)


@pytest.mark.parametrize("kind", KINDS)
def test_abandoned_responses_give_their_connection_back(kind, standins, standin_urls):
    """A stream the client left half-way must not keep its connection: with a pool of one,
    each later call would wait for it forever."""
    standins["alpha"].chunk_gap = 0.05

    async def many() -> list[int]:
        client = open_client(kind, base_headers=HEADERS, max_connections=1, timeout=5.0,
                             connect_timeout=2.0)
        statuses = []
        try:
            for _ in range(4):
                response = await asyncio.wait_for(
                    client.post(_url(standin_urls), _body(stream=True), {}), 5)
                statuses.append(response.status_code)
                await response.aclose()
            response = await client.post(_url(standin_urls), _body(), {})
            statuses.append(response.status_code)
            async for _ in response.aiter_bytes():
                pass
            await response.aclose()
        finally:
            await client.aclose()
        return statuses

    assert asyncio.run(many()) == [200] * 5


@pytest.mark.parametrize("kind", KINDS)
def test_the_gateway_serves_and_falls_back_with_either_client(kind, gateway_factory, standins):
    """``server.upstream_client`` reaches the backends: answers, streams and fallback (a
    backend that drops the connection) are the same with either library."""
    import openai
    from gateway_world import KEY

    gw = gateway_factory({"server": {"upstream_client": kind}})
    assert all(type(b.client).__name__.lower().startswith(kind)
               for b in gw.gateway.backends.values())
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=KEY, max_retries=0, timeout=30)
    answer = client.chat.completions.create(model="alpha",
                                            messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content
    text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="alpha", messages=[{"role": "user", "content": "hi"}], stream=True) if c.choices)
    assert text
    standins["alpha"].mode = "drop"
    r = gw.chat("what is two plus two?", model="polyroute-auto")
    assert r.status_code == 200 and r.headers["x-polyroute-model"] != "alpha"
