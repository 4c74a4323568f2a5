"""What the gateway's guard stages call: one object built from ``guards:`` at start-up, one call
per request on the way in, one per answer on the way out.

Why a layer above the guards: a request is several texts (system prompt, turns) whose PII must
share placeholders, the jailbreak score belongs to the routing text whose embedding the router
already computed, and the answer needs the request's placeholder map to be restored. Keeping that
bookkeeping here leaves the stages a few lines each::

    guards = RequestGuards.from_config(config.guards)          # start-up
    guards.require_featurizer(router_featurizer_id)            # refuses a mismatched embedding
    outcome = guards.check_request(texts, routing_text, embedding)   # input-guards stage
    if outcome.action == "block": end the request (outcome.verdict.reason)
    if outcome.action == "restrict": serve only outcome.safe_models
    forward outcome.texts; record outcome.record()
    answer = guards.check_answer(answer, outcome).text          # output-guards stage
    # streams: restorer = guards.stream_restorer(outcome); restorer.feed(chunk) ... flush()
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from polyroute.errors import ConfigError
from polyroute.features.base import Featurizer
from polyroute.guards.base import Guard, Verdict, combine
from polyroute.guards.config import GuardsConfig
from polyroute.guards.jailbreak import JailbreakGuard, JailbreakModel
from polyroute.guards.pii import PiiGuard, Redactor, restore
from polyroute.plugins import GUARDS_GROUP, instantiate

#: Longest placeholder a stream restorer holds back while waiting for its closing ``>``.
_MAX_PLACEHOLDER = 40
#: Featurizers a jailbreak classifier may have been trained on that the gateway can build
#: itself when the router uses another: name → the start of its id. Matched on the built
#: featurizer's id, built only when the start matches (an ONNX id means exporting the model).
_CLASSIFIER_FEATURIZERS = {"minilm": "st:", "minilm-layers": "st:", "minilm-onnx-int8": "onnx:"}


@dataclass(frozen=True)
class RequestOutcome:
    """The input guards' verdict on one request and what to forward."""

    verdict: Verdict
    #: The request's texts to forward, in order (redacted where PII redaction applies).
    texts: tuple[str, ...]
    #: Placeholder → original value, shared by all texts of the request.
    placeholders: dict[str, str] = field(default_factory=dict)
    #: With action ``restrict``: the only models that may serve the request.
    safe_models: tuple[str, ...] = ()

    @property
    def action(self) -> str:
        return self.verdict.action

    def record(self) -> dict:
        """What the request record keeps: action, scores, reason and the span *types and
        offsets* — never the PII values or the placeholder map."""
        v = self.verdict
        return {"action": v.action, "scores": dict(v.scores), "reason": v.reason,
                "spans": [s.to_dict() for s in v.spans]}


@dataclass(frozen=True)
class AnswerOutcome:
    text: str
    verdict: Verdict


