"""Jailbreak and prompt-injection detection: a linear classifier on the router's embedding, plus
phrase rules.

Why a linear model on the embedding the router already has: the request path must stay cheap
(signals under 1 ms) and never run the encoder twice. A dot product with 384 weights costs
microseconds; a fine-tuned transformer classifier (DeBERTa and the like) costs a second encoder
pass of tens of milliseconds on CPU. The price is accuracy on attacks that look like ordinary
requests, which the phrase rules partly cover; ``benchmarks/results/guards.md`` measures both.

The model is stored as JSON (metadata, threshold, the featurizer it was trained on) plus an
``.npz`` of its weights, never a pickle, and ships inside the package
(``_data/jailbreak_model.*``); ``python -m polyroute.guards.train_jailbreak`` rebuilds it from
``_data/jailbreak.jsonl.gz`` and the bundled prompts.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from polyroute.errors import ConfigError
from polyroute.guards.base import Span, Verdict

MODEL_JSON = "jailbreak_model.json"
MODEL_NPZ = "jailbreak_model.npz"


# -- phrase rules -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """A phrase rule. Patterns are written in lower case and run on the text with ASCII letters
    lowered (same length, so offsets hold), which is about twice as fast as ``re.IGNORECASE``;
    ``cased`` rules run on the original text instead."""

    name: str
    pattern: re.Pattern[str]
    weight: float = 1.0
    cased: bool = False


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


_OBJ = (r"(?:instructions?|prompts?|rules|directions|directives|guidelines|guidance|"
        r"constraints|programming|training|polic(?:y|ies))")

#: Phrase rules. Each is bounded (no nested unbounded repeats), so the scan is linear in the text.
#: Weight 1.0 decides on its own; 0.5 is evidence (shown in the spans, below any threshold the
#: model ships with): phrases that benign role-play prompts use too.
RULES: tuple[Rule, ...] = (
    Rule("ignore_instructions", _rx(
        r"\b(?:ignore|disregard|forget|override|bypass)\b[^.\n]{0,40}?"
        r"\b(?:previous|prior|above|earlier|preceding|former|initial|all|your|system)\b"
        r"[^.\n]{0,30}?\b" + _OBJ + r"\b")),
    Rule("reveal_system_prompt", _rx(
        r"\b(?:reveal|print|show|repeat|output|display|leak|give me|tell me|what (?:is|are|were)"
        r"|list|spell out|recite)\b[^.\n]{0,40}?\b(?:(?:your|the) (?:system|initial|original|"
        r"hidden|secret|full) (?:prompt|instructions?|message)|system prompt|your (?:instructions|"
        r"rules|prompt|guidelines)|(?:initial|original|hidden) instructions)\b")),
    Rule("do_anything_now", _rx(r"\bdo anything now\b|\bjailbr(?:eak|oken)\b|\bdeveloper mode\b|"
                                r"\bdev mode\b")),
    # The persona's name in capitals, as the templates write it ("Dan 3 hours" is a person).
    Rule("dan_persona", re.compile(r"\bDAN(?: mode| prompt|:|\s+\d|\)|\])"), cased=True),
    Rule("no_restrictions", _rx(
        r"\b(?:no|without|free (?:of|from)|not bound by|beyond|ignor(?:e|ing)|don'?t (?:care|"
        r"have)(?: about)?|broke(?:n)? free of|exempt from)\b[^.\n]{0,25}?\b(?:any |all |the "
        r"|typical |usual )?(?:ethical|moral|legal|content|safety|openai|censorship|ai)?\s?"
        r"(?:restrictions|guidelines|limitations|censorship|boundaries|"
        r"ethics|morals|constraints|policies|polic(?:y) restrictions)\b"
        # a photo "with no filters" is not a model without them
        r"|\b(?:no|without|bypass(?:ing)?|disabled?)\s+(?:any\s+|all\s+)?(?:content|safety|"
        r"nsfw|moral|ethical|openai)\s+filter(?:s|ing)?\b")),
    Rule("unfiltered_persona", _rx(
        r"\b(?:unfiltered|uncensored|amoral|unrestricted|unethical|unbound|unlimited|evil)\s+"
        r"(?:and\s+\w+\s+)?(?:ai|assistant|chat ?bot|model|language model|version|persona|"
        r"character|entity|responses?)\b")),
    Rule("never_refuse", _rx(
        r"\bnever (?:refuse|reject|decline)s?\b|\bwill never (?:refuse|say no)\b|"
        r"\b(?:can ?not|cannot|can't|must not|mustn't) (?:refuse|decline)\b")),
    Rule("stay_in_character", _rx(
        r"\b(?:stay|remain|keep) in character\b|\bbreak(?:ing)? character\b"), weight=0.5),
    Rule("new_instructions", _rx(
        r"\b(?:new|updated|real|actual|true) (?:instructions|task|rules|directive)s?\s*(?::|are|"
        r"follow)|\bfrom now on,? you (?:are|will|must|shall)\b|\byou are now (?:in|a|an|my|"
        r"going)\b")),
    Rule("encoded_payload", re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{60,}={0,2}"
                                       r"(?![A-Za-z0-9+/=])"), weight=0.5, cased=True),
)


def _printable_share(data: bytes) -> float:
    if not data:
        return 0.0
    return sum(32 <= b < 127 or b in (9, 10, 13) for b in data) / len(data)


def _is_encoded_text(blob: str) -> bool:
    """A long base64 run that decodes to mostly printable ASCII: hidden instructions, not a
    hash or an image (those decode to binary)."""
    try:
        decoded = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return _printable_share(decoded) > 0.9


def rule_hits(text: str) -> list[Span]:
    """Spans of every rule that fires (type ``jailbreak.<rule>``; score = the rule's weight)."""
    hits: list[Span] = []
    lowered = text.translate(_ASCII_LOWER)
    for rule in RULES:
        for m in rule.pattern.finditer(text if rule.cased else lowered):
            if rule.name == "encoded_payload" and not _is_encoded_text(m.group(0)):
                continue
            hits.append(Span(m.start(), m.end(), f"jailbreak.{rule.name}", rule.weight))
    hits.sort(key=lambda s: s.start)
    return hits


# -- the classifier -----------------------------------------------------------------------------
@dataclass(frozen=True)
class JailbreakModel:
    """Logistic regression on unit-norm sentence embeddings: p = σ(w·x + b)."""

    coef: np.ndarray
    intercept: float
    threshold: float
    featurizer_id: str
    meta: dict = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.coef.shape[0])

    def score(self, embeddings: np.ndarray) -> np.ndarray:
        """Probabilities for a batch (``n × dim``) or one vector (``dim``)."""
        x = np.asarray(embeddings, dtype=np.float32)
        if x.shape[-1] != self.dim:
            raise ValueError(f"embedding has {x.shape[-1]} dimensions; the jailbreak model was "
                             f"trained on {self.dim} ({self.featurizer_id})")
        z = x @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0)))

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(directory / MODEL_NPZ, coef=self.coef.astype(np.float32))
        doc = {"format": 1, "kind": "logistic-regression", "intercept": self.intercept,
               "threshold": self.threshold, "featurizer_id": self.featurizer_id,
               "dim": self.dim, **self.meta}
        (directory / MODEL_JSON).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n",
                                            encoding="utf-8")

    @classmethod
    def load(cls, directory: Path | None = None) -> JailbreakModel:
        """The model in ``directory`` (default: the one shipped in the package)."""
        root = Path(str(resources.files("polyroute.guards") / "_data")) if directory is None \
            else Path(directory)
        try:
            doc = json.loads((root / MODEL_JSON).read_text(encoding="utf-8"))
            with np.load(root / MODEL_NPZ, allow_pickle=False) as npz:
                coef = np.asarray(npz["coef"], dtype=np.float32)
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"{root}: cannot load the jailbreak model ({exc}); expected "
                              f"{MODEL_JSON} and {MODEL_NPZ}") from None
        if doc.get("format") != 1 or coef.shape != (doc.get("dim"),):
            raise ConfigError(f"{root}/{MODEL_JSON}: not a format-1 jailbreak model of "
                              f"dimension {coef.shape}")
        meta = {k: v for k, v in doc.items() if k not in
                ("format", "kind", "intercept", "threshold", "featurizer_id", "dim")}
        return cls(coef, float(doc["intercept"]), float(doc["threshold"]),
                   str(doc["featurizer_id"]), meta)


