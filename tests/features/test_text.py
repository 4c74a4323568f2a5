"""What gets embedded: the question, not a long shared prefix; the user's turns, not the system."""

from __future__ import annotations

from polyroute.features import chat_to_text, focus_text
from polyroute.features.text import DEFAULT_MAX_CHARS


def test_short_text_is_kept_with_whitespace_normalised() -> None:
    assert focus_text("  What   is\n2 + 2?\t") == "What is 2 + 2?"


def test_long_text_keeps_a_short_head_and_the_question_at_the_end() -> None:
    prefix = "Example question and answer. " * 200
    text = "Answer the questions carefully. " + prefix + "Q: What is the capital of Peru?"
    focused = focus_text(text, max_chars=200)
    assert len(focused) <= 200 + len(" … ")
    assert focused.startswith("Answer the questions")
    assert focused.endswith("Q: What is the capital of Peru?")
    assert " … " in focused
    # Most of the budget goes to the tail, where the question is.
    head, tail = focused.split(" … ")
    assert len(tail) > 2 * len(head)


def test_default_budget_is_about_the_encoder_window() -> None:
    assert len(focus_text("word " * 5000)) <= DEFAULT_MAX_CHARS + 3
    assert focus_text("x" * DEFAULT_MAX_CHARS) == "x" * DEFAULT_MAX_CHARS


def test_chat_uses_the_latest_user_turns_not_the_system_prompt() -> None:
    messages = [
        {"role": "system", "content": "You are a helpful assistant. " * 50},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question"},
        {"role": "assistant", "content": "second answer"},
        {"role": "user", "content": "third question"},
    ]
    assert chat_to_text(messages) == "first question\nsecond question\nthird question"
    assert chat_to_text(messages, max_user_turns=2) == "second question\nthird question"
    assert chat_to_text(messages, max_user_turns=1) == "third question"


def test_earlier_turns_fill_the_window_but_never_push_the_latest_out() -> None:
    long_turn = "An earlier pasted document. " * 40  # ~1,100 characters
    messages = [{"role": "user", "content": "short first"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": long_turn},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": "and in French?"}]
    # The long turn does not fit in the context share; nothing older is taken past it.
    assert chat_to_text(messages) == "and in French?"
    assert chat_to_text(messages, max_chars=5000, context_chars=5000) == \
        f"short first\n{long_turn}\nand in French?"
    # The window bounds the context too: the latest turn is never pushed out.
    assert chat_to_text(messages, max_chars=1000, context_chars=5000) == "and in French?"
    # A latest turn longer than the window is kept whole (the featurizer keeps head and tail).
    assert chat_to_text([{"role": "user", "content": long_turn}], max_chars=100) == long_turn


def test_chat_content_parts_keep_only_text() -> None:
    messages = [{"role": "user", "content": [
        {"type": "text", "text": "Describe this image"},
        {"type": "image_url", "image_url": {"url": "data:..."}},
        {"type": "text", "text": "in one line"},
    ]}]
    assert chat_to_text(messages) == "Describe this image\nin one line"


def test_chat_without_user_turns_falls_back_to_any_text() -> None:
    assert chat_to_text([{"role": "system", "content": "be brief"}]) == "be brief"
    assert chat_to_text([]) == ""


def test_chat_of_any_shape_never_raises() -> None:
    # Parts whose text is not a string, messages that are not objects, content of any type:
    # they contribute nothing, and the well-formed turns still count.
    messages = [
        "not a message", 7, None,
        {"role": "user", "content": [{"type": "text", "text": 5}, {"type": "text", "text": None},
                                     {"type": "text", "text": {"a": 1}}, {"type": "text"},
                                     "part", {"type": "text", "text": "kept"}]},
        {"role": "user", "content": {"text": "an object"}},
        {"role": "user", "content": 42},
        {"role": None, "content": None},
    ]
    assert chat_to_text(messages) == "kept"
    assert chat_to_text(messages[:3] + [{"role": "system", "content": "be brief"}]) == "be brief"


def test_lone_surrogates_reach_no_encoder_or_hash():
    """JSON can carry "\\ud800"; UTF-8 cannot: the tokenizer and the cache key crashed on it."""
    from polyroute.features.text import encodable, focus_text

    assert encodable("a\ud800b") == "a\ufffdb" and encodable("plain") == "plain"
    assert "\ud800" not in focus_text("x \udfff y")


def test_a_cached_featurizer_takes_text_with_a_lone_surrogate(tmp_path):
    from polyroute.features import TfidfFeaturizer, with_cache

    texts = [f"prompt {i} about cats and dogs" for i in range(6)] + ["odd \ud800 text"]
    f = TfidfFeaturizer(dim=3).fit(texts[:6])
    out = with_cache(f, tmp_path / "c.sqlite").encode(texts)
    assert out.shape == (7, 3)
