"""Word-piece ids of routing texts, remembered per space-separated chunk.

Why: a static-embedding featurizer spends most of its request-time CPU in the tokenizer —
~0.2 ms for a 220-character prompt through HF ``tokenizers`` (BERT's normaliser and
pre-tokenizer, then an ``Encoding`` object per text), more than the table lookups and the kNN
search after it. Routing prompts repeat their words, and for a BERT-style tokenizer a space
always ends a word: its normaliser works character by character and its pre-tokenizer splits on
whitespace, so a text's pieces are the pieces of its space-separated chunks one after another.
Each chunk is tokenized once, by the tokenizer itself, and looked up after that; the ids are
exactly the tokenizer's (the tests compare both ways on every bundled prompt and on fuzzed text).

A tokenizer of another kind (whose normaliser or pre-tokenizer may act across a space) is asked
for whole texts every time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import chain
from typing import Any

import numpy as np

#: Distinct chunks remembered with their pieces (a few tens of MB at most; forgotten all at once
#: when full, so a flood of unique text cannot grow it without bound).
CACHE_CHUNKS = 200_000


def splits_at_spaces(spec: dict[str, Any]) -> bool:
    """Whether a tokenizer (its JSON) tokenizes a text as its space-separated chunks one after
    another: BERT's character-wise normaliser, its whitespace-splitting pre-tokenizer, WordPiece,
    and no added token containing a space."""
    norm, pre, model = (spec.get("normalizer") or {}, spec.get("pre_tokenizer") or {},
                        spec.get("model") or {})
    return (norm.get("type") == "BertNormalizer" and pre.get("type") == "BertPreTokenizer"
            and model.get("type") == "WordPiece"
            and not any(" " in t.get("content", "") for t in spec.get("added_tokens") or ()))


class WordPieces:
    """Each text's word-piece ids as ``tokenizer.encode_batch_fast`` gives them without special
    pieces and cut to ``max_pieces`` — unknown pieces dropped."""

    def __init__(self, tokenizer_json: str, max_pieces: int) -> None:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_str(tokenizer_json)
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_pieces)
        self.max_pieces = max_pieces
        self._tokenizer = tokenizer
        unk = getattr(tokenizer.model, "unk_token", None)
        self.unk: int | None = tokenizer.token_to_id(unk) if unk else None
        #: Whether texts are tokenized chunk by chunk (see the module docstring).
        self.by_chunk = splits_at_spaces(json.loads(tokenizer_json))
        self._chunks: dict[str, tuple[int, ...]] = {}

    def ids(self, texts: Sequence[str]) -> list[np.ndarray]:
        if not self.by_chunk:
            return [self._known(np.asarray(e.ids, dtype=np.int64)) for e in
                    self._tokenizer.encode_batch_fast(list(texts), add_special_tokens=False)]
        split = [t.split(" ") for t in texts]
        cache = self._chunks
        missing = list({c for chunks in split for c in chunks if c not in cache})
        if missing:
            if len(cache) + len(missing) > CACHE_CHUNKS:
                cache.clear()
                missing = list({c for chunks in split for c in chunks})
            encoded = self._tokenizer.encode_batch_fast(missing, add_special_tokens=False)
            cache.update(zip(missing, (tuple(e.ids) for e in encoded), strict=True))
        get = cache.__getitem__
        return [self._known(np.fromiter(chain.from_iterable(map(get, chunks)), dtype=np.int64)
                            [:self.max_pieces]) for chunks in split]

    def _known(self, ids: np.ndarray) -> np.ndarray:
        return ids[ids != self.unk] if self.unk is not None else ids