class RequestGuards:
    """The configured guards, ready for requests (immutable, shareable across threads)."""

    def __init__(self, config: GuardsConfig, *, jailbreak_model: JailbreakModel | None = None,
                 featurizer=None) -> None:
        """``featurizer`` only for callers without the router's embeddings (CLI, benchmark)."""
        self.config = config
        self.pii = PiiGuard(types=config.pii.types, action=config.pii.action) \
            if config.pii.enabled else None
        jb = config.jailbreak
        self.jailbreak = None
        if jb.enabled:
            model = jailbreak_model or JailbreakModel.load(jb.model)
            self.jailbreak = JailbreakGuard(model, threshold=jb.threshold, action=jb.action,
                                            heuristics=jb.heuristics, featurizer=featurizer)
        self.plugins: tuple[Guard, ...] = tuple(
            instantiate(spec, GUARDS_GROUP, ("check",)) for spec in config.plugins)

    @classmethod
    def from_config(cls, config: GuardsConfig) -> RequestGuards:
        return cls(config)

    @property
    def guards(self) -> list[Guard]:
        """The enabled guards, PII first, the plugins last."""
        return [g for g in (self.pii, self.jailbreak) if g is not None] + list(self.plugins)

    @property
    def featurizer_id(self) -> str | None:
        """The embedding the jailbreak classifier needs (``None`` if it needs none)."""
        return self.jailbreak.model.featurizer_id if self.jailbreak is not None else None

    def require_featurizer(self, featurizer_id: str | None) -> None:
        """Refuse at start-up a router whose embeddings the classifier cannot read and whose
        own encoder cannot be built here (see :meth:`own_featurizer`)."""
        self.own_featurizer(featurizer_id)

    def own_featurizer(self, router_featurizer_id: str | None) -> Featurizer | None:
        """The encoder the classifier needs when the router's embeddings are in another space
        (None when they can be shared, or no classifier is enabled).

        Sharing the router's embedding costs nothing; a router on another featurizer (TF-IDF,
        static embeddings: the fast ones) makes the gateway embed each request a second time
        for the classifier, which is slower but keeps the guard working. A classifier whose
        featurizer no name here builds is refused at start-up, with how to train one."""
        needed = self.featurizer_id
        if needed is None or router_featurizer_id == needed:
            return None
        from polyroute.features import make_featurizer

        for spec, family in _CLASSIFIER_FEATURIZERS.items():
            if not needed.startswith(family):
                continue
            featurizer = make_featurizer(spec)
            if featurizer.id == needed:
                return featurizer
        raise ConfigError(f"guards.jailbreak: the classifier reads {needed} embeddings but "
                          f"the router produces {router_featurizer_id or 'none'}; train one on "
                          f"the router's (python -m polyroute.guards.train_jailbreak "
                          f"--featurizer NAME --out DIR) and set guards.jailbreak.model")

    def check_request(self, texts: Sequence[str], routing_text: str,
                      embedding: np.ndarray | None) -> RequestOutcome:
        """``texts``: every text that will be sent upstream; ``routing_text`` and
        ``embedding``: what the router embedded (the jailbreak guard judges those)."""
        verdicts: list[Verdict] = []
        out = list(texts)
        placeholders: dict[str, str] = {}
        if self.pii is not None:
            redactor = Redactor(self.pii.types)
            pii_verdicts = [self.pii.check(t, redactor=redactor) for t in texts]
            if self.pii.action == "redact":
                out = [v.redacted if v.redacted is not None else t
                       for v, t in zip(pii_verdicts, texts, strict=True)]
                placeholders = dict(redactor.mapping)
            verdicts.append(_merge_pii(pii_verdicts))
        if self.jailbreak is not None:
            verdicts.append(self.jailbreak.check(routing_text, embedding))
        verdicts += [plugin.check(routing_text, embedding) for plugin in self.plugins]
        verdict = combine(verdicts)
        safe = self.config.jailbreak.safe_models if verdict.action == "restrict" else ()
        return RequestOutcome(verdict, tuple(out), placeholders, tuple(safe))

    def check_answer(self, answer: str, request: RequestOutcome) -> AnswerOutcome:
        """PII the *model* wrote is redacted first (if ``check_answers``), then the request's
        placeholders are put back (if ``restore_in_answer``), so the user sees their own values
        and none the model invented or leaked."""
        verdict = Verdict()
        text = answer
        if self.pii is not None and self.config.pii.check_answers:
            redactor = Redactor(self.pii.types, reserved=request.placeholders)
            verdict = PiiGuard(types=self.pii.types, action="redact").check(answer,
                                                                           redactor=redactor)
            if verdict.redacted is not None:
                text = verdict.redacted
        if self.pii is not None and self.config.pii.restore_in_answer and request.placeholders:
            text = restore(text, request.placeholders)
        return AnswerOutcome(text, verdict)

    def stream_restorer(self, request: RequestOutcome) -> StreamRestorer:
        mapping = request.placeholders if (self.pii is not None
                                           and self.config.pii.restore_in_answer) else {}
        return StreamRestorer(mapping)


def _merge_pii(verdicts: list[Verdict]) -> Verdict:
    """One PII verdict for a request's texts (spans keep each text's own offsets; their order
    is the texts' order)."""
    hits = [v for v in verdicts if v.spans]
    if not hits:
        return verdicts[0] if verdicts else Verdict()
    scores: dict[str, float] = {}
    for v in hits:
        scores.update(v.scores)
    kinds = sorted({s.type for v in hits for s in v.spans})
    spans = tuple(s for v in hits for s in v.spans)
    redacting = hits[0].redacted is not None
    reason = (f"redacted {len(spans)} PII span(s): " if redacting else "PII found: ") + \
        ", ".join(kinds)
    return Verdict(hits[0].action, scores, spans, reason)


class StreamRestorer:
    """Restores placeholders in a streamed answer, chunk by chunk: a chunk ending inside a
    possible placeholder (``…<EMA``) is held back until the next chunk completes or refutes it,
    so a placeholder split across chunks is still restored."""

    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = dict(mapping)
        self._held = ""

    def feed(self, chunk: str) -> str:
        if not self.mapping:
            return chunk
        text = self._held + chunk
        cut = text.rfind("<")
        if cut != -1 and ">" not in text[cut:] and len(text) - cut < _MAX_PLACEHOLDER \
                and _could_be_placeholder(text[cut:]):
            self._held, text = text[cut:], text[:cut]
        else:
            self._held = ""
        return restore(text, self.mapping)

    def flush(self) -> str:
        held, self._held = self._held, ""
        return restore(held, self.mapping)


def _could_be_placeholder(prefix: str) -> bool:
    body = prefix[1:]
    return all(ch.isupper() or ch.isdigit() or ch == "_" for ch in body)
