"""Policy kinds: the one registry of what a route profile's ``policy: {kind: ...}`` may be.

Why a registry: a profile's policy used to be worked out in several places (building it, applying
a per-request λ, telling whether the decision needs a per-prompt plan, choosing how to serve it),
each an ``isinstance`` ladder over the spec classes. Each kind now declares everything once:

* ``spec`` — its pydantic config model, the one source of its parameters (the config's
  ``policy`` union is built from the registered specs, see :func:`policy_spec_union`);
* ``build(spec, context)`` — the :class:`ProfilePlan` a profile of this kind serves with;
* ``with_lam(spec, plan, lam)`` — the plan for one request that brings its own λ;
* ``backends_named(spec)`` — the backends its parameters name, which the config checks exist;
* ``serving`` — its call shape: ``single`` (one model, the rest as fallbacks), ``cascade``
  (cheap model first, escalate) or ``topk`` (a set, merged by an aggregator). Anything but
  ``single`` needs the policy's per-prompt plan (:meth:`ProfilePlan.multi_call`).

A new kind is one :func:`register_kind` call with these four parts; nothing else changes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from polyroute.policies.base import Policy
from polyroute.policies.capacity import BalancedPolicy, BiasBalancer
from polyroute.policies.cascade import AnswerScorer, CascadePolicy, HeuristicScorer
from polyroute.policies.topk import TopKPolicy
from polyroute.policies.tradeoff import TradeoffPolicy

#: Call shapes: how the gateway serves a decision of this kind.
SINGLE, CASCADE, TOPK = "single", "cascade", "topk"
#: The old name of the single-model shape (kept for callers that compare with it).
PLAIN = SINGLE
#: Tokens assumed per answer when pricing an aggregation call before any answer exists (the same
#: output-length convention as the bundled data's cost rule).
ANSWER_TOKENS = 256


class KindSpec(BaseModel):
    """Base of every kind's config: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _finite(v: float) -> float:
    if not math.isfinite(v):
        raise ValueError("must be a finite number")
    return v


class CascadeSpec(KindSpec):
    """Call the cheapest model of the prompt's estimated frontier first; escalate to the next
    one while confidence (router estimate × answer score) stays below ``threshold``."""

    kind: Literal["cascade"]
    threshold: float = Field(0.7, ge=0, le=1)
    #: Bounds the chain: its last step is the model the trade-off at this λ picks.
    lam: float = Field(0.0, ge=0)
    max_calls: int = Field(2, ge=1, le=8)
    #: What looks at each answer: ``heuristic`` (empty, refusal, truncated, looping answers
    #: score low) or ``none`` (the router's estimate alone decides).
    scorer: Literal["heuristic", "none"] = "heuristic"

    _lam = field_validator("lam")(classmethod(lambda cls, v: _finite(v)))


class TopKSpec(KindSpec):
    """Ask a set of up to ``max_k`` models in parallel, then have the ``aggregator`` backend
    merge their answers (a set of one is answered directly)."""

    kind: Literal["topk"]
    lam: float = Field(0.0, ge=0)
    max_k: int = Field(3, ge=1, le=8)
    #: Backend name that merges the candidates' answers.
    aggregator: str
    #: 0 = members fail independently, 1 = they fail together (sets grow less).
    dependence: float = Field(0.0, ge=0, le=1)

    _lam = field_validator("lam")(classmethod(lambda cls, v: _finite(v)))


class BalanceConfig(KindSpec):
    """Online load balancing: a per-backend bias added to the trade-off scores, lowered by
    ``gamma`` per request while the backend's load (in flight + waiting for a slot) exceeds
    ``target`` × its ``max_concurrency``, raised back (up to 0) while below."""

    gamma: float = Field(0.01, gt=0, le=1)
    target: float = Field(0.9, gt=0, le=1)


class TradeoffSpec(KindSpec):
    """Trade-off routing at ``lam``, optionally with online load balancing."""

    kind: Literal["tradeoff"]
    lam: float = Field(0.0, ge=0)
    balance: BalanceConfig | None = None

    _lam = field_validator("lam")(classmethod(lambda cls, v: _finite(v)))


# -- what a profile serves with -------------------------------------------------------------------
@dataclass(frozen=True)
class ProfilePlan:
    """A profile's policy and the parts its call shape needs (unused ones are None)."""

    policy: Policy
    mode: str = SINGLE
    scorer: AnswerScorer | None = None
    aggregator: str | None = None
    balancer: BiasBalancer | None = None
    balance_target: float = 1.0
    #: Predicted dollars of one aggregation call, charged to every set of two or more.
    aggregator_cost: float = 0.0

    @property
    def multi_call(self) -> bool:
        """Whether serving needs the policy's per-prompt plan (a cascade's chain, a set)."""
        return self.mode != SINGLE


class Priced(Protocol):
    """Anything with list prices (a backend's config)."""

    input_price_per_mtok: float
    output_price_per_mtok: float


@dataclass(frozen=True)
class BuildContext:
    """What building a plan may look at besides the spec."""

    #: The router's models that have a backend, in the decider's order.
    servable: Sequence[str]
    #: The profile's own restriction of the candidates (None = all).
    allowed: Sequence[str] | None = None
    #: Backends by name, for prices (a top-k profile's aggregation call).
    backends: Mapping[str, Priced] | None = None


