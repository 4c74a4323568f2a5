"""The gateway configuration: one pydantic model tree, read from one YAML file, checked at start.

Why one tree: everything the gateway needs is validated before a port is opened, so a typo fails
with a message naming the key (``backends[1].timeout: must be > 0``) instead of a stack trace on the
first request. The rest of the code receives these frozen, typed values and never reads YAML or the
environment itself.

Order of precedence (later wins)::

    YAML file  <  environment (POLYROUTE__SECTION__KEY=value)  <  command-line flags

An environment variable ``POLYROUTE__SERVER__PORT=9000`` sets ``server.port``; nested keys are
separated by a double underscore, list items by their index (``POLYROUTE__BACKENDS__0__TIMEOUT``).
Values are read as YAML scalars, so ``9000`` is a number and ``false`` a boolean. Secrets never live
in the file: a backend names the environment variable holding its API key (``api_key_env``) and
client keys are stored as SHA-256 digests.
"""

from __future__ import annotations

import math
import os
import re
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from polyroute.efforts import LEVELS as EFFORT_LEVELS
from polyroute.efforts import candidate_name
from polyroute.errors import ConfigError
from polyroute.guards.config import GuardsConfig
from polyroute.plugins import PluginSpec
from polyroute.policies import Preference
from polyroute.policies.kinds import (  # noqa: F401 (re-exported: the config's spec types)
    BalanceConfig,
    CascadeSpec,
    TopKSpec,
    TradeoffSpec,
    kind_of,
    policy_spec_union,
)
from polyroute.signals.config import NamedRouteConfig, RuleConfig, SignalsConfig, check_rules

