"""The app factory: ``create_app(config)`` returns a Starlette app holding its own gateway.

Why Starlette rather than FastAPI's decorators: the gateway does not validate bodies with pydantic
(it forwards them), so FastAPI's per-request machinery would only add latency; FastAPI apps can
still mount this one. No module-level globals: two apps in one process share nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from polyroute.config import GatewayConfig
from polyroute.gateway.admin import reload_router
from polyroute.gateway.apis.endpoint import endpoint_for
from polyroute.gateway.apis.messages import MESSAGES
from polyroute.gateway.apis.responses import RESPONSES
from polyroute.gateway.chat import chat_completions
from polyroute.gateway.dashboard import dashboard, stats
from polyroute.gateway.endpoints import (
    count_message_tokens,
    get_response,
    healthz,
    list_models,
    metrics,
)
from polyroute.gateway.errors import APIError, error_response
from polyroute.gateway.feedback import feedback
from polyroute.gateway.service import Gateway
from polyroute.pipeline import Pipeline
from polyroute.store import Store


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(APIError(exc.status_code, str(exc.detail), code="not_found"
                                   if exc.status_code == 404 else None),
                          headers=exc.headers)


def create_app(config: GatewayConfig, *, pipeline: Pipeline | None = None,
               store: Store | None = None, env: Mapping[str, str] | None = None,
               warm_up: bool = True) -> Starlette:
    """Build the gateway for ``config``; raises a PolyrouteError if it cannot serve.

    ``pipeline`` replaces the configured router (tests, embedding), ``store`` the configured
    SQLite file, ``env`` the process environment (where backend keys are read).
    """
    gateway = Gateway(config, pipeline=pipeline, env=env, warm_up=warm_up)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.startup(store)
        try:
            yield
        finally:
            await gateway.shutdown()

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/messages", endpoint_for(MESSAGES), methods=["POST"]),
            Route("/v1/messages/count_tokens", count_message_tokens, methods=["POST"]),
            Route("/v1/responses", endpoint_for(RESPONSES), methods=["POST"]),
            Route("/v1/responses/{response_id}", get_response, methods=["GET"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/v1/feedback", feedback, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/v1/admin/reload-router", reload_router, methods=["POST"]),
            Route("/v1/admin/stats", stats, methods=["GET"]),
            Route("/dashboard", dashboard, methods=["GET"]),
        ],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    return app