def _tokenizable(text: str) -> str:
    """Tokenisers reject lone surrogates (which JSON escapes can carry); each becomes U+FFFD,
    so hostile input is judged instead of crashing the encoder."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in text)
    return text


class JailbreakGuard:
    """Scores a text as a jailbreak / prompt injection and maps the score to an action.

    ``scores``: ``jailbreak.classifier`` (probability, when an embedding is available),
    ``jailbreak.rules`` (the strongest rule weight, 0 if none fired) and ``jailbreak`` (the
    larger of the two), compared with ``threshold``.

    ``featurizer`` is only for callers that have no embedding of their own (the CLI, the
    benchmark); the gateway passes the router's embedding and no featurizer, so the encoder runs
    once per request.
    """

    name = "jailbreak"

    def __init__(self, model: JailbreakModel | None = None, *, threshold: float | None = None,
                 action: str = "block", heuristics: bool = True, featurizer=None) -> None:
        if action not in ("block", "restrict", "flag"):
            raise ValueError(f"jailbreak action must be block, restrict or flag, not {action!r}")
        self.model = model if model is not None else JailbreakModel.load()
        self.threshold = self.model.threshold if threshold is None else float(threshold)
        self.action = action
        self.heuristics = heuristics
        self.featurizer = featurizer
        if featurizer is not None and featurizer.id != self.model.featurizer_id:
            raise ConfigError(f"the jailbreak model was trained on {self.model.featurizer_id} "
                              f"embeddings, not {featurizer.id}")

    def check(self, text: str, embedding: np.ndarray | None = None) -> Verdict:
        if embedding is None and self.featurizer is not None:
            embedding = self.featurizer.encode([_tokenizable(text)])[0]
        return self.judge(text, None if embedding is None else float(self.model.score(embedding)))

    def check_many(self, texts: Sequence[str],
                   embeddings: np.ndarray | None = None) -> list[Verdict]:
        """Batch form: one encoder call (if any) and one matrix product for all texts."""
        if embeddings is None and self.featurizer is not None:
            embeddings = self.featurizer.encode([_tokenizable(t) for t in texts])
        probs = [None] * len(texts) if embeddings is None else self.model.score(embeddings)
        return [self.judge(t, None if p is None else float(p))
                for t, p in zip(texts, probs, strict=True)]

    def judge(self, text: str, probability: float | None) -> Verdict:
        """The verdict given the classifier's probability (``None``: no embedding)."""
        spans = tuple(rule_hits(text)) if self.heuristics else ()
        rules = max((s.score for s in spans), default=0.0)
        scores: dict[str, float] = {"jailbreak.rules": rules}
        if probability is not None:
            scores["jailbreak.classifier"] = round(probability, 6)
        score = max(rules, probability or 0.0)
        scores["jailbreak"] = round(score, 6)
        if score < self.threshold:
            note = "" if probability is not None else "no embedding: rules only"
            return Verdict("allow", scores, spans, note)
        why = []
        if probability is not None and probability >= self.threshold:
            why.append(f"classifier {probability:.2f} >= {self.threshold:.2f}")
        fired = sorted({s.type.split(".", 1)[1] for s in spans if s.score >= self.threshold})
        if fired:
            why.append("rules: " + ", ".join(fired))
        return Verdict(self.action, scores, spans,  # type: ignore[arg-type]
                       "jailbreak suspected (" + "; ".join(why) + ")")
