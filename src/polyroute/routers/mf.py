"""Matrix factorisation of prompt × model quality (the RouteLLM / EmbedLLM idea).

Each model gets a learned embedding ``v_m``; a prompt's embedding is projected into the same space
by a learned map ``P``; quality is ``sigmoid(P(x) · v_m + b_m)``. Trained in PyTorch on the known
cells only (binary cross-entropy, which accepts fractional scores); predicted in NumPy, so serving
does not import torch.
"""

from __future__ import annotations

import numpy as np

from polyroute.data.outcomes import Outcomes
from polyroute.routers._torch import small_problem_threads
from polyroute.routers.base import Router
from polyroute.routers.registry import register


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@register("mf")
class MatrixFactorizationRouter(Router):
    """``dim``-dimensional factors; ``epochs`` of full-batch Adam with early stopping on a
    ``validation`` share of the training prompts."""

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
        with small_problem_threads():
            self._train(outcomes, features)

    def _train(self, outcomes: Outcomes, features: np.ndarray) -> None:
        import torch

        torch.manual_seed(self.random_state)
        rng = np.random.default_rng(self.random_state)
        n, m = outcomes.quality.shape
        x = torch.as_tensor(features, dtype=torch.float32)
        q = torch.as_tensor(np.nan_to_num(outcomes.quality), dtype=torch.float32)
        known = torch.as_tensor(~np.isnan(outcomes.quality))
        val = torch.zeros(n, dtype=torch.bool)
        if n >= 50 and self.validation > 0:
            val[rng.permutation(n)[: max(1, int(n * self.validation))]] = True
        train_mask = known & ~val[:, None]
        val_mask = known & val[:, None]

        proj = torch.nn.Linear(features.shape[1], self.dim)
        model_emb = torch.nn.Parameter(torch.randn(m, self.dim) * 0.1)
        bias = torch.nn.Parameter(torch.zeros(m))
        drop = torch.nn.Dropout(self.dropout)
        params = [*proj.parameters(), model_emb, bias]
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        loss_fn = torch.nn.BCEWithLogitsLoss(reduction="none")

        def logits(train: bool) -> torch.Tensor:
            z = proj(drop(x) if train else x)
            return z @ model_emb.T + bias

        best, best_state, waited = float("inf"), None, 0
        for _ in range(self.epochs):
            opt.zero_grad()
            loss = (loss_fn(logits(True), q) * train_mask).sum() / train_mask.sum()
            loss.backward()
            opt.step()
            if val_mask.any():
                with torch.no_grad():
                    v = float((loss_fn(logits(False), q) * val_mask).sum() / val_mask.sum())
                if v < best - 1e-5:
                    best, waited = v, 0
                    best_state = [p.detach().clone() for p in params]
                else:
                    waited += 1
                    if waited >= self.patience:
                        break
        if best_state is not None:
            with torch.no_grad():
                for p, s in zip(params, best_state, strict=True):
                    p.copy_(s)
        self.proj_weight_ = proj.weight.detach().numpy().T.copy()
        self.proj_bias_ = proj.bias.detach().numpy().copy()
        self.model_embeddings_ = model_emb.detach().numpy().copy()
        self.model_bias_ = bias.detach().numpy().copy()

    def _estimate(self, features: np.ndarray) -> tuple[np.ndarray, None]:
        z = features @ self.proj_weight_ + self.proj_bias_
        return _sigmoid(z @ self.model_embeddings_.T + self.model_bias_).astype(np.float64), None
