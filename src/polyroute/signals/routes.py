"""Named routes in the style of Arch-Router: a description (and example prompts) per route,
the models allowed for it; a prompt goes to the route it is closest to, above the route's
threshold, and the learned router then chooses among that route's models.

Adding a model to a route is a config change: the route only restricts the candidates, and the
router already estimates every servable model, so nothing is retrained.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from polyroute.signals.config import NamedRouteConfig
from polyroute.signals.semantic import Embed, ExampleIndex


class NamedRoutes:
    """The config's routes with their description and examples embedded once."""

    def __init__(self, routes: Sequence[NamedRouteConfig], embed: Embed) -> None:
        self.routes = {r.name: r for r in routes}
        self._index = ExampleIndex({r.name: r.texts for r in routes}, embed)
        self._thresholds = {r.name: r.threshold for r in routes}

    def nearest(self, embedding: np.ndarray) -> NamedRouteConfig | None:
        """The route closest to ``embedding`` among those above their threshold, if any."""
        name, _ = self._index.nearest(embedding, self._thresholds)
        return None if name is None else self.routes[name]
