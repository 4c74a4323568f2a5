"""The signals a rule may name: the built-ins, those the config defines, and their registry.

Built-in signals (computed from the request alone unless marked *analysis*):

==========================  ======  ==========================================================
``text``                    string  the routing text (the user's latest turns)
``language``                string  ISO 639-1 guess (``signals/text.py``), unknown if no letters
``prompt_tokens``           number  tokens of the routing text (chars / 4)
``context_tokens``          number  tokens of every message and tool definition
``messages``                number  messages in the chat
``has_images``              bool    a message carries an image part
``has_tools``               bool    tools (or functions) are offered
``json_mode``               bool    ``response_format`` asks for JSON
``stream``                  bool    the client asked for a stream
``key``                     string  the client key's id
``key_tags``                set     the client key's ``tags``
``metadata.<field>``        string  the body's ``metadata.<field>``, else header
                                    ``x-polyroute-meta-<field>``
``keyword.<name>``          bool    the config's ``signals.keywords.<name>`` matched
``domain``                  string  *analysis*: the nearest of ``signals.domains`` above its
                                    threshold
``domain.<name>``           number  *analysis*: similarity to that domain's nearest example
``router.best_quality``     number  *analysis*: highest estimated quality of a servable model
``router.spread``           number  *analysis*: highest minus lowest estimated quality
``router.best_model``       string  *analysis*: the model with the highest estimated quality
``router.uncertainty``      number  *analysis*: the router's uncertainty about that model
==========================  ======  ==========================================================
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from polyroute.data.outcomes import input_tokens
from polyroute.plugins import SIGNALS_GROUP, instantiate, resolve
from polyroute.signals import text as _text
from polyroute.signals.base import (
    ANALYSIS,
    BOOL,
    NUMBER,
    REQUEST,
    SET,
    STRING,
    Signal,
    SignalInputs,
)
from polyroute.signals.config import KeywordConfig, SignalsConfig
from polyroute.signals.semantic import Embed, ExampleIndex

#: Prefix of the metadata family: any field name may follow it.
METADATA = "metadata."
#: Header carrying a metadata field when the body has none (``x-polyroute-meta-team: ml``).
METADATA_HEADER = "x-polyroute-meta-"


@dataclass(frozen=True)
class FunctionSignal:
    """A built-in signal that is one function of the inputs."""

    name: str
    kind: str
    fn: Any
    needs: str = REQUEST

    def compute(self, inputs: SignalInputs) -> Any:
        return self.fn(inputs)


def _messages(inputs: SignalInputs) -> int:
    messages = inputs.body.get("messages")
    return len(messages) if isinstance(messages, list) else 0


def _best(inputs: SignalInputs) -> int | None:
    est = inputs.estimates
    if est is None or not est.models:
        return None
    return int(np.argmax(est.quality[0]))


def _best_quality(inputs: SignalInputs) -> float | None:
    j = _best(inputs)
    return None if j is None else float(inputs.estimates.quality[0, j])  # type: ignore[union-attr]


def _spread(inputs: SignalInputs) -> float | None:
    est = inputs.estimates
    if est is None or not est.models:
        return None
    return float(est.quality[0].max() - est.quality[0].min())


def _best_model(inputs: SignalInputs) -> str | None:
    j = _best(inputs)
    return None if j is None else inputs.estimates.models[j]  # type: ignore[union-attr]


def _uncertainty(inputs: SignalInputs) -> float | None:
    j = _best(inputs)
    est = inputs.estimates
    if j is None or est is None or est.uncertainty is None:
        return None
    return float(est.uncertainty[0, j])


BUILTINS: tuple[FunctionSignal, ...] = (
    FunctionSignal("text", STRING, lambda i: i.text),
    FunctionSignal("language", STRING, lambda i: _text.language(i.text)),
    FunctionSignal("prompt_tokens", NUMBER, lambda i: input_tokens(i.text)),
    FunctionSignal("context_tokens", NUMBER, lambda i: _text.context_tokens(i.body)),
    FunctionSignal("messages", NUMBER, _messages),
    FunctionSignal("has_images", BOOL, lambda i: _text.has_images(i.body)),
    FunctionSignal("has_tools", BOOL, lambda i: _text.has_tools(i.body)),
    FunctionSignal("json_mode", BOOL, lambda i: _text.json_mode(i.body)),
    FunctionSignal("stream", BOOL, lambda i: bool(i.body.get("stream"))),
    FunctionSignal("key", STRING, lambda i: i.key_id),
    FunctionSignal("key_tags", SET, lambda i: i.key_tags),
    FunctionSignal("router.best_quality", NUMBER, _best_quality, ANALYSIS),
    FunctionSignal("router.spread", NUMBER, _spread, ANALYSIS),
    FunctionSignal("router.best_model", STRING, _best_model, ANALYSIS),
    FunctionSignal("router.uncertainty", NUMBER, _uncertainty, ANALYSIS),
)


@dataclass(frozen=True)
class MetadataSignal:
    """``metadata.<field>``: the body's OpenAI ``metadata`` field, else a header."""

    field: str
    kind: str = STRING
    needs: str = REQUEST

    @property
    def name(self) -> str:
        return METADATA + self.field

    def compute(self, inputs: SignalInputs) -> str | None:
        meta = inputs.body.get("metadata")
        if isinstance(meta, Mapping):
            value = meta.get(self.field)
            if value is not None:
                return value if isinstance(value, str) else str(value)
        return inputs.headers.get(METADATA_HEADER + self.field.lower())


