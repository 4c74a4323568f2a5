"""Routing decisions for the gateway: load the router, batch prompts, apply the policy.

Why worker threads: embedding and kNN are CPU-bound and would block the event loop; a worker
that takes every prompt waiting at that moment and embeds them together turns concurrent
requests into one batched encoder call (far cheaper per prompt than many parallel ones) and adds
no waiting when traffic is light — a lone request is processed immediately. One worker per
spare pair of cores (``router.workers``; one on a machine of two or three) keeps a larger machine
busy without making batches smaller there. A router with ``learns_online`` always gets exactly
one worker: it serialises online learning with estimation, so ``learn_one`` never runs in the
middle of an ``estimate``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from polyroute.config import BackendConfig, GatewayConfig, RouterConfig
from polyroute.data import load_outcomes
from polyroute.data.outcomes import DEFAULT_OUTPUT_TOKENS, ModelInfo
from polyroute.errors import ConfigError
from polyroute.features import DEFAULT_FEATURIZER
from polyroute.pipeline import Pipeline
from polyroute.policies import (
    CascadeDecision,
    Policy,
    SetDecision,
    decisions,
)
from polyroute.routers import CostModel, Estimates
from polyroute.store import Candidate

logger = logging.getLogger(__name__)


# -- loading and checking ------------------------------------------------------------------------
def load_pipeline(config: RouterConfig) -> Pipeline:
    """The configured router: loaded from ``path`` or trained from ``train.data``."""
    cache = config.embedding_cache
    cache_arg = None if cache is True else cache
    if config.path is not None:
        pipe = Pipeline.load(config.path, cache=cache_arg)
        if config.featurizer is not None and config.featurizer != pipe.featurizer_spec:
            raise ConfigError(f"router.featurizer is {config.featurizer!r} but the router in "
                              f"{config.path} was trained with {pipe.featurizer_spec!r}; remove "
                              f"router.featurizer or retrain")
    else:
        assert config.train is not None
        t = config.train
        outcomes = load_outcomes(t.data, t.models)
        pipe = Pipeline(t.router, featurizer=config.featurizer or DEFAULT_FEATURIZER,
                        cache=cache_arg, router_params=t.params).fit(outcomes)
        if t.save_to is not None:
            pipe.save(t.save_to)
    if type(pipe.router).evaluation_only:
        raise ConfigError(f"router {pipe.router.name!r} reads the true outcomes and can only be "
                          f"used in evaluation")
    return pipe


def estimated_as(router_models: Sequence[str],
                 backends: Sequence[BackendConfig]) -> dict[str, str]:
    """Servable backend → the router model whose estimates it gets.

    A backend named after a model the router knows is estimated as itself; one that declares
    ``like: <known model>`` borrows that model's quality estimates (priced at its own prices)
    until it is onboarded; any other backend is not routable (reachable only by name). Known
    backends come in the router's order, borrowing ones after them in config order.
    """
    known = set(router_models)
    names = {b.name for b in backends}
    by_name = {b.name: b for b in backends}
    out = {m: m for m in router_models if m in names}
    for b in backends:
        if b.name in known:
            continue
        if b.like is not None and b.like in known:
            out[b.name] = b.like
        elif b.effort_of is not None:
            # An effort level without data of its own: the model's estimates (plus its uplift).
            base = by_name.get(b.effort_of)
            if b.effort_of in known:
                out[b.name] = b.effort_of
            elif base is not None and base.like is not None and base.like in known:
                out[b.name] = base.like
    return out


ONBOARD_HINT = ("onboard them with `polyroute onboard --config FILE`, or give a backend "
                "`like: <a model the router knows>` to borrow that model's estimates until then")


def check_backends(router_models: Sequence[str], config: GatewayConfig) -> list[str]:
    """Warnings about router models without a backend and backends the router has no data for.

    A gateway starts with backends the router does not know: they are reachable by naming them
    as the model, and routed once onboarded (or while they borrow a known model's estimates with
    ``like``). Raises :class:`ConfigError` only for a ``like`` that names no known model.
    """
    known = set(router_models)
    for i, b in enumerate(config.backends):
        if b.like is not None and b.like not in known:
            raise ConfigError(f"backends[{i}].like: {b.like!r} is not a model the router knows "
                              f"(it knows {', '.join(router_models)})")
    servable = estimated_as(router_models, config.backends)
    warnings = []
    names = set(config.backend_names)
    dropped = [m for m in router_models if m not in names]
    if dropped:
        warnings.append(f"router models without a backend (never chosen): {', '.join(dropped)}")
    unknown = [b for b in config.backend_names if b not in servable]
    if unknown:
        warnings.append(f"backends the router has no outcome data for (reachable only by naming "
                        f"them as the model): {', '.join(unknown)}; {ONBOARD_HINT}")
    borrowing = [f"{b} (like {m})" for b, m in servable.items() if b != m]
    if borrowing:
        warnings.append(f"backends routed on a known model's estimates until onboarded: "
                        f"{', '.join(borrowing)}")
    if not servable:
        warnings.append("no backend is named after a model the router knows: route profiles "
                        "answer 503 until a backend can be routed; " + ONBOARD_HINT)
    for name, profile in config.effective_profiles().items():
        if servable and profile.models is not None and not set(profile.models) & set(servable):
            warnings.append(f"profiles.{name}.models: none of {', '.join(profile.models)} can "
                            f"be routed yet, so the profile answers 503; {ONBOARD_HINT}")
    return warnings


def _repriced(pipe: Pipeline, source: Mapping[str, str],
              backends: dict[str, BackendConfig]) -> CostModel | None:
    """A cost model with the backends' prices, or None if they equal the training prices.

    The router's cost model learned each model's mean output *cost* at training prices; the
    expected output length it implies is re-priced at the configured price (a borrowing
    backend takes the output length of the model it is estimated as).
    """
    cm = pipe.cost_model_
    assert cm is not None
    index = {m.name: j for j, m in enumerate(cm.models)}
    infos, out_cost, changed = [], [], False
    for name, like in source.items():
        old, b = cm.models[index[like]], backends[name]
        new = ModelInfo(name, b.input_price_per_mtok, b.output_price_per_mtok)
        changed |= name != like or (old.input_price_per_mtok, old.output_price_per_mtok) != \
            (new.input_price_per_mtok, new.output_price_per_mtok)
        learned = cm.output_cost[index[like]]
        tokens = learned / (old.output_price_per_mtok / 1e6) if old.output_price_per_mtok > 0 \
            else DEFAULT_OUTPUT_TOKENS
        if name != like and b.effort is not None:  # an effort level answers longer (or shorter)
            tokens *= b.effort_output_factor
            changed = True
        infos.append(new)
        out_cost.append(tokens * new.output_price_per_mtok / 1e6)
    return CostModel(tuple(infos), tuple(out_cost), cm.cost_scale) if changed else None


# -- deciding ------------------------------------------------------------------------------------
#: A multi-call policy's per-prompt plan (the cascade's chain, the top-k set); None otherwise.
Plan = CascadeDecision | SetDecision | None


@dataclass(frozen=True)
class Analysis:
    """The router's view of one routing text: its embedding and the servable models' estimates
    (one row). Made once per request; signals, rules and named routes read it, and a decision
    given it ranks on it without embedding the text again."""

    embedding: np.ndarray
    estimates: Estimates
    #: Time from asking to having it (queue wait, embedding, estimating).
    elapsed_ms: float = 0.0


@dataclass(frozen=True)
class RoutingResult:
    candidates: tuple[Candidate, ...]
    policy: str
    decision_ms: float
    plan: Plan = None
    analysis: Analysis | None = None


@dataclass
class _Decide:
    text: str
    #: None: only the analysis is wanted (no ranking).
    policy: Policy | None
    allowed: tuple[str, ...] | None
    loop: asyncio.AbstractEventLoop | None
    future: asyncio.Future | None
    enqueued: float
    multi_call: bool = False


@dataclass
class _Learn:
    text: str
    model: str
    quality: float
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future


_STOP = object()
#: Texts this short are embedded together whatever their lengths (see ``_estimate_by_length``).
_SHORT_CHARS = 200


def limit_cpu_threads(n: int) -> None:
    """Cap the process's BLAS/OpenMP and torch threads at ``n``.

    Why: the encoder's thread pool competes with the event loop for the same cores; on a small
    machine two intra-op threads make every decision wait whenever one core is busy elsewhere
    (p99 several times p50), while one thread keeps decisions steady.
    """
    try:  # installed with scikit-learn; optional here
        from threadpoolctl import threadpool_limits
    except ImportError:
        logger.debug("threadpoolctl is not installed: BLAS threads are left as they are")
    else:
        threadpool_limits(n)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity (``taskset``, a container's cpuset),
    not the machine's count, which would oversubscribe a gateway pinned to fewer cores."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity API (macOS, Windows)
        return os.cpu_count() or 2


def default_workers(cores: int | None = None) -> int:
    """Decision workers when unset: one per two cores beyond the event loop's, at most 4."""
    cores = usable_cores() if cores is None else cores
    return max(1, min(4, (cores - 1) // 2))


def default_threads(workers: int = 1, cores: int | None = None) -> int:
    """Encoder threads per worker when unset: the cores but one (left to the event loop) shared
    among ``workers``, at most 4."""
    cores = usable_cores() if cores is None else cores
    return max(1, min(4, (cores - 1) // max(1, workers)))


def _resolve(future: asyncio.Future, result: object, exc: BaseException | None) -> None:
    if future.done():  # the request was cancelled meanwhile
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


class Decider:
    """Turns (text, policy) into ranked candidates among the servable models."""

    def __init__(self, pipeline: Pipeline, backends: Sequence[BackendConfig],
                 max_batch: int = 32, threads: int | None = None, workers: int = 1,
                 decide_on: str = "thread") -> None:
        self.pipeline = pipeline
        by_name = {b.name: b for b in backends}
        router_models = list(pipeline.models)
        source = estimated_as(router_models, backends)
        #: Servable backends (possibly none: then every profile answers 503).
        self.models: tuple[str, ...] = tuple(source)
        #: Borrowing backend → the known model whose estimates it uses.
        self.borrowed: dict[str, str] = {b: m for b, m in source.items() if b != m}
        self._cols = np.array([router_models.index(m) for m in source.values()], dtype=int)
        #: Quality added to a borrowed effort level's estimate (0 elsewhere).
        self._uplift = np.array([by_name[b].effort_uplift if b in self.borrowed
                                 and by_name[b].effort is not None else 0.0 for b in source])
        #: How each borrowed estimate was made, in words, for the decision's explanation.
        self.estimated_note: dict[str, str] = {
            b: (f"estimated as {m} {by_name[b].effort_uplift:+g} (no {by_name[b].effort}-"
                f"effort outcome data), {by_name[b].effort_output_factor:g}× its answer length"
                if by_name[b].effort is not None else
                f"estimated as {m} (like: no outcome data of its own)")
            for b, m in self.borrowed.items()}
        self._cost_model = _repriced(pipeline, source, by_name) if source else None
        self.max_batch = max_batch
        self.threads = threads
        self.learns_online = bool(type(pipeline.router).learns_online)
        #: Worker threads taking decisions off the queue (one for a router that learns online).
        self.workers = 1 if self.learns_online else max(1, workers)
        #: The featurizer's own input cut (e.g. MiniLM's ~1,000 characters): longer texts cost
        #: the same to embed, so they are batched together (see ``_estimate_by_length``).
        self._max_chars: int | None = getattr(pipeline.featurizer, "max_chars", None)
        #: Whether a batch is padded to its longest text (a transformer); one that is not
        #: (TF-IDF, static embeddings) is embedded in one call whatever the lengths.
        self._pads = bool(getattr(pipeline.featurizer, "pads_batches", True))
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        #: Whether decisions run on the event loop (see ``router.decide_on``), batched per loop
        #: turn in ``_waiting``, instead of on worker threads.
        self.on_loop = decide_on == "loop" or (
            decide_on == "auto" and bool(getattr(pipeline.featurizer, "light", False)))
        self._waiting: list[_Decide] = []

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        if not self._threads and not self.on_loop:
            self._threads = [threading.Thread(target=self._run, name=f"polyroute-decider-{i}",
                                              daemon=True) for i in range(self.workers)]
            for thread in self._threads:
                thread.start()

    def stop(self) -> None:
        if self._threads:
            for _ in self._threads:  # one each: a worker returns on the first it takes
                self._queue.put(_STOP)
            for thread in self._threads:
                thread.join()
            self._threads = []

    def warm_up(self) -> None:
        """Load the encoder, cap its CPU threads, and touch every code path once, so the first
        request is not slow."""
        from polyroute.policies import TradeoffPolicy

        if not self.models:  # nothing to route yet: the encoder loads on first use
            return
        self.decide_now(["warm-up: what is two plus two?"], TradeoffPolicy(0.0))
        if self.threads is not None:
            limit_cpu_threads(self.threads)
            self.decide_now(["warm-up: what is two plus two?"], TradeoffPolicy(0.0))

    # -- the work --------------------------------------------------------------------------------
    def estimates(self, texts: Sequence[str]) -> Estimates:
        """Estimates restricted to servable models, priced at the backends' prices."""
        return self.embed_and_estimate(texts)[1]

    def embed_and_estimate(self, texts: Sequence[str]) -> tuple[np.ndarray, Estimates]:
        """The texts' embeddings and :meth:`estimates` from them: one encoder pass."""
        features, est = self._estimate_by_length(list(texts))
        cols = self._cols
        assert est.cost is not None
        cost = est.cost[:, cols] if self._cost_model is None else \
            self._cost_model.predict(texts)
        quality = est.quality[:, cols]
        if self._uplift.any():
            quality = np.clip(quality + self._uplift, 0.0, 1.0)
        return features, Estimates(
            models=self.models, quality=quality, cost=cost,
            uncertainty=None if est.uncertainty is None else est.uncertainty[:, cols],
            cost_scale=est.cost_scale)

    @property
    def cost_scale(self) -> float:
        """The reference cost that makes λ dimensionless in this router's estimates."""
        cm = self.pipeline.cost_model_
        return cm.cost_scale if cm is not None else 1.0

    def predicted_costs(self, text: str) -> dict[str, float]:
        """Each servable model's predicted cost of ``text`` from its length alone — what the
        estimates would say, without the encoder (a router that predicts costs itself is
        approximated by the cost model). Cheap: called on the event loop."""
        cm = self._cost_model
        if cm is not None:
            row = cm.predict([text])[0]
        else:
            base = self.pipeline.cost_model_
            if base is None or not self.models:
                return {}
            row = base.predict([text], list(self.models))[0]
        return {m: float(c) for m, c in zip(self.models, row, strict=True)}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings in the router's space (examples that requests are compared with).
        Blocking: call before :meth:`start` or from the worker thread."""
        return np.asarray(self.pipeline.featurizer.encode(list(texts)))

    def _embedded(self, texts: list[str]) -> tuple[np.ndarray, Estimates]:
        features = np.asarray(self.pipeline.featurizer.encode(texts))
        return features, self.pipeline.estimate(texts, features=features)

    def _estimate_by_length(self, texts: list[str]) -> tuple[np.ndarray, Estimates]:
        """``pipeline.estimate`` on groups of similar length, rows back in the input order.

        An encoder pads a batch to its longest text: one 250-token prompt among 31 short ones
        would make the whole batch cost 32 long prompts. Texts are sorted by length and a new
        group starts whenever a text is more than twice as long as its group's shortest (short
        texts, under ``_SHORT_CHARS``, all go together; so do texts beyond the featurizer's own
        cut, which it embeds at the same length).
        """
        if len(texts) == 1 or not self._pads:
            return self._embedded(texts)
        cap = self._max_chars
        lengths = [len(t) if cap is None else min(len(t), cap) for t in texts]
        order = [int(i) for i in np.argsort(lengths, kind="stable")]
        groups: list[list[int]] = []
        for i in order:
            n = lengths[i]
            if groups and n <= max(2 * lengths[groups[-1][0]], _SHORT_CHARS):
                groups[-1].append(i)
            else:
                groups.append([i])
        if len(groups) == 1:
            return self._embedded(texts)
        embedded = [self._embedded([texts[i] for i in g]) for g in groups]
        parts = [e for _, e in embedded]
        flat = np.array([i for g in groups for i in g])
        inverse = np.empty_like(flat)
        inverse[flat] = np.arange(len(flat))

        def stack(name: str) -> np.ndarray | None:
            arrays = [getattr(p, name) for p in parts]
            return None if arrays[0] is None else np.concatenate(arrays)[inverse]

        quality = stack("quality")
        assert quality is not None
        features = np.concatenate([f for f, _ in embedded])[inverse]
        return features, Estimates(models=parts[0].models, quality=quality, cost=stack("cost"),
                                   uncertainty=stack("uncertainty"),
                                   cost_scale=parts[0].cost_scale)

    def decide_now(self, texts: Sequence[str], policy: Policy,
                   allowed: tuple[str, ...] | None = None) -> list[tuple[Candidate, ...]]:
        """Synchronous decisions (benchmarks, warm-up); each prompt decided on its own."""
        est = self.estimates(texts)
        return [self._rank(est, i, policy, allowed)[0] for i in range(len(texts))]

    def _rank(self, est: Estimates, row: int, policy: Policy,
              allowed: tuple[str, ...] | None,
              multi_call: bool = False) -> tuple[tuple[Candidate, ...], Plan]:
        """Ranked candidates of one prompt; with ``multi_call`` (the profile's kind serves a
        cascade or a set) also the policy's per-prompt plan."""
        one = est.subset(np.array([row]))
        if allowed is not None:
            keep = [j for j, m in enumerate(one.models) if m in allowed]
            one = Estimates(models=tuple(one.models[j] for j in keep),
                            quality=one.quality[:, keep],
                            cost=None if one.cost is None else one.cost[:, keep],
                            uncertainty=None if one.uncertainty is None else
                            one.uncertainty[:, keep], cost_scale=one.cost_scale)
        d = decisions(one, policy)[0]
        plan: Plan = policy.decide(one)[0] if multi_call else None  # type: ignore[attr-defined]
        return tuple(Candidate(m, d.estimated_quality[m], d.estimated_cost[m],
                               borrowed_from=self.borrowed.get(m))
                     for m in d.candidates), plan

    async def decide(self, text: str, policy: Policy, allowed: tuple[str, ...] | None = None,
                     *, multi_call: bool = False, analysis: Analysis | None = None
                     ) -> RoutingResult:
        """Ranked candidates for one prompt, computed on the worker thread; ``multi_call`` asks
        for the policy's per-prompt plan too (a cascade's chain, a top-k set).

        Given the text's ``analysis`` (made earlier, for signals), only the ranking is left: it
        runs here, on those estimates, without embedding the text again.
        """
        started = time.perf_counter()
        # (An analysis by a router since replaced, for other models, is not ranked on here.)
        if analysis is not None and analysis.estimates.models == self.models:
            candidates, plan = self._rank(analysis.estimates, 0, policy, allowed, multi_call)
            return RoutingResult(candidates, policy.name, analysis.elapsed_ms +
                                 (time.perf_counter() - started) * 1000, plan, analysis)
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._submit(_Decide(text, policy, allowed, loop, future, started, multi_call))
        analysis, (candidates, plan) = await future
        ms = (time.perf_counter() - started) * 1000
        return RoutingResult(candidates, policy.name, ms, plan,
                             dataclasses.replace(analysis, elapsed_ms=ms))

    async def analyse(self, text: str) -> Analysis:
        """The router's embedding and estimates of one text (on the worker thread, batched
        with the decisions waiting there), for a later :meth:`decide` to rank on."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        started = time.perf_counter()
        self._submit(_Decide(text, None, None, loop, future, started))
        analysis, _ = await future
        return dataclasses.replace(analysis, elapsed_ms=(time.perf_counter() - started) * 1000)

    async def learn(self, text: str, model: str, quality: float) -> bool:
        """Feed one observed outcome to a router that ``learns_online``; False if it cannot."""
        if not self.learns_online or model not in self.pipeline.models:
            return False
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        job = _Learn(text, model, quality, loop, future)
        if self.on_loop:
            self._process([*self._take_waiting(), job])  # in order after decisions asked first
        else:
            self._queue.put(job)
        await future
        return True

    def _submit(self, job: _Decide) -> None:
        """Hand a decision to the worker threads, or (on the loop) to this loop turn's batch.

        Why batch per turn: the requests whose handlers reached their decision while the loop
        ran its ready callbacks are decided together in the next turn, one encoder and one
        neighbour search for all of them; nothing waits for a timer. Why on the loop at all,
        for a light featurizer: a worker thread on the same cores makes every decision a GIL
        hand-off; side by side in ``benchmarks/proxy_speed.py`` the loop took 2.67 against 2.95
        ms of CPU per routed request (373 against 346 req/s at concurrency 32)."""
        if not self.on_loop:
            self._queue.put(job)
            return
        self._waiting.append(job)
        if len(self._waiting) == 1:
            job.loop.call_soon(self._decide_waiting)

    def _take_waiting(self) -> list[_Decide]:
        batch, self._waiting = self._waiting, []
        return batch

    def _decide_waiting(self) -> None:
        batch = self._take_waiting()
        for start in range(0, len(batch), self.max_batch):
            self._decide_batch(batch[start:start + self.max_batch])

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            batch = [job]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                batch.append(nxt)
            self._process(batch)
            if stop:
                return

    def _process(self, batch: list) -> None:
        """Runs consecutive decide jobs as one batch; learn jobs in their place in the order."""
        run: list[_Decide] = []
        for job in batch:
            if isinstance(job, _Decide):
                run.append(job)
                continue
            self._decide_batch(run)
            run = []
            self._learn(job)
        self._decide_batch(run)

    def _decide_batch(self, jobs: list[_Decide]) -> None:
        jobs = [j for j in jobs if j.future is None or not j.future.done()]
        if not jobs:
            return
        try:
            features, est = self.embed_and_estimate([j.text for j in jobs])
        except Exception as exc:  # noqa: BLE001 - handed to every waiting request, which raises
            for j in jobs:
                self._hand_back(j, None, exc)
            return
        for i, j in enumerate(jobs):
            try:
                analysis = Analysis(features[i], est.subset(np.array([i])))
                ranked = None if j.policy is None else \
                    self._rank(analysis.estimates, 0, j.policy, j.allowed, j.multi_call)
                result, error = (analysis, ranked), None
            except Exception as exc:  # noqa: BLE001 - raised again in the request's task
                result, error = None, exc
            self._hand_back(j, result, error)

    def _hand_back(self, job: _Decide | _Learn, result: object,
                   exc: BaseException | None) -> None:
        """Resolve ``job``'s future: directly on the loop, thread-safely from a worker."""
        if self.on_loop:
            _resolve(job.future, result, exc)
        else:
            job.loop.call_soon_threadsafe(_resolve, job.future, result, exc)

    def _learn(self, job: _Learn) -> None:
        try:
            row = self.pipeline.featurizer.encode([job.text])[0]
            self.pipeline.router.learn_one(row, job.model, job.quality)
        except Exception as exc:  # noqa: BLE001 - raised again in the feedback request's task
            self._hand_back(job, None, exc)
            return
        self._hand_back(job, True, None)
