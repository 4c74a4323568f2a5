"""Errors as the OpenAI API shapes them: ``{"error": {"message", "type", "param", "code"}}``.

Why the same shape: clients (the official SDKs included) parse it into their own exception types,
so an application sees a gateway error exactly as it would see one from OpenAI.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.responses import Response

_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "insufficient_quota",
    500: "server_error",
    502: "server_error",
    503: "server_error",
    504: "server_error",
}


class APIError(Exception):
    """An HTTP error to send to the client; raised inside handlers, turned into a response."""

    def __init__(self, status: int, message: str, *, code: str | None = None,
                 param: str | None = None, type: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.type = type or _TYPES.get(status, "server_error" if status >= 500 else
                                       "invalid_request_error")
        self.headers = dict(headers or {})

    def body(self) -> bytes:
        return error_body(self.message, type=self.type, code=self.code, param=self.param)


def error_body(message: str, *, type: str, code: str | None = None,
               param: str | None = None) -> bytes:
    return json.dumps({"error": {"message": message, "type": type, "param": param,
                                 "code": code}}).encode()


def error_response(exc: APIError, headers: Mapping[str, str] | None = None) -> Response:
    return Response(exc.body(), status_code=exc.status, media_type="application/json",
                    headers={**exc.headers, **(headers or {})})
