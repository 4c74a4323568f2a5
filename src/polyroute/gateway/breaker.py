"""Circuit breaker: stop sending traffic to a backend that keeps failing, probe it later.

States: *closed* (traffic flows) → after ``failure_threshold`` consecutive failures, *open* (the
backend is skipped) for ``cooldown`` seconds → *half-open*: exactly one request is let through as
a probe. Its success closes the breaker; its failure re-opens it with the cooldown doubled (up to
``max_cooldown``). Why passive probes (a real request) rather than a health endpoint: OpenAI-style
APIs have no standard health route, and a real request is the only proof that the backend serves.

Replicas: a breaker tells its ``listener`` when it opens (with its cooldown) or closes after
being open, and takes another replica's word with :meth:`adopt_open` / :meth:`adopt_closed`
(``gateway/shared`` carries the words), so a backend one replica found failing is skipped by all.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


class BreakerListener(Protocol):
    def __call__(self, state: str, cooldown: float) -> None:
        """``state`` is OPEN (for ``cooldown`` seconds) or CLOSED (``cooldown`` 0)."""


class CircuitBreaker:
    """Not thread-safe by design: it lives on the event loop."""

    #: Told of this breaker's own transitions (not of adopted ones); None: nobody listens.
    listener: BreakerListener | None = None

    def __init__(self, failure_threshold: int = 3, cooldown: float = 30.0,
                 max_cooldown: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.failure_threshold = failure_threshold
        self.base_cooldown = cooldown
        self.max_cooldown = max_cooldown
        self._clock = clock
        self.state = CLOSED
        self.failures = 0
        self._cooldown = cooldown
        self._open_until = 0.0
        self._probing = False

    def allow(self) -> bool:
        """May a request be sent now? In half-open state this hands out the single probe."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            if self._clock() < self._open_until:
                return False
            self.state = HALF_OPEN
            self._probing = False
        if self._probing:
            return False
        self._probing = True
        return True

    def record_success(self) -> None:
        was = self.state
        self.state = CLOSED
        self.failures = 0
        self._cooldown = self.base_cooldown
        self._probing = False
        if was != CLOSED and self.listener is not None:
            self.listener(CLOSED, 0.0)

    def record_failure(self) -> None:
        self.failures += 1
        if self.state == HALF_OPEN:
            self._cooldown = min(self._cooldown * 2, self.max_cooldown)
            self._open()
        elif self.state == CLOSED and self.failures >= self.failure_threshold:
            self._open()

    def release(self) -> None:
        """The request let through ended without a verdict (e.g. the client left): free the
        probe so the next request can probe instead."""
        if self.state == HALF_OPEN:
            self._probing = False

    def _open(self) -> None:
        self.state = OPEN
        self._probing = False
        self._open_until = self._clock() + self._cooldown
        if self.listener is not None:
            self.listener(OPEN, self._cooldown)

    def adopt_open(self, seconds: float) -> None:
        """Another replica opened this backend's breaker for ``seconds`` more: skip it as long
        (an own cooldown that ends later stands; a probe in flight here keeps its verdict)."""
        until = self._clock() + seconds
        if seconds <= 0 or (self.state == OPEN and self._open_until >= until):
            return
        if self.state == HALF_OPEN and self._probing:
            return
        self.state = OPEN
        self._probing = False
        self._open_until = until

    def adopt_closed(self) -> None:
        """Another replica's probe succeeded: the backend serves again."""
        if self.state != CLOSED and not self._probing:
            self.state = CLOSED
            self.failures = 0
            self._cooldown = self.base_cooldown

    def retry_after(self) -> float:
        """Seconds until the backend may be probed (0 unless open)."""
        if self.state != OPEN:
            return 0.0
        return max(0.0, self._open_until - self._clock())
