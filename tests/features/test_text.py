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
    assert chat_to_text(messages) == "first question second question\nthird question"
    assert chat_to_text(messages, max_user_turns=2) == "second question\nthird question"
    assert chat_to_text(messages, max_user_turns=1) == "third question"
    assert chat_to_text(messages, max_user_turns=9) == chat_to_text(messages)


def test_earlier_turns_give_their_end_and_never_push_the_latest_out() -> None:
    document = "An earlier pasted document. " * 40 + "What does it conclude?"
    messages = [{"role": "user", "content": "short first"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": document},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": "and in French?"}]
    text = chat_to_text(messages, context_chars=100)
    context, latest = text.split("\n")
    assert latest == "and in French?"
    assert len(context) == 100 and context.endswith("What does it conclude?")
    # The window bounds the context: the latest turn always fits whole.
    long_latest = "word " * 195  # 975 characters: 24 left, too few for any context
    assert chat_to_text([*messages[:-1], {"role": "user", "content": long_latest}],
                        context_chars=1000) == long_latest
    # A latest turn longer than the window is kept whole (the featurizer keeps head and tail).
    assert chat_to_text([{"role": "user", "content": document}], max_chars=100) == document
    assert chat_to_text(messages, context_chars=0) == "and in French?"


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
