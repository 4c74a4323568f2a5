"""``polyroute serve``: an OpenAI-compatible HTTP gateway that routes each request.

``create_app(config)`` builds the ASGI app; ``serve(config)`` runs it with uvicorn.
"""

from polyroute.gateway.app import create_app
from polyroute.gateway.auth import hash_key, new_key
from polyroute.gateway.server import serve

__all__ = ["create_app", "hash_key", "new_key", "serve"]