class KeywordSignal:
    """``keyword.<name>``: whole words/phrases or regular expressions, one compiled pattern."""

    kind, needs = BOOL, REQUEST

    def __init__(self, name: str, config: KeywordConfig) -> None:
        self.name = f"keyword.{name}"
        alternatives = [rf"(?<!\w){re.escape(w)}(?!\w)" for w in config.words]
        alternatives += [f"(?:{p})" for p in config.patterns]
        self._pattern = re.compile("|".join(alternatives),
                                   0 if config.case_sensitive else re.IGNORECASE)

    def compute(self, inputs: SignalInputs) -> bool:
        return self._pattern.search(inputs.text) is not None


class DomainSignal:
    """``domain`` (the nearest domain above its threshold) or ``domain.<name>`` (similarity);
    every domain's similarity is computed once per request and shared."""

    needs = ANALYSIS

    def __init__(self, index: ExampleIndex, thresholds: Mapping[str, float],
                 label: str | None = None) -> None:
        self.index, self.thresholds, self.label = index, thresholds, label
        self.name = "domain" if label is None else f"domain.{label}"
        self.kind = STRING if label is None else NUMBER

    def compute(self, inputs: SignalInputs) -> str | float | None:
        if "domain" not in inputs.shared:
            assert inputs.embedding is not None
            inputs.shared["domain"] = self.index.nearest(inputs.embedding, self.thresholds)
        nearest, sims = inputs.shared["domain"]
        return nearest if self.label is None else sims[self.label]


def catalog(config: SignalsConfig) -> dict[str, tuple[str, str]]:
    """Every signal name a rule may use with this config → (kind, needs); the metadata
    family is open (any ``metadata.<field>``) and not listed."""
    out = {s.name: (s.kind, s.needs) for s in BUILTINS}
    out.update({f"keyword.{n}": (BOOL, REQUEST) for n in config.keywords})
    if config.domains:
        out["domain"] = (STRING, ANALYSIS)
        out.update({f"domain.{n}": (NUMBER, ANALYSIS) for n in config.domains})
    for spec in config.plugins:  # a plugin's class declares its name, kind and needs
        cls = resolve(spec.use, SIGNALS_GROUP)
        out[str(getattr(cls, "name", spec.use))] = (str(getattr(cls, "kind", STRING)),
                                                    str(getattr(cls, "needs", REQUEST)))
    return out


def _family(name: str) -> bool:
    return name.startswith(METADATA) and len(name) > len(METADATA)


def kind_of_name(name: str, known: Mapping[str, tuple[str, str]]) -> str | None:
    """The kind of the signal called ``name``, or None if there is none."""
    if name in known:
        return known[name][0]
    return STRING if _family(name) else None


def needs_of_name(name: str, known: Mapping[str, tuple[str, str]]) -> str:
    return known[name][1] if name in known else REQUEST


class SignalSet(Mapping[str, Signal]):
    """The signals of one running gateway by name (``metadata.<field>`` made on first use).

    Built with the router's featurizer (``embed``) when domains are configured: their examples
    are embedded once, here, in the space the router's embedding of each request lives in.
    """

    def __init__(self, config: SignalsConfig, embed: Embed | None = None) -> None:
        signals: dict[str, Signal] = {s.name: s for s in BUILTINS}
        for name, kw in config.keywords.items():
            signals[f"keyword.{name}"] = KeywordSignal(name, kw)
        if config.domains:
            if embed is None:
                raise ValueError("domains need the router's featurizer to embed their examples")
            index = ExampleIndex({n: d.examples for n, d in config.domains.items()}, embed)
            thresholds = {n: d.threshold for n, d in config.domains.items()}
            signals["domain"] = DomainSignal(index, thresholds)
            for n in config.domains:
                signals[f"domain.{n}"] = DomainSignal(index, thresholds, n)
        for spec in config.plugins:
            plugin = instantiate(spec, SIGNALS_GROUP, ("name", "kind", "needs", "compute"))
            signals[plugin.name] = plugin
        self._signals = signals

    def __getitem__(self, name: str) -> Signal:
        signal = self._signals.get(name)
        if signal is None:
            if not _family(name):
                raise KeyError(name)
            signal = self._signals[name] = MetadataSignal(name[len(METADATA):])
        return signal

    def __iter__(self) -> Iterator[str]:
        return iter(self._signals)

    def __len__(self) -> int:
        return len(self._signals)
