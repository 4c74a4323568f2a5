"""Shared PyTorch set-up for routers that train with it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


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