#: Prefix of environment variables that override config values.
ENV_PREFIX = "POLYROUTE__"
#: The profile created when a config defines none.
DEFAULT_PROFILE = "polyroute-auto"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class _Section(BaseModel):
    """Unknown keys are errors (a misspelt key must not be silently ignored); values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_name(value: str, what: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"{what} {value!r} must start with a letter or digit and contain no "
                         f"spaces")
    return value


# -- backends ----------------------------------------------------------------------------------
#: Query parameters of a ``base_url`` that carry a credential.
_SECRET_PARAM = re.compile(r"(?i)(key|token|secret|password|passwd)$|^(sig|signature|auth)$")


#: The upstream APIs a backend may speak (``dialect``); ``polyroute.gateway.upstream.DIALECTS``
#: holds their implementations (a test keeps the two lists equal).
DIALECT_NAMES = ("openai", "anthropic")

#: Anthropic's default thinking budget (tokens) per ``reasoning_effort``; 1024 is its minimum.
DEFAULT_THINKING_BUDGETS = {"low": 1024, "medium": 4096, "high": 16384}


class AnthropicConfig(_Section):
    """What a ``dialect: anthropic`` backend needs that Chat Completions does not say.

    ``default_max_tokens`` is sent when the request gives no ``max_tokens`` /
    ``max_completion_tokens`` (Anthropic requires one). ``thinking_budgets`` maps a request's
    ``reasoning_effort`` to ``thinking.budget_tokens``; an effort not in it sends no thinking.
    ``thinking``: what becomes of the answer's thinking blocks — ``reasoning_content`` (the
    message field other OpenAI-compatible servers use) or ``drop``.
    """

    version: str = "2023-06-01"
    default_max_tokens: int = Field(4096, ge=1)
    thinking_budgets: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_THINKING_BUDGETS))
    thinking: Literal["reasoning_content", "drop"] = "reasoning_content"

    @field_validator("thinking_budgets")
    @classmethod
    def _budgets(cls, v: dict[str, int]) -> dict[str, int]:
        low = {k: b for k, b in v.items() if b < 1024}
        if low:
            raise ValueError(f"Anthropic's smallest thinking budget is 1024 tokens, got {low}")
        return v


class EffortConfig(_Section):
    """One reasoning-effort level a backend exposes (``efforts: {high: {...}}``).

    Without outcome data for ``model@level`` the level is routed on the model's own estimates
    plus ``uplift``, its expected answer length times ``output_tokens_factor`` (reasoning
    tokens are billed as output), at its own prices if given — so the knob works before any
    effort-level data exists, and the decision says the estimate was borrowed."""

    #: Quality added to the model's estimate (clipped to [0, 1]) until ``model@level`` has data.
    uplift: float = Field(0.0, ge=-1.0, le=1.0)
    #: Expected output tokens relative to the model's learnt answer length.
    output_tokens_factor: float = Field(1.0, gt=0.0, le=100.0)
    input_price_per_mtok: float | None = Field(None, ge=0)
    output_price_per_mtok: float | None = Field(None, ge=0)


class BackendConfig(_Section):
    """One upstream. ``name`` is the model name the router knows (its column in the outcomes);
    ``model`` is the id sent upstream (defaults to ``name``). ``dialect`` is the API it speaks:
    ``openai`` (Chat Completions at ``{base_url}chat/completions``, bearer key) or ``anthropic``
    (Messages at ``{base_url}v1/messages``, ``x-api-key``; settings under ``anthropic``)."""

    name: str
    base_url: str
    model: str | None = None
    dialect: str = "openai"
    anthropic: AnthropicConfig | None = None
    api_key_env: str | None = None
    input_price_per_mtok: float = Field(ge=0)
    output_price_per_mtok: float = Field(ge=0)
    #: Dollars per million prompt tokens read from the provider's prompt cache (e.g. 10 % of the
    #: input price); None: the backend has no prompt cache. Prices what a conversation loses
    #: when it is moved off this backend (``conversations``).
    cached_input_price_per_mtok: float | None = Field(None, ge=0)
    #: Seconds for a whole non-streamed answer, for the first streamed byte, and between chunks.
    timeout: float = Field(60.0, gt=0)
    connect_timeout: float = Field(5.0, gt=0)
    max_concurrency: int = Field(64, ge=1)
    #: Seconds a request waits for a free slot before this backend counts as unavailable.
    queue_timeout: float = Field(5.0, ge=0)
    #: Ask for token usage in streams (``stream_options.include_usage``) so streamed calls are
    #: charged real tokens; the extra chunk is removed unless the client asked for it.
    stream_usage: bool = True
    #: The most completion tokens this backend's model produces in one answer, if known: the
    #: answer-length ceiling learnt for spend limits (see ``ceilings``) never exceeds it.
    max_output_tokens: int | None = Field(None, ge=1)
    #: Until this backend has outcome data, route it on the estimates of this model the router
    #: knows (priced at this backend's own prices); decisions that use it say so.
    like: str | None = None
    #: Reasoning-effort levels offered as candidates of their own, each a backend
    #: ``name@level`` sending ``reasoning_effort: level`` (see :class:`EffortConfig`).
    efforts: dict[str, EffortConfig] = Field(default_factory=dict)
    #: Set on the backends ``efforts`` expands into: the level and the backend it came from.
    effort: str | None = None
    effort_of: str | None = None
    effort_uplift: float = 0.0
    effort_output_factor: float = 1.0
    #: Largest streamed event (bytes) relayed; a longer one ends the stream as an upstream error.
    max_event_bytes: int = Field(4_000_000, ge=1024)
    #: Largest non-streamed answer (bytes) read; a larger one counts as a failure (next candidate).
    max_answer_bytes: int = Field(32_000_000, ge=1024)
    #: A key written in the file is rejected with a message saying where it belongs.
    api_key: Any = Field(None, exclude=True)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check_name(v, "backend name")

    @field_validator("effort")
    @classmethod
    def _effort(cls, v: str | None) -> str | None:
        if v is not None and v not in EFFORT_LEVELS:
            raise ValueError(f"unknown effort level {v!r}; the levels are "
                             f"{', '.join(EFFORT_LEVELS)}")
        return v

    @field_validator("efforts")
    @classmethod
    def _levels(cls, v: dict[str, EffortConfig]) -> dict[str, EffortConfig]:
        unknown = [k for k in v if k not in EFFORT_LEVELS]
        if unknown:
            raise ValueError(f"unknown effort level(s) {', '.join(map(repr, unknown))}; the "
                             f"levels are {', '.join(EFFORT_LEVELS)}")
        return v

    def expand_efforts(self) -> list[BackendConfig]:
        """This backend and one backend per effort level, ``name@level``."""
        out = [self.model_copy(update={"efforts": {}})]
        for level, e in self.efforts.items():
            out.append(self.model_copy(update={
                "name": candidate_name(self.name, level), "model": self.upstream_model,
                "efforts": {}, "effort": level, "effort_of": self.name,
                "effort_uplift": e.uplift, "effort_output_factor": e.output_tokens_factor,
                "input_price_per_mtok": self.input_price_per_mtok
                if e.input_price_per_mtok is None else e.input_price_per_mtok,
                "output_price_per_mtok": self.output_price_per_mtok
                if e.output_price_per_mtok is None else e.output_price_per_mtok}))
        return out

    @model_validator(mode="after")
    def _like_other(self) -> BackendConfig:
        if self.like is not None and self.like == self.name:
            raise ValueError(f"like: a backend cannot borrow its own estimates ({self.name!r})")
        return self

    @field_validator("dialect")
    @classmethod
    def _dialect(cls, v: str) -> str:
        if v not in DIALECT_NAMES:
            raise ValueError(f"must be the API the backend speaks, one of "
                             f"{', '.join(DIALECT_NAMES)}; got {v!r}")
        return v

    @model_validator(mode="after")
    def _dialect_settings(self) -> BackendConfig:
        if self.anthropic is not None and self.dialect != "anthropic":
            raise ValueError(f"anthropic: these settings are for dialect: anthropic, but backend "
                             f"{self.name!r} has dialect: {self.dialect}")
        if self.dialect == "anthropic" and urllib.parse.urlsplit(
                self.base_url).path.rstrip("/").endswith("/v1"):
            raise ValueError(f"base_url: for dialect: anthropic it is the API's root such as "
                             f"https://api.anthropic.com (the gateway adds /v1/messages); "
                             f"backend {self.name!r} has one ending in /v1")
        return self

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^https?://[^/\s]+", v):
            raise ValueError(f"must be an http:// or https:// URL such as "
                             f"https://api.openai.com/v1, got {v!r}")
        # A credential in the URL would be logged with every request and shown by tools that
        # print URLs; the message does not repeat the URL, since it holds the secret.
        parts = urllib.parse.urlsplit(v)
        if "@" in parts.netloc:
            raise ValueError("must not hold a user name or password (user:password@host): put the "
                             "key in an environment variable and name it with api_key_env")
        named = [k for k, _ in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
                 if _SECRET_PARAM.search(k)]
        if named:
            raise ValueError(f"must not carry a credential in its query ({', '.join(named)}): "
                             f"put the key in an environment variable and name it with "
                             f"api_key_env")
        return v.rstrip("/") + "/"

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", v):
            raise ValueError(f"must be the *name* of an environment variable (e.g. "
                             f"OPENAI_API_KEY), got {v!r}")
        return v

    @field_validator("api_key")
    @classmethod
    def _no_key_in_file(cls, v: Any) -> None:
        if v is not None:
            raise ValueError("API keys are never read from the config file: put the key in an "
                             "environment variable and name it with api_key_env")
        return None

    @model_validator(mode="after")
    def _cached_below_input(self) -> BackendConfig:
        cached = self.cached_input_price_per_mtok
        if cached is not None and cached > self.input_price_per_mtok:
            raise ValueError(f"cached_input_price_per_mtok ({cached:g}) must be <= "
                             f"input_price_per_mtok ({self.input_price_per_mtok:g}): a cache "
                             f"read is never dearer than reading the prompt anew")
        return self

    @property
    def upstream_model(self) -> str:
        return self.model or self.name


# -- policies and profiles ---------------------------------------------------------------------
class PolicyConfig(_Section):
    """At most one of ``lam`` (quality/cost trade-off), ``budget`` (dollars per request) or
    ``floor`` (cheapest model estimated to reach this quality). None set means λ = 0 (best)."""

    lam: float | None = Field(None, ge=0)
    budget: float | None = Field(None, ge=0)
    floor: float | None = Field(None, ge=0, le=1)

    @field_validator("lam", "budget")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    @model_validator(mode="after")
    def _one_knob(self) -> PolicyConfig:
        given = [k for k in ("lam", "budget", "floor") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"set only one of lam, budget or floor (got {', '.join(given)})")
        return self

    @property
    def is_set(self) -> bool:
        return any(getattr(self, k) is not None for k in ("lam", "budget", "floor"))

    def preference(self) -> Preference:
        return Preference(lam=self.lam or 0.0, budget=self.budget, floor=self.floor)


#: A profile's policy, told apart by ``kind``: the union of the registered policy kinds' specs
#: (:mod:`polyroute.policies.kinds`), so a new kind needs no edit here.
PolicySpec = policy_spec_union()


class ShadowConfig(_Section):
    """Shadow mode: ``serve`` answers every request while the router's decision is computed
    and recorded (``polyroute report`` then says what routing would have spent). A ``sample``
    share of complete (non-streamed) answers is also asked of the routed model, and ``judge``
    compares the two answers blind; those calls are the operator's cost, never the key's."""

    #: The backend that answers (the model the team uses today).
    serve: str
    #: Share of requests also sent to the routed model and judged (0 = decisions only).
    sample: float = Field(0.0, ge=0.0, le=1.0)
    #: The backend that judges the pair; required when ``sample`` > 0.
    judge: str | None = None
    #: Seed of the sampling (a request is sampled by a hash of its id and this seed).
    seed: int = 0

    @model_validator(mode="after")
    def _judge_when_sampled(self) -> ShadowConfig:
        if self.sample > 0 and self.judge is None:
            raise ValueError("sample > 0 needs a judge backend (judge: <backend name>) to "
                             "compare the two answers")
        return self


class ProfileConfig(PolicyConfig):
    """A named routing setting clients select with the ``model`` field (e.g. polyroute-cheap).

    Without lam/budget/floor/policy it uses ``default_policy``; ``models`` optionally restricts
    the candidates to some backends. ``policy`` selects a multi-call or balanced policy
    (``{kind: cascade | topk | tradeoff, ...}``) instead of the single-knob lam/budget/floor."""

    description: str = ""
    models: tuple[str, ...] | None = None
    policy: PolicySpec | None = None
    #: Serve a fixed model while recording what the router would have chosen.
    shadow: ShadowConfig | None = None
    #: Who chooses the reasoning effort: ``client`` (a request's ``reasoning_effort`` keeps
    #: only that level's candidates) or ``router`` (the request's level is ignored).
    effort: Literal["client", "router"] = "client"

    @model_validator(mode="after")
    def _policy_or_knob(self) -> ProfileConfig:
        if self.policy is not None and any(getattr(self, k) is not None
                                           for k in ("lam", "budget", "floor")):
            raise ValueError(f"give either policy (kind {self.policy.kind}) or one of lam, "
                             f"budget, floor; to set λ for this policy write policy.lam")
        return self

    @property
    def is_set(self) -> bool:
        return self.policy is not None or super().is_set


# -- router ------------------------------------------------------------------------------------
class TrainConfig(_Section):
    """Train a router at start-up from an outcomes file instead of loading a saved one."""

    data: Path
    models: Path | None = None
    router: str = "knn"
    params: dict[str, Any] = Field(default_factory=dict)
    #: Optionally save the trained router there (so the next start can load it).
    save_to: Path | None = None


class RouterConfig(_Section):
    """Exactly one of ``path`` (a directory written by ``polyroute train``) or ``train``."""

    path: Path | None = None
    train: TrainConfig | None = None
    #: Featurizer for ``train`` (default minilm); with ``path`` it must match the saved one.
    featurizer: str | None = None
    #: Embedding cache: false (default: none, prompts are not written to disk), true (the default
    #: cache file) or a path.
    embedding_cache: bool | Path = False
    #: Most prompts embedded together when requests arrive at once.
    max_batch: int = Field(32, ge=1, le=1024)
    #: CPU threads for embedding, per worker; `polyroute serve` shares all cores but one among
    #: the workers (at most 4 each) if unset.
    threads: int | None = Field(None, ge=1, le=256)
    #: Decision worker threads, each embedding its own batches; `polyroute serve` uses one per
    #: two cores beyond the first (at least 1, at most 4) if unset. A router that learns online
    #: always gets one.
    workers: int | None = Field(None, ge=1, le=64)
    #: Where decisions run: ``thread`` (worker threads, as above), ``loop`` (on the event loop,
    #: the requests that reached their decision in one loop turn as one batch) or ``auto``:
    #: the loop for a featurizer that runs no model (TF-IDF, static embeddings), threads for a
    #: transformer, whose batch would hold every other request for tens of milliseconds.
    decide_on: Literal["auto", "loop", "thread"] = "auto"

    @model_validator(mode="after")
    def _one_source(self) -> RouterConfig:
        if (self.path is None) == (self.train is None):
            raise ValueError("give exactly one of router.path (a trained router directory) or "
                             "router.train (train one at start-up from a data file)")
        return self


# -- clients, store, server --------------------------------------------------------------------
class KeyConfig(_Section):
    """A client key, stored as the SHA-256 hex digest of the key (``polyroute config new-key``)."""

    id: str
    sha256: str
    #: Dollars this key may spend per ``spend_period``; none = unlimited.
    spend_limit: float | None = Field(None, gt=0)
    spend_period: Literal["total", "day", "month"] = "month"
    #: May call the operator endpoints (``POST /v1/admin/reload-router``).
    admin: bool = False
    #: Labels decision rules can test (signal ``key_tags``), e.g. ``[free-tier, team-ml]``.
    tags: tuple[str, ...] = ()
    #: Shadow mode for this key's routed requests (wins over the profile's).
    shadow: ShadowConfig | None = None
    #: Requests per minute this key may start (a fixed one-minute window; none = unlimited).
    rpm: int | None = Field(None, ge=1)
    #: Tokens (prompt + completion) per minute this key may use (none = unlimited).
    tpm: int | None = Field(None, ge=1)
    #: A key written in the file is rejected with a message saying what to write instead.
    key: Any = Field(None, exclude=True)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return _check_name(v, "key id")

    @field_validator("sha256")
    @classmethod
    def _digest(cls, v: str) -> str:
        v = v.strip().lower().removeprefix("sha256:")
        if not _SHA256.match(v):
            raise ValueError("must be the 64-character SHA-256 hex digest of the key (run "
                             "`polyroute config new-key`), never the key itself")
        return v

    @field_validator("key")
    @classmethod
    def _no_plain_key(cls, v: Any) -> None:
        if v is not None:
            raise ValueError("client keys are stored hashed: write its sha256 digest instead "
                             "(`polyroute config hash-key` prints it)")
        return None


class StoreConfig(_Section):
    """The state store: a SQLite file (WAL mode; the embedded default) or, with ``url``, a
    PostgreSQL database that several gateway replicas share.

    Written as a section (``store: {path: FILE}`` or ``store: {url: postgresql://…}``) or as
    one string: ``store: postgresql://user@host/db`` is a URL, any other string a file path.
    """

    path: Path = Path("polyroute.sqlite")
    #: ``postgresql://user@host[:port]/dbname[?options]`` (libpq's URL form). No password here:
    #: libpq reads it from ``PGPASSWORD`` or ``~/.pgpass``. Set: PostgreSQL is used and ``path``
    #: is ignored.
    url: str | None = None
    #: Keep the routed text of each request (needed by ``polyroute export-feedback``).
    record_prompts: bool = True
    #: PostgreSQL only. Writes that may wait in memory while the database is unreachable;
    #: when that many wait, new requests are refused with 503 (those already admitted still
    #: queue theirs, so nothing acknowledged is dropped).
    queue_limit: int = Field(10_000, ge=1)
    #: PostgreSQL only: read connections (the CLI and start-up reads; writes have their own).
    pool_size: int = Field(4, ge=1, le=100)
    #: PostgreSQL only: seconds to wait for a connection before saying the database is down.
    connect_timeout: float = Field(5.0, gt=0)
    #: PostgreSQL only: seconds a stopping gateway waits for an unreachable database to take
    #: the writes still queued (what remains after it is logged as lost).
    close_timeout: float = Field(10.0, ge=0)
    #: PostgreSQL only: seconds without a heartbeat after which a replica counts as stopped
    #: and the others mark its in-progress requests interrupted (heartbeats every sixth).
    replica_dead_after: float = Field(30.0, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _one_string(cls, data: Any) -> Any:
        return store_section(data) if isinstance(data, str) else data

    @field_validator("url")
    @classmethod
    def _postgresql_url(cls, value: str | None) -> str | None:
        from polyroute.store.opening import is_pg_url

        if value is not None and not is_pg_url(value):
            scheme = value.split("://", 1)[0] if "://" in value else value[:20]
            raise ValueError(f"must be a PostgreSQL URL, postgresql://user@host:5432/dbname "
                             f"(got one starting {scheme!r}); a SQLite store is a file: "
                             f"store: {{path: FILE}}")
        if value is not None:
            parts = urllib.parse.urlsplit(value)
            query = urllib.parse.parse_qs(parts.query)
            if parts.password is not None or "password" in query:
                raise ValueError("holds a password: the config file is no place for it; put it "
                                 "in PGPASSWORD or ~/.pgpass (libpq reads both) and leave it "
                                 "out of the URL")
        return value

    @property
    def location(self) -> str:
        """Where the store is, for messages: the file, or the URL without its password."""
        if self.url is None:
            return str(self.path)
        from polyroute.store.opening import display_url

        return display_url(self.url)


def store_section(value: str) -> dict[str, str]:
    """``store: STRING`` as its section: a ``postgresql://`` URL or a file path; another URL
    scheme is kept as a URL, so that validation names it rather than creating a file."""
    return {"url": value} if "://" in value else {"path": value}


class SharedConfig(_Section):
    """State shared between gateway replicas in Redis (``gateway/shared``): spend reservations and
    tallies, rate-limit windows and circuit-breaker state.

    Written as a URL (``shared: redis://127.0.0.1:6379/0``) or as a mapping with the options
    below. Without it each process keeps these to itself (fine for one replica). A replica that
    cannot reach it at start refuses to start; while serving, requests of limited keys are
    refused (503) until it is back (see docs/gateway.md, "Shared state and replicas").
    """

    url: str
    #: Every key this gateway writes starts with ``<prefix>:``; replicas of one deployment share
    #: it, other deployments on the same Redis use another.
    prefix: str = "polyroute"
    #: Seconds a reservation outlives its replica's last heartbeat; a crashed replica's
    #: reservations are charged in full when this passes (the cost they bounded is unknown).
    reservation_ttl: float = Field(30.0, ge=1)
    #: Seconds each Redis call may take before it counts as Redis being unreachable.
    timeout: float = Field(1.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _from_url(cls, v: Any) -> Any:
        return {"url": v} if isinstance(v, str) else v

    @field_validator("url")
    @classmethod
    def _redis_url(cls, v: str) -> str:
        parsed = urllib.parse.urlsplit(v)
        if parsed.scheme not in ("redis", "rediss", "unix") or not (parsed.netloc or parsed.path):
            raise ValueError(f"must be a Redis URL (redis://host:6379/0, rediss://… or "
                             f"unix:///path/to/redis.sock), got {redact_url(v)!r}")
        if parsed.scheme != "unix" and parsed.path not in ("", "/") and \
                not parsed.path.lstrip("/").isdigit():
            raise ValueError(f"the path of {redact_url(v)!r} must be a database number "
                             f"(redis://host:6379/0)")
        return v

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        return _check_name(v, "shared.prefix")


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe for logs and error messages)."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.password is None:
        return url
    netloc = parsed.netloc.rsplit("@", 1)[1]
    user = parsed.username or ""
    return urllib.parse.urlunsplit(parsed._replace(netloc=f"{user}:***@{netloc}"))


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    #: Larger request bodies are refused with 413.
    max_body_bytes: int = Field(4_000_000, ge=1024)
    #: Without keys the gateway only starts if this is false (e.g. on a private network).
    require_auth: bool = True
    #: ``/metrics`` needs a valid client key whenever keys are configured (the same check and 401
    #: as chat). On by default because metrics reveal backend names, per-model traffic, spend
    #: and balancer state, and a gateway is often reachable beyond the scraper; Prometheus can
    #: send the key (``authorization`` in its scrape config). False keeps ``/metrics`` open, e.g.
    #: on a private network. With no keys configured it is open either way. ``/healthz`` is
    #: always open.
    metrics_auth: bool = True
    #: Seconds in-flight requests get to finish on shutdown.
    shutdown_timeout: float = Field(30.0, ge=0)
    #: Seconds a client has to send a request's headers, from connecting (or from the previous
    #: response on a kept-alive connection); slower connections are closed.
    header_timeout: float = Field(10.0, gt=0)
    #: Seconds a client has to send a request's whole body; slower uploads get 408.
    body_timeout: float = Field(30.0, gt=0)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    access_log: bool = False
    #: The HTTP client library of upstream calls. aiohttp spends a fraction of httpx's CPU per
    #: call (``benchmarks/results/upstream_clients.md``); httpx behaves the same and is kept
    #: selectable.
    upstream_client: Literal["aiohttp", "httpx"] = "aiohttp"


class BreakerConfig(_Section):
    """Circuit breaker: after ``failure_threshold`` failures in a row a backend cools down for
    ``cooldown`` seconds, then one probe request decides; each failed probe doubles the cooldown
    up to ``max_cooldown``."""

    failure_threshold: int = Field(3, ge=1)
    cooldown: float = Field(30.0, gt=0)
    max_cooldown: float = Field(300.0, gt=0)


class CeilingsConfig(_Section):
    """Answer-length ceilings per model, for keys with a spend limit (``gateway/ceilings.py``).

    A limited key's request without ``max_tokens`` reserves, and is capped upstream at, its
    models' ceiling: the ``percentile`` of the last ``window`` recorded answer lengths, or
    ``default_tokens`` until ``min_samples`` answers are recorded. The default is the answer
    length the cost model assumes (``DEFAULT_OUTPUT_TOKENS``); a deployment whose answers are
    known to be longer can start higher (the ceiling grows by itself when answers hit it).
    """

    default_tokens: int = Field(256, ge=16)
    percentile: float = Field(99.0, gt=0, le=100)
    window: int = Field(200, ge=1, le=100_000)
    min_samples: int = Field(20, ge=1)

    @model_validator(mode="after")
    def _learnable(self) -> CeilingsConfig:
        if self.min_samples > self.window:
            raise ValueError(f"ceilings.min_samples ({self.min_samples}) must be <= "
                             f"ceilings.window ({self.window}), or no ceiling is ever learnt")
        return self


class CacheCategoryConfig(_Section):
    """One category's semantic-cache limits: a request hits a cached one of its partition whose
    embedding's cosine similarity is at least ``threshold``; entries live ``ttl_s`` seconds and at
    most ``max_entries`` are kept (least recently used evicted first)."""

    #: From benchmarks/results/cache_thresholds.md (MiniLM; the rule and the curve are there).
    threshold: float = Field(0.89, gt=0, le=1)
    ttl_s: float = Field(3600.0, gt=0)
    max_entries: int = Field(10_000, ge=1)


class CacheConfig(_Section):
    """Exact and semantic caching of answers (``polyroute/cache``, ``gateway/stages/cache.py``).

    Off unless ``enabled``. A cached answer is only given to the client key that paid for it
    unless ``share_across_keys``. A request's category (from the domain signal) picks its limits
    in ``categories``; a request without one, or with a category not listed, uses
    ``default_category``. ``literal_guard`` (on by default) refuses a semantic match whose
    numbers or names differ from the cached prompt's — the near-misses embeddings cannot tell
    apart (see benchmarks/results/cache_thresholds.md).
    """

    enabled: bool = False
    share_across_keys: bool = False
    literal_guard: bool = True
    default_category: str = "default"
    categories: dict[str, CacheCategoryConfig] = Field(
        default_factory=lambda: {"default": CacheCategoryConfig()})
    #: Your own vector index backend: ``{use: "my_module:MyIndex", options: {...}}`` or an entry
    #: point of the group ``polyroute.cache``; built per partition as ``MyIndex(dim, **options)``
    #: with ``add(key, vec)``, ``remove(key)``, ``search(vec, k) -> [(key, similarity)]``,
    #: ``__len__`` and ``__contains__`` (default: ``polyroute.cache.index.VectorIndex``).
    index: PluginSpec | None = None

    @model_validator(mode="after")
    def _default_known(self) -> CacheConfig:
        if self.default_category not in self.categories:
            raise ValueError(f"cache.default_category {self.default_category!r} is not in "
                             f"cache.categories ({', '.join(self.categories) or 'none'}); add "
                             f"it there")
        return self


class TelemetryConfig(_Section):
    """OpenTelemetry traces of each request (``gateway/tracing.py``); off unless an exporter is
    named. The standard ``OTEL_EXPORTER_OTLP_*`` environment variables (headers, certificates)
    apply to the OTLP exporter."""

    #: OTLP/HTTP traces endpoint, e.g. ``http://otel-collector:4318/v1/traces``.
    otlp_endpoint: str | None = None
    #: Also print spans to stdout (debugging).
    console: bool = False
    service_name: str = "polyroute"
    #: Share of requests traced (by trace id).
    sample_ratio: float = Field(1.0, ge=0.0, le=1.0)

    @field_validator("otlp_endpoint")
    @classmethod
    def _endpoint(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^/\s]+", v):
            raise ValueError("must be an http(s) URL such as http://otel-collector:4318/v1/traces")
        return v


#: Where an explicit conversation id may come from (``conversations.id_from``).
ConversationIdSource = Literal["header", "metadata", "user"]


class ConversationsConfig(_Section):
    """Session pinning (``polyroute/conversations``, ``gateway/stages/conversation.py``).

    Off unless ``enabled``. A conversation is named by the first of ``id_from`` the request
    carries — the ``x-polyroute-conversation`` header, ``metadata.conversation_id``, or the
    OpenAI ``user`` field (off by default: it names an end user, who may hold several
    conversations) — else by a hash of its messages before the latest user turn. Its first user
    turn is routed; later turns stay on that model while it is healthy, and a new user turn moves
    only when the router's estimated gain beats the price of the prompt cache it throws away.
    Pins expire after ``idle_s`` seconds without a turn.

    The cache-loss model: a prefix shorter than ``min_cached_tokens`` is never cached (OpenAI
    caches from 1,024 tokens); of a longer one, ``hit_rate`` is read at the backend's
    ``cached_input_price_per_mtok`` on a warm backend; a cold backend reads it all at the input
    price times ``write_multiplier`` (1.25 where writing the cache costs extra, as Anthropic's
    does). ``min_gain`` is a margin (in quality points) a re-route must clear besides; ``lam``
    turns quality into dollars for policies that have no λ of their own (budget, floor).
    """

    enabled: bool = False
    id_from: tuple[ConversationIdSource, ...] = ("header", "metadata")
    idle_s: float = Field(3600.0, gt=0)
    min_cached_tokens: int = Field(1024, ge=0)
    hit_rate: float = Field(1.0, ge=0, le=1)
    write_multiplier: float = Field(1.0, ge=1)
    min_gain: float = Field(0.0, ge=0)
    lam: float = Field(1.0, ge=0)

    @field_validator("lam")
    @classmethod
    def _finite_lam(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v


class GatewayConfig(_Section):
    """The whole ``polyroute serve`` configuration."""

    backends: tuple[BackendConfig, ...] = Field(min_length=1)
    router: RouterConfig
    default_policy: PolicyConfig = PolicyConfig()
    profiles: dict[str, ProfileConfig] = Field(default_factory=dict)
    keys: tuple[KeyConfig, ...] = ()
    store: StoreConfig = StoreConfig()
    server: ServerConfig = ServerConfig()
    breaker: BreakerConfig = BreakerConfig()
    ceilings: CeilingsConfig = CeilingsConfig()
    #: Signals the config defines (keywords, domains by example), for ``rules`` to test.
    signals: SignalsConfig = SignalsConfig()
    #: Decision rules, tried in order; the first whose condition holds acts (``signals/``).
    rules: tuple[RuleConfig, ...] = ()
    #: Named routes: prompts near a route's description or examples go to its models.
    routes: tuple[NamedRouteConfig, ...] = ()
    cache: CacheConfig = CacheConfig()
    #: PII redaction and jailbreak detection on requests (and answers); off unless configured.
    guards: GuardsConfig = GuardsConfig()
    #: Redis shared by replicas (``redis://…``); none = spend, rate limits and breakers are
    #: per-process.
    shared: SharedConfig | None = None
    #: Conversation identity and session pinning; off unless configured.
    conversations: ConversationsConfig = ConversationsConfig()
    telemetry: TelemetryConfig = TelemetryConfig()

    @field_validator("backends")
    @classmethod
    def _expand_efforts(cls, v: tuple[BackendConfig, ...]) -> tuple[BackendConfig, ...]:
        """Each backend's effort levels become backends of their own (``name@level``)."""
        return tuple(e for b in v for e in b.expand_efforts())

    @field_validator("profiles")
    @classmethod
    def _profile_effort_models(cls, v: dict[str, ProfileConfig],
                               info: ValidationInfo) -> dict[str, ProfileConfig]:
        """A profile that lists a backend lists its effort levels too (unless it names levels
        of that backend itself)."""
        backends = info.data.get("backends") or ()
        variants: dict[str, list[str]] = {}
        for b in backends:
            if b.effort_of is not None:
                variants.setdefault(b.effort_of, []).append(b.name)
        if not variants:
            return v
        out = {}
        for name, p in v.items():
            if p.models is not None:
                listed = set(p.models)
                extra = [e for m in p.models for e in variants.get(m, ())
                         if not listed & set(variants.get(m, ()))]
                p = p.model_copy(update={"models": tuple(p.models) + tuple(
                    e for e in extra if e not in listed)})
            out[name] = p
        return out

    @field_validator("profiles")
    @classmethod
    def _profile_names(cls, v: dict[str, ProfileConfig]) -> dict[str, ProfileConfig]:
        for name in v:
            _check_name(name, "profile name")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> GatewayConfig:
        names = [b.name for b in self.backends]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"backends: duplicate backend name(s) {', '.join(dup)}")
        clash = sorted(set(self.profiles) & set(names))
        if clash:
            raise ValueError(f"profiles: {', '.join(clash)} is also a backend name; the client's "
                             f"model field could not tell them apart")
        for pname, profile in self.profiles.items():
            unknown = [m for m in profile.models or () if m not in names]
            if unknown:
                raise ValueError(f"profiles.{pname}.models: unknown backend(s) "
                                 f"{', '.join(unknown)}; configured: {', '.join(names)}")
            if profile.models is not None and not profile.models:
                raise ValueError(f"profiles.{pname}.models: empty list (omit it to allow all)")
            if profile.policy is not None:
                for key, ref in kind_of(profile.policy).backends_named(profile.policy).items():
                    if ref not in names:
                        raise ValueError(f"profiles.{pname}.policy.{key}: unknown backend "
                                         f"{ref!r}; configured: {', '.join(names)}")
        shadows = [(f"profiles.{n}.shadow", p.shadow) for n, p in self.profiles.items()] + \
            [(f"keys.{k.id}.shadow", k.shadow) for k in self.keys]
        for where, shadow in shadows:
            if shadow is None:
                continue
            for field_name in ("serve", "judge"):
                ref = getattr(shadow, field_name)
                if ref is not None and ref not in names:
                    raise ValueError(f"{where}.{field_name}: unknown backend {ref!r}; "
                                     f"configured: {', '.join(names)}")
        for pname, profile in self.profiles.items():
            if profile.shadow is not None and profile.policy is not None and \
                    kind_of(profile.policy).serving != "single":
                raise ValueError(f"profiles.{pname}.shadow: shadow mode compares one routed "
                                 f"answer with the default one; policy kind "
                                 f"{profile.policy.kind} makes several calls")
        ids = [k.id for k in self.keys]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"keys: duplicate key id(s) {', '.join(dup)}")
        digests = [k.sha256 for k in self.keys]
        if len(set(digests)) != len(digests):
            raise ValueError("keys: two keys have the same sha256 digest")
        if self.server.require_auth and not self.keys:
            raise ValueError("keys: no client keys configured; add one (`polyroute config "
                             "new-key`) or set server.require_auth: false")
        if self.breaker.max_cooldown < self.breaker.cooldown:
            raise ValueError("breaker.max_cooldown must be >= breaker.cooldown")
        return self

    @model_validator(mode="after")
    def _rules_name_known_things(self) -> GatewayConfig:
        """Rules and routes may only name signals, backends and profiles that exist."""
        problems = check_rules(self.rules, self.routes, self.signals, self.backend_names,
                               tuple(self.effective_profiles()))
        if problems:  # one error each, at its key, so each is its own line (and counted)
            raise ValidationError.from_exception_data("GatewayConfig", [
                {"type": PydanticCustomError("value_error", "{what}", {"what": what}),
                 "loc": (where,), "input": None} for where, what in problems])
        return self

    # -- derived views ---------------------------------------------------------------------------
    @property
    def backend_names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.backends)

    def backend(self, name: str) -> BackendConfig:
        for b in self.backends:
            if b.name == name:
                return b
        raise KeyError(name)

    def effective_profiles(self) -> dict[str, ProfileConfig]:
        """Profiles with the default policy filled in; ``polyroute-auto`` if none are defined."""
        profiles = dict(self.profiles) or {DEFAULT_PROFILE: ProfileConfig()}
        out = {}
        for name, p in profiles.items():
            if not p.is_set:
                p = p.model_copy(update=self.default_policy.model_dump())
            out[name] = p
        return out


