"""``guards:`` — the guards' part of the configuration, one pydantic tree like the gateway's.

The gateway config will include this model as its ``guards:`` key; ``polyroute guard`` reads the
same section from either a full gateway YAML or a file holding only ``guards:``. A section that is
present is enabled unless it says ``enabled: false``; an absent section is off, so adding
``guards:`` to a gateway config changes nothing until a guard is named::

    guards:
      pii:
        types: [EMAIL, PHONE, CREDIT_CARD, IBAN, API_KEY]   # default: every type
        action: redact          # redact | flag | block
        restore_in_answer: true
      jailbreak:
        threshold: 0.5          # default: the threshold stored with the model
        action: restrict        # flag (default) | restrict | block
        safe_models: [llama-3.1-8b-instruct]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from polyroute.errors import ConfigError
from polyroute.guards.pii import PII_TYPES
from polyroute.plugins import PluginSpec


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PiiConfig(_Section):
    """Detect PII and secrets in requests (and optionally in answers)."""

    enabled: bool = True
    #: Types to detect; ``None`` = all of :data:`polyroute.guards.pii.PII_TYPES`.
    types: tuple[str, ...] | None = None
    action: Literal["redact", "flag", "block"] = "redact"
    #: Put the original values back where the answer repeats a placeholder.
    restore_in_answer: bool = True
    #: Also scan answers on the way out (redacting PII the model produced).
    check_answers: bool = False

    @field_validator("types")
    @classmethod
    def _known_types(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("must list at least one type, or be left out for all types")
        unknown = [t for t in v if t not in PII_TYPES]
        if unknown:
            raise ValueError(f"unknown PII type(s) {unknown}; known: {', '.join(PII_TYPES)}")
        return tuple(dict.fromkeys(v))


class JailbreakConfig(_Section):
    """Detect jailbreaks and prompt injections: a linear classifier on the router's embedding
    plus phrase rules."""

    enabled: bool = True
    #: Score at or above which the action applies; ``None`` = the model's own threshold.
    threshold: float | None = Field(default=None, gt=0.0, lt=1.0)
    #: Default ``flag``: on chat-style role-play prompts ("I want you to act as …") the
    #: classifier's false-positive rate is far above its rate on task prompts (see
    #: ``benchmarks/results/guards.md``), so blocking is a choice to make knowingly.
    action: Literal["block", "restrict", "flag"] = "flag"
    #: With ``action: restrict``, the models a suspect request may still be served by.
    safe_models: tuple[str, ...] = ()
    #: Phrase rules ("ignore previous instructions", DAN templates, encoded payloads).
    heuristics: bool = True
    #: Directory of another trained model (``jailbreak_model.json`` + ``.npz``); default: bundled.
    model: Path | None = None

    @model_validator(mode="after")
    def _safe_set(self) -> JailbreakConfig:
        if self.action == "restrict" and not self.safe_models:
            raise ValueError("action 'restrict' needs safe_models: the models suspect requests "
                             "may still go to")
        return self


class GuardsConfig(_Section):
    pii: PiiConfig = PiiConfig(enabled=False)
    jailbreak: JailbreakConfig = JailbreakConfig(enabled=False)
    #: Your own guards: ``[{use: "my_module:MyGuard", options: {...}}]`` or an entry point of
    #: the group ``polyroute.guards``; each judges the routing text (and its embedding).
    plugins: tuple[PluginSpec, ...] = ()


_GUARD_KEYS = set(GuardsConfig.model_fields)


class _File(_Section):
    """Validates ``guards:`` under its own key, so errors read ``guards.pii.types: ...`` as in
    the gateway config."""

    guards: GuardsConfig


def guards_section(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """The ``guards:`` mapping of a full gateway config, or of a guards-only file (which may
    also list ``pii:`` / ``jailbreak:`` at the top level)."""
    if "guards" in raw:
        section = raw["guards"]
        if section is None:
            return {}
        if not isinstance(section, dict):
            raise ConfigError(f"{source}: guards: must be a mapping with pii: and/or jailbreak:")
        return section
    if raw and set(raw) <= _GUARD_KEYS:
        return raw
    raise ConfigError(f"{source}: no guards: section (expected guards: with pii: and/or "
                      f"jailbreak:)")


def validate_guards(raw: dict[str, Any], *, source: str = "<config>",
                    base_dir: Path | None = None) -> GuardsConfig:
    from polyroute.config import format_errors

    try:
        config = _File.model_validate({"guards": raw}).guards
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, source)) from None
    model = config.jailbreak.model
    if base_dir is not None and model is not None and not model.is_absolute():
        config = config.model_copy(update={"jailbreak": config.jailbreak.model_copy(
            update={"model": base_dir / model})})
    return config


def load_guards_config(path: str | Path) -> GuardsConfig:
    """Read ``guards:`` from a gateway or guards-only YAML file; paths relative to the file."""
    from polyroute.config import _read_yaml

    path = Path(path)
    return validate_guards(guards_section(_read_yaml(path), str(path)), source=str(path),
                           base_dir=path.parent)
