"""Wait for work unless the client leaves (or the shutdown deadline cuts it) first."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import anyio
from starlette.requests import Request

from polyroute.gateway.body import ClientGone
from polyroute.gateway.errors import APIError

T = TypeVar("T")


async def unless_client_leaves(request: Request, work: Awaitable[T],
                                cut: anyio.Event | None = None) -> T:
    """``await work``, unless the client disconnects first: then the work (a backend call,
    a cascade) is cancelled and :class:`ClientGone` raised, so the request is recorded
    ``client_closed`` with whatever was paid so far — not left waiting for an answer nobody
    reads and then recorded ``ok``. (A streamed answer has its own watcher in RelayResponse.)
    Likewise when ``cut`` is set (the shutdown deadline): a 503 ``gateway_shutdown``, so the
    client gets an answer rather than a dropped connection.
    """
    done = shut = False
    failure: Exception | None = None
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                pass
            tg.cancel_scope.cancel()

        async def deadline(event: anyio.Event) -> None:
            nonlocal shut
            await event.wait()
            shut = True
            tg.cancel_scope.cancel()

        tg.start_soon(watch)
        if cut is not None:
            tg.start_soon(deadline, cut)
        try:
            result = await work
            done = True
        except Exception as exc:  # re-raised below, outside the task group (no ExceptionGroup)
            failure = exc
        tg.cancel_scope.cancel()
    if failure is not None:
        raise failure
    if not done and shut:
        raise APIError(503, "the gateway shut down before the answer arrived; retry",
                       code="gateway_shutdown", headers={"connection": "close"})
    if not done:  # only a watcher cancels the work here (the task's own cancellation raises)
        raise ClientGone("the client closed the connection before the answer")
    # Work that completed as the client left is kept: an opened stream must be relayed (and so
    # closed) and an answer charged; the response then finds the client gone.
    return result