# -- loading -----------------------------------------------------------------------------------
def load_config(path: str | Path, *, env: Mapping[str, str] | None = None,
                overrides: Mapping[str, Any] | None = None) -> GatewayConfig:
    """Read, override and validate a gateway config; relative paths are relative to the file.

    ``env`` defaults to ``os.environ``; ``overrides`` maps dotted keys (``server.port``) to values
    from command-line flags. Raises :class:`ConfigError` listing every bad key and why.
    """
    path = Path(path)
    raw = _read_yaml(path)
    if isinstance(raw.get("store"), str):  # so that overrides of store.path or .url apply
        raw = {**raw, "store": store_section(raw["store"])}
    applied = apply_overrides(raw, env_overrides(os.environ if env is None else env), path)
    applied = apply_overrides(applied, dict(overrides or {}), path)
    return validate_config(applied, source=str(path), base_dir=path.parent)


def validate_config(raw: Mapping[str, Any], *, source: str = "<config>",
                    base_dir: Path | None = None) -> GatewayConfig:
    """Validate an already-parsed config mapping (see :func:`load_config`)."""
    try:
        config = GatewayConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, source)) from None
    return _resolve_paths(config, base_dir) if base_dir is not None else config


def format_errors(exc: ValidationError, source: str) -> str:
    """One line per problem: ``file: dotted.key: why (got value)``."""
    lines = [f"{source}: invalid configuration ({exc.error_count()} problem"
             f"{'s' if exc.error_count() != 1 else ''}):"]
    for err in exc.errors():
        loc = _dotted(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (misspelt, or not supported here)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif err["type"] == "too_short":
            msg = f"must list at least {err.get('ctx', {}).get('min_length', 1)} item(s)"
        got = ""
        if err["type"] not in ("missing", "value_error", "extra_forbidden", "too_short") and \
                not isinstance(err.get("input"), (dict, list)):
            got = f" (got {err.get('input')!r})"
        lines.append(f"  {loc}: {msg}{got}" if loc else f"  {msg}{got}")
    return "\n".join(lines)


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: {where}not valid YAML ({problem})") from None
    if data is None:
        raise ConfigError(f"{path}: the file is empty")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (backends, router, ...) at the "
                          f"top level")
    return data


