"""Shared PyTorch set-up for routers that train with it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np


@contextmanager
def small_problem_threads(n: int = 1) -> Iterator[None]:
    """Run a block with ``n`` intra-op threads, then restore the previous setting.

    Router training works on matrices of a few thousand rows: thread start-up and contention cost
    more than they save (measured: matrix factorisation fit 6 s alone, 49 s beside other jobs on
    2 cores with the default thread pool).
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def train_masked_bce(params: list, logits: Callable[[bool], Any], quality: np.ndarray, *,
                     epochs: int, lr: float, weight_decay: float, validation: float,
                     patience: int, random_state: int) -> None:
    """Fit ``params`` so that ``sigmoid(logits(train))`` matches the known quality cells.

    Full-batch AdamW on binary cross-entropy (fractional scores allowed) over known cells only;
    a ``validation`` share of the prompts (when there are 50 or more) stops training after
    ``patience`` epochs without improvement, and the best parameters are restored in place.
    Shared by the factor-model routers (MF, IRT), which differ only in how they build logits.
    """
    import torch

    with small_problem_threads():
        rng = np.random.default_rng(random_state)
        n = quality.shape[0]
        q = torch.as_tensor(np.nan_to_num(quality), dtype=torch.float32)
        known = torch.as_tensor(~np.isnan(quality))
        val = torch.zeros(n, dtype=torch.bool)
        if n >= 50 and validation > 0:
            val[rng.permutation(n)[: max(1, int(n * validation))]] = True
        train_mask = known & ~val[:, None]
        val_mask = known & val[:, None]
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
        loss_fn = torch.nn.BCEWithLogitsLoss(reduction="none")

        best, best_state, waited = float("inf"), None, 0
        for _ in range(epochs):
            opt.zero_grad()
            loss = (loss_fn(logits(True), q) * train_mask).sum() / train_mask.sum()
            loss.backward()
            opt.step()
            if not val_mask.any():
                continue
            with torch.no_grad():
                v = float((loss_fn(logits(False), q) * val_mask).sum() / val_mask.sum())
            if v < best - 1e-5:
                best, waited = v, 0
                best_state = [p.detach().clone() for p in params]
            else:
                waited += 1
                if waited >= patience:
                    break
        if best_state is not None:
            with torch.no_grad():
                for p, s in zip(params, best_state, strict=True):
                    p.copy_(s)