@dataclass(frozen=True)
class PolicyKind:
    name: str
    spec: type[KindSpec]
    build: Callable[[Any, BuildContext], ProfilePlan]
    with_lam: Callable[[Any, ProfilePlan, float], ProfilePlan]
    serving: str
    #: The backends a spec names, by its field (checked against the config's backends).
    backends_named: Callable[[Any], dict[str, str]] = lambda spec: {}


_KINDS: dict[str, PolicyKind] = {}


def register_kind(kind: PolicyKind) -> PolicyKind:
    """Add a policy kind; its spec's ``kind`` literal must equal ``kind.name``."""
    if kind.name in _KINDS and _KINDS[kind.name] is not kind:
        raise ValueError(f"policy kind {kind.name!r} registered twice")
    literal = kind.spec.model_fields["kind"].annotation
    if getattr(literal, "__args__", None) != (kind.name,):
        raise ValueError(f"{kind.spec.__name__}.kind must be Literal[{kind.name!r}]")
    _KINDS[kind.name] = kind
    return kind


def policy_kinds() -> dict[str, PolicyKind]:
    """The registered kinds by name."""
    return dict(_KINDS)


def kind_of(spec: KindSpec) -> PolicyKind:
    """The registered kind a parsed spec belongs to."""
    return _KINDS[spec.kind]  # type: ignore[attr-defined]


def policy_spec_union() -> Any:
    """The config type of a profile's ``policy``: one of the registered specs, by ``kind``."""
    specs = tuple(k.spec for k in _KINDS.values())
    union = specs[0] if len(specs) == 1 else _union(specs)
    return Annotated[union, Field(discriminator="kind")]


def _union(types: tuple[type, ...]) -> Any:
    out: Any = types[0]
    for t in types[1:]:
        out = out | t
    return out


# -- the built-in kinds ----------------------------------------------------------------------------
def _cascade_policy(spec: CascadeSpec, lam: float) -> CascadePolicy:
    return CascadePolicy(spec.threshold, lam=lam, max_calls=spec.max_calls)


def _build_cascade(spec: CascadeSpec, ctx: BuildContext) -> ProfilePlan:
    scorer = HeuristicScorer() if spec.scorer == "heuristic" else None
    return ProfilePlan(_cascade_policy(spec, spec.lam), CASCADE, scorer=scorer)


def aggregation_cost(spec: TopKSpec, backends: Mapping[str, Priced] | None) -> float:
    """Predicted cost of merging ``max_k`` answers on the aggregator backend: its input is the
    question plus the answers, its output one answer (each ~``ANSWER_TOKENS``)."""
    backend = (backends or {}).get(spec.aggregator)
    if backend is None:
        return 0.0
    tokens_in = (spec.max_k + 1) * ANSWER_TOKENS
    return (tokens_in * backend.input_price_per_mtok
            + ANSWER_TOKENS * backend.output_price_per_mtok) / 1e6


def _topk_policy(spec: TopKSpec, lam: float, extra: float) -> TopKPolicy:
    return TopKPolicy(lam, max_k=spec.max_k, dependence=spec.dependence, aggregator_cost=extra)


def _build_topk(spec: TopKSpec, ctx: BuildContext) -> ProfilePlan:
    # The aggregator need not be a model the router knows: its call is priced from its
    # backend's list prices, so a second member must be worth the merge too.
    extra = aggregation_cost(spec, ctx.backends)
    return ProfilePlan(_topk_policy(spec, spec.lam, extra), TOPK, aggregator=spec.aggregator,
                       aggregator_cost=extra)


def _build_tradeoff(spec: TradeoffSpec, ctx: BuildContext) -> ProfilePlan:
    if spec.balance is None:
        return ProfilePlan(TradeoffPolicy(spec.lam))
    models = [m for m in ctx.servable if ctx.allowed is None or m in ctx.allowed]
    balancer = BiasBalancer(models, spec.balance.gamma)
    return ProfilePlan(BalancedPolicy(balancer, spec.lam), balancer=balancer,
                       balance_target=spec.balance.target)


def _tradeoff_with_lam(spec: TradeoffSpec, plan: ProfilePlan, lam: float) -> ProfilePlan:
    if plan.balancer is not None:
        return replace(plan, policy=BalancedPolicy(plan.balancer, lam))
    return replace(plan, policy=TradeoffPolicy(lam))


register_kind(PolicyKind(
    "cascade", CascadeSpec, _build_cascade,
    lambda spec, plan, lam: replace(plan, policy=_cascade_policy(spec, lam)), CASCADE))
register_kind(PolicyKind(
    "topk", TopKSpec, _build_topk,
    lambda spec, plan, lam: replace(plan, policy=_topk_policy(spec, lam, plan.aggregator_cost)),
    TOPK, backends_named=lambda spec: {"aggregator": spec.aggregator}))
register_kind(PolicyKind("tradeoff", TradeoffSpec, _build_tradeoff, _tradeoff_with_lam, SINGLE))
