"""Client APIs: the wire formats a client may speak, each translated at the two ends of the
pipeline into (and back from) the one internal request shape, Chat Completions.

``chat`` (Chat Completions, no translation), ``messages`` (Anthropic Messages) and ``responses``
(OpenAI Responses); :func:`~polyroute.gateway.apis.endpoint.endpoint_for` serves any of them.
Nothing is imported here, so that the streaming relay can import :mod:`.base` alone.
"""
