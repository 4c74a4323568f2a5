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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

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


class BackendConfig(_Section):
    """One OpenAI-compatible upstream. ``name`` is the model name the router knows (its column in
    the outcomes); ``model`` is the id sent upstream (defaults to ``name``)."""

    name: str
    base_url: str
    model: str | None = None
    api_key_env: str | None = None
    input_price_per_mtok: float = Field(ge=0)
    output_price_per_mtok: float = Field(ge=0)
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

    @model_validator(mode="after")
    def _like_other(self) -> BackendConfig:
        if self.like is not None and self.like == self.name:
            raise ValueError(f"like: a backend cannot borrow its own estimates ({self.name!r})")
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


class ProfileConfig(PolicyConfig):
    """A named routing setting clients select with the ``model`` field (e.g. polyroute-cheap).

    Without lam/budget/floor/policy it uses ``default_policy``; ``models`` optionally restricts
    the candidates to some backends. ``policy`` selects a multi-call or balanced policy
    (``{kind: cascade | topk | tradeoff, ...}``) instead of the single-knob lam/budget/floor."""

    description: str = ""
    models: tuple[str, ...] | None = None
    policy: PolicySpec | None = None

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
    """The state store: a SQLite file (WAL mode)."""

    path: Path = Path("polyroute.sqlite")
    #: Keep the routed text of each request (needed by ``polyroute export-feedback``).
    record_prompts: bool = True


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
