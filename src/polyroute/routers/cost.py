"""Predicted cost of sending a prompt to each model, known before the call.

Input tokens are known from the prompt; output length is not, so the model learns each model's
mean output cost from the recorded costs (for data recorded under SOURCE.md's rule this reproduces
the rule exactly). Evaluation then charges the *recorded* cost of the model actually chosen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from polyroute.data.outcomes import ModelInfo, Outcomes, input_tokens
from polyroute.errors import DataError


@dataclass(frozen=True)
class CostModel:
    """Per-model list prices plus the learned mean output cost per answer (dollars)."""

    models: tuple[ModelInfo, ...]
    output_cost: tuple[float, ...]
    cost_scale: float

    @classmethod
    def fit(cls, outcomes: Outcomes) -> CostModel:
        tokens = np.array([input_tokens(t) for t in outcomes.prompts], dtype=float)
        in_price = np.array([m.input_price_per_mtok for m in outcomes.models]) / 1e6
        residual = outcomes.cost - tokens[:, None] * in_price[None, :]
        out = np.clip(np.nanmean(residual, axis=0), 0.0, None)
        out = np.where(np.isnan(out), 0.0, out)
        model = cls(outcomes.models, tuple(float(v) for v in out), 1.0)
        scale = float(np.max(model.predict(outcomes.prompts).mean(axis=0)))
        return cls(outcomes.models, model.output_cost, scale if scale > 0 else 1.0)

    def with_model(self, info: ModelInfo) -> CostModel:
        """This cost model plus a new candidate priced by its list prices.

        Its output length is unknown until it has answered; we assume the median output length
        implied by the other models' learned output costs (the data's own convention).
        """
        if info.name in {m.name for m in self.models}:
            raise DataError(f"model {info.name!r} is already a candidate")
        lengths = [cost / (m.output_price_per_mtok / 1e6)
                   for m, cost in zip(self.models, self.output_cost, strict=True)
                   if m.output_price_per_mtok > 0]
        tokens = float(np.median(lengths)) if lengths else 0.0
        return CostModel((*self.models, info),
                         (*self.output_cost, tokens * info.output_price_per_mtok / 1e6),
                         self.cost_scale)

    def predict(self, texts: Sequence[str], models: Sequence[str] | None = None) -> np.ndarray:
        """``(texts, models)`` predicted dollar costs; ``models`` names the columns wanted, in
        that order (default: this cost model's own), so estimates made by a router are priced
        by name, not by position."""
        cols = list(range(len(self.models)))
        if models is not None:
            index = {m.name: j for j, m in enumerate(self.models)}
            missing = [n for n in models if n not in index]
            if missing:
                raise DataError(f"the cost model has no price for {', '.join(missing)}; it "
                                f"knows {', '.join(index)}")
            cols = [index[n] for n in models]
        tokens = np.array([input_tokens(t) for t in texts], dtype=float)
        in_price = np.array([self.models[j].input_price_per_mtok for j in cols]) / 1e6
        out = np.asarray(self.output_cost, dtype=float)[cols]
        return tokens[:, None] * in_price[None, :] + out[None, :]

    def to_dict(self) -> dict:
        return {"models": [{"name": m.name, "input_price_per_mtok": m.input_price_per_mtok,
                            "output_price_per_mtok": m.output_price_per_mtok}
                           for m in self.models],
                "output_cost": list(self.output_cost), "cost_scale": self.cost_scale}

    @classmethod
    def from_dict(cls, data: dict) -> CostModel:
        models = tuple(ModelInfo(d["name"], d["input_price_per_mtok"], d["output_price_per_mtok"])
                       for d in data["models"])
        return cls(models, tuple(data["output_cost"]), float(data["cost_scale"]))