def env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """``POLYROUTE__A__B=v`` → ``{"a.b": v}`` with ``v`` read as a YAML scalar."""
    out: dict[str, Any] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX:
            continue
        dotted = ".".join(p.lower() for p in name[len(ENV_PREFIX):].split("__"))
        try:
            out[dotted] = yaml.safe_load(value) if value.strip() else value
        except yaml.YAMLError:
            out[dotted] = value
    return out


def apply_overrides(raw: Mapping[str, Any], overrides: Mapping[str, Any],
                    source: Path | str = "<config>") -> dict[str, Any]:
    """A copy of ``raw`` with each dotted key in ``overrides`` set (creating sections)."""
    import copy

    data: dict[str, Any] = copy.deepcopy(dict(raw))
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        node: Any = data
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(f"{source}: override {dotted!r}: {part!r} is not an index "
                                      f"of a list with {len(node)} item(s)")
                if last:
                    node[int(part)] = value
                else:
                    node = node[int(part)]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, {})
            else:
                raise ConfigError(f"{source}: override {dotted!r}: "
                                  f"{'.'.join(parts[:i])!r} is not a section")
    return data


def _resolve_paths(config: GatewayConfig, base: Path) -> GatewayConfig:
    def rel(p: Path | None) -> Path | None:
        return None if p is None or p.is_absolute() else base / p

    router = config.router
    updates: dict[str, Any] = {}
    if router.path is not None:
        updates["path"] = rel(router.path) or router.path
    if isinstance(router.embedding_cache, Path):
        updates["embedding_cache"] = rel(router.embedding_cache) or router.embedding_cache
    if router.train is not None:
        t = router.train
        updates["train"] = t.model_copy(update={
            "data": rel(t.data) or t.data,
            "models": rel(t.models) or t.models,
            "save_to": rel(t.save_to) or t.save_to,
        })
    store_path = config.store.path
    store_path = store_path if store_path.is_absolute() else base / store_path
    return config.model_copy(update={
        "router": router.model_copy(update=updates),
        "store": config.store.model_copy(update={"path": store_path}),
    })


def backend_api_keys(config: GatewayConfig, env: Mapping[str, str] | None = None
                     ) -> dict[str, str | None]:
    """Each backend's API key read from the environment variable it names.

    Raises :class:`ConfigError` naming the backend if a named variable is unset or empty.
    """
    env = os.environ if env is None else env
    keys: dict[str, str | None] = {}
    missing = []
    for i, b in enumerate(config.backends):
        if b.api_key_env is None:
            keys[b.name] = None
            continue
        value = env.get(b.api_key_env, "")
        if not value:
            missing.append(f"  backends[{i}].api_key_env: environment variable "
                           f"{b.api_key_env} (the key for backend {b.name!r}) is not set")
        keys[b.name] = value or None
    if missing:
        raise ConfigError("missing backend API keys:\n" + "\n".join(missing))
    return keys
