"""The two ways a translation to or from an upstream API fails.

Neither reaches a client as a traceback: the forward path turns :class:`UpstreamFormatError` into
a ``bad_response`` attempt and :class:`UpstreamUnsupported` into an ``unsupported`` one, and moves
on to the next candidate. Their messages are fixed texts of ours, never upstream bytes, so they
are safe to record and to show.
"""

from __future__ import annotations


class UpstreamFormatError(ValueError):
    """The upstream's answer (or stream event) is not what its API promises."""


class UpstreamUnsupported(ValueError):
    """The request uses something this backend's API cannot express (e.g. ``n`` > 1)."""
