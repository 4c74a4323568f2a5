"""``POST /v1/chat/completions``: the pipeline served in its own shape (see
:mod:`polyroute.gateway.apis.endpoint` for what the endpoint does)."""

from __future__ import annotations

from polyroute.gateway.apis.chat import CHAT
from polyroute.gateway.apis.endpoint import endpoint_for

chat_completions = endpoint_for(CHAT)
