"""Matrix factorisation of prompt × model quality (the RouteLLM / EmbedLLM idea).

Each model gets a learned embedding ``v_m``; a prompt's embedding is projected into the same space
by a learned map ``P``; quality is ``sigmoid(P(x) · v_m + b_m)``. Trained in PyTorch on the known
cells only (binary cross-entropy, which accepts fractional scores); predicted in NumPy, so serving
does not import torch.
"""

from __future__ import annotations

import numpy as np

from polyroute.data.outcomes import Outcomes
from polyroute.routers._torch import train_masked_bce
from polyroute.routers.base import Router
from polyroute.routers.params import (
    NON_NEGATIVE,
    POSITIVE,
    POSITIVE_INT,
    RANDOM_STATE,
    SHARE,
)
from polyroute.routers.registry import register


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@register("mf")
class MatrixFactorizationRouter(Router):
    """``dim``-dimensional factors; ``epochs`` of full-batch Adam with early stopping on a
    ``validation`` share of the training prompts."""

    _parameter_constraints = {"dim": POSITIVE_INT, "epochs": POSITIVE_INT, "lr": POSITIVE,
                              "weight_decay": NON_NEGATIVE, "dropout": SHARE,
                              "validation": SHARE, "patience": POSITIVE_INT,
                              "random_state": RANDOM_STATE}

    def __init__(self, dim: int = 64, epochs: int = 400, lr: float = 3e-3,
                 weight_decay: float = 1e-4, dropout: float = 0.2, validation: float = 0.1,
                 patience: int = 30, random_state: int = 0) -> None:
        self.dim = dim
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.validation = validation
        self.patience = patience
        self.random_state = random_state

    def _fit(self, outcomes: Outcomes, features: np.ndarray) -> None:
        import torch

        torch.manual_seed(self.random_state)
        m = outcomes.quality.shape[1]
        x = torch.as_tensor(features, dtype=torch.float32)
        proj = torch.nn.Linear(features.shape[1], self.dim)
        model_emb = torch.nn.Parameter(torch.randn(m, self.dim) * 0.1)
        bias = torch.nn.Parameter(torch.zeros(m))
        drop = torch.nn.Dropout(self.dropout)

        def logits(train: bool) -> torch.Tensor:
            z = proj(drop(x) if train else x)
            return z @ model_emb.T + bias

        train_masked_bce([*proj.parameters(), model_emb, bias], logits, outcomes.quality,
                         epochs=self.epochs, lr=self.lr, weight_decay=self.weight_decay,
                         validation=self.validation, patience=self.patience,
                         random_state=self.random_state)
        self.proj_weight_ = proj.weight.detach().numpy().T.copy()
        self.proj_bias_ = proj.bias.detach().numpy().copy()
        self.model_embeddings_ = model_emb.detach().numpy().copy()
        self.model_bias_ = bias.detach().numpy().copy()

    def _estimate(self, features: np.ndarray) -> tuple[np.ndarray, None]:
        z = features @ self.proj_weight_ + self.proj_bias_
        return _sigmoid(z @ self.model_embeddings_.T + self.model_bias_).astype(np.float64), None
