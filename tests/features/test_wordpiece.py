"""Word pieces remembered per space-separated chunk are exactly the tokenizer's own."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyroute.data import load_bundled
from polyroute.features import wordpiece
from polyroute.features.onnx import minilm_directory
from polyroute.features.text import focus_text
from polyroute.features.wordpiece import WordPieces, splits_at_spaces

MAX = 512


class _Json(str):
    """The tokenizer's JSON, shown short in a failing test's report."""

    def __repr__(self) -> str:
        return "<MiniLM tokenizer.json>"


@pytest.fixture(scope="module")
def tokenizer_json() -> str:
    return _Json((minilm_directory() / "tokenizer.json").read_text())


def _reference(tokenizer_json: str, texts: list[str]) -> list[list[int]]:
    """What the tokenizer gives for whole texts (cut to MAX pieces, unknown ones dropped)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(tokenizer_json)
    tok.no_padding()
    tok.enable_truncation(MAX)
    unk = tok.token_to_id("[UNK]")
    return [[i for i in e.ids if i != unk]
            for e in tok.encode_batch_fast(texts, add_special_tokens=False)]


def test_minilm_tokenizer_is_tokenized_by_chunk(tokenizer_json: str) -> None:
    assert WordPieces(tokenizer_json, MAX).by_chunk


def test_every_bundled_prompt_gets_the_tokenizers_pieces(tokenizer_json: str) -> None:
    texts = [focus_text(t) for t in load_bundled().prompts]
    pieces = WordPieces(tokenizer_json, MAX)
    # Twice: the first pass fills the chunk memory, the second reads it.
    for _ in range(2):
        got = pieces.ids(texts)
        assert [g.tolist() for g in got] == _reference(tokenizer_json, texts)


# Characters where tokenizers differ: controls BERT removes, whitespace of several kinds,
# punctuation, accents, CJK, a lone surrogate's replacement, and the added tokens' brackets.
_ALPHABET = st.sampled_from(list("ab Z9 _-.,!?'\"[]()\t\n\r\x00\x01\x0b\x0c\x1f\x7f\x85\xa0"
                                 "éÉüßİ\u0301\u2003\u200b\u3000中文😀\ufffd") +
                            ["[PAD]", "[UNK]", "[pad]", "  ", "don't", "x" * 120])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_ALPHABET, max_size=40).map("".join), min_size=1, max_size=4))
def test_fuzzed_text_gets_the_tokenizers_pieces(tokenizer_json: str, texts: list[str]) -> None:
    got = WordPieces(tokenizer_json, MAX).ids(texts)
    assert [g.tolist() for g in got] == _reference(tokenizer_json, texts)


def test_long_text_is_cut_to_max_pieces_as_the_tokenizer_cuts_it(tokenizer_json: str) -> None:
    text = " ".join(f"word{i} [UNK] x" for i in range(400))
    got = WordPieces(tokenizer_json, 64).ids([text])[0]
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(tokenizer_json)
    tok.no_padding()
    tok.enable_truncation(64)
    unk = tok.token_to_id("[UNK]")
    assert got.tolist() == [i for i in tok.encode(text, add_special_tokens=False).ids if i != unk]


def test_the_chunk_memory_is_bounded(tokenizer_json: str, monkeypatch) -> None:
    monkeypatch.setattr(wordpiece, "CACHE_CHUNKS", 50)
    pieces = WordPieces(tokenizer_json, MAX)
    texts = [" ".join(f"w{i}x{j}" for j in range(20)) for i in range(10)]
    for text in texts:
        assert pieces.ids([text])[0].tolist() == _reference(tokenizer_json, [text])[0]
        assert len(pieces._chunks) <= 50


def test_a_tokenizer_of_another_kind_is_asked_for_whole_texts(tokenizer_json: str) -> None:
    spec = json.loads(tokenizer_json)
    spec["normalizer"] = {"type": "Lowercase"}
    other = json.dumps(spec)
    assert not splits_at_spaces(spec)
    pieces = WordPieces(other, MAX)
    assert not pieces.by_chunk
    texts = ["Hello, World!", "naïve café"]
    assert [g.tolist() for g in pieces.ids(texts)] == _reference(other, texts)
    assert np.asarray(pieces.ids([""])[0]).size == 0
