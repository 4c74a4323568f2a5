"""Conversation identity: explicit ids, the prefix hash a later turn finds, turn kinds."""

from __future__ import annotations

import pytest

from polyroute.conversations import (
    CONTINUATION,
    CONVERSATION_HEADER,
    FIRST,
    TOOL,
    USER,
    ConversationIdError,
    identify,
    turn_kind,
)

SYSTEM = {"role": "system", "content": "You are terse."}


def turns(n: int) -> list[dict]:
    """A conversation through its n-th user turn (answers in between)."""
    messages = [SYSTEM]
    for i in range(1, n + 1):
        if i > 1:
            messages.append({"role": "assistant", "content": f"answer {i - 1}"})
        messages.append({"role": "user", "content": f"question {i}"})
    return messages


def conv(messages, headers=None, key_id="k1", **body):
    return identify({"messages": messages, **body}, headers or {}, key_id=key_id)


def test_each_turn_looks_up_the_key_the_turn_before_kept():
    one, two, three = conv(turns(1)), conv(turns(2)), conv(turns(3))
    assert one.turn == FIRST and one.lookup is None  # a first turn is always routed
    assert two.turn == USER and two.lookup == one.key
    assert three.lookup == two.key
    assert len({one.key, two.key, three.key}) == 3
    # The id shown stays the same for the whole conversation.
    assert one.id == two.id == three.id and one.id.startswith("prefix:")


def test_the_hash_ignores_how_the_client_reserialises_assistant_turns():
    plain = turns(2)
    other = [*plain[:2], {"role": "assistant", "content": None, "refusal": None,
                          "tool_calls": []}, plain[3]]
    assert conv(plain).lookup == conv(other).lookup == conv(turns(1)).key


def test_a_different_earlier_turn_or_key_is_another_conversation():
    edited = turns(2)
    edited[1] = {"role": "user", "content": "question 1, edited"}
    assert conv(edited).lookup != conv(turns(1)).key
    assert conv(turns(2), key_id="k2").lookup != conv(turns(1)).key
    sys2 = [{"role": "system", "content": "You are verbose."}, *turns(2)[1:]]
    assert conv(sys2).lookup != conv(turns(1)).key


def test_tool_results_and_continuations_find_their_turns_pin():
    asked = turns(1)
    tool = [*asked, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "42"}]
    cont = [*asked, {"role": "assistant", "content": "Once upon"}]
    assert conv(tool).turn == TOOL and conv(tool).lookup == conv(asked).key
    assert conv(cont).turn == CONTINUATION and conv(cont).lookup == conv(asked).key
    # Neither carries a new question: the pinning stage never weighs a move for them.
    assert not conv(tool).new_question and not conv(cont).new_question
    assert conv(turns(2)).new_question
    # The answer after the tool result, then the next question, still chains on.
    nxt = [*tool, {"role": "assistant", "content": "It is 42."},
           {"role": "user", "content": "and doubled?"}]
    assert conv(nxt).lookup == conv(asked).key


def test_turn_kinds():
    assert turn_kind([]) == FIRST
    assert turn_kind(turns(1)) == FIRST
    assert turn_kind(turns(2)) == USER
    assert turn_kind([*turns(1), {"role": "function", "name": "f", "content": "1"}]) == TOOL
    assert turn_kind([*turns(1), {"role": "assistant", "content": "x"}]) == CONTINUATION


def test_explicit_ids_in_configured_order_scoped_by_key():
    by_header = conv(turns(1), {CONVERSATION_HEADER: "c-1"})
    assert by_header.id == "c-1" and by_header.source == "header"
    assert by_header.lookup == by_header.key  # every turn of it shares one pin
    by_meta = conv(turns(3), metadata={"conversation_id": "c-1"})
    assert by_meta.source == "metadata" and by_meta.key == by_header.key
    assert conv(turns(1), {CONVERSATION_HEADER: "c-1"}, key_id="k2").key != by_header.key
    # ``user`` only when configured.
    assert identify({"messages": turns(1), "user": "u-7"}, {}, key_id="k1").source == "prefix"
    assert identify({"messages": turns(1), "user": "u-7"}, {}, key_id="k1",
                    id_from=("user",)).id == "u-7"


@pytest.mark.parametrize("value", ["", "   ", 7, "x" * 257])
def test_unusable_explicit_ids_are_refused_naming_the_field(value):
    with pytest.raises(ConversationIdError) as exc:
        conv(turns(1), metadata={"conversation_id": value})
    assert exc.value.param == "metadata.conversation_id"


def test_prefix_tokens_count_what_a_warm_cache_holds():
    messages = [{"role": "system", "content": "s" * 400}, {"role": "user", "content": "u" * 40},
                {"role": "assistant", "content": "a" * 80}, {"role": "user", "content": "q"}]
    assert conv(messages).prefix_tokens == (400 + 40 + 80) // 4
    assert conv(messages[:2]).prefix_tokens == 100
