"""Chat Completions: the client API whose shape is the internal one, so nothing is translated."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from polyroute.gateway.body import ChatRequest, parse_chat
from polyroute.gateway.errors import APIError, error_response

if TYPE_CHECKING:
    from polyroute.gateway.apis.base import Exchange
    from polyroute.gateway.context import RequestContext


class ChatCompletionsAPI:
    name = "chat"

    def authorization(self, headers: Mapping[str, str]) -> str | None:
        return headers.get("authorization")

    async def parse(self, ctx: RequestContext, obj: dict[str, Any]
                    ) -> tuple[ChatRequest, Exchange | None]:
        return parse_chat(obj, ctx.request.headers), None  # None: the answer is already ours

    def error_response(self, exc: APIError, headers: Mapping[str, str] | None = None
                       ) -> Response:
        return error_response(exc, headers)


CHAT = ChatCompletionsAPI()
