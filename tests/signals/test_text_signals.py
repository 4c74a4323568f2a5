"""The cheap text facts: language, token counts, parts of the body."""

from __future__ import annotations

import pytest

from polyroute.signals.text import context_tokens, has_images, has_tools, json_mode, language


@pytest.mark.parametrize("text, code", [
    ("What is the capital of France and how big is it?", "en"),
    ("Quelle est la capitale de la France et pour qui est-elle connue ?", "fr"),
    ("Was ist die Hauptstadt von Deutschland und wie groß ist sie?", "de"),
    ("¿Cuál es la capital de España y por qué es famosa?", "es"),
    ("日本の首都はどこですか？東京について教えてください。", "ja"),
    ("中国的首都是哪里？请介绍一下北京。", "zh"),
    ("한국의 수도는 어디입니까?", "ko"),
    ("Какая столица России и чем она известна?", "ru"),
])
def test_language_guesses(text, code):
    assert language(text) == code


def test_language_is_unknown_without_letters():
    assert language("12 + 7 = ?") is None
    assert language("") is None


def test_context_tokens_count_every_message_and_tools_but_not_images():
    body = {"messages": [{"role": "system", "content": "x" * 40},
                         {"role": "user", "content": [{"type": "text", "text": "y" * 20},
                                                      {"type": "image_url",
                                                       "image_url": {"url": "z" * 400}}]}]}
    assert context_tokens(body) == 15  # (40 + 20) / 4: the image URL is not text
    with_tools = {**body, "tools": [{"type": "function", "function": {"name": "f"}}]}
    assert context_tokens(with_tools) > context_tokens(body)
    assert has_images(body) and not has_images({"messages": [{"role": "user",
                                                               "content": "hi"}]})


def test_tools_and_json_mode():
    assert has_tools({"tools": [{"type": "function"}]}) and has_tools({"functions": [{}]})
    assert not has_tools({"tools": []}) and not has_tools({})
    assert json_mode({"response_format": {"type": "json_object"}})
    assert json_mode({"response_format": {"type": "json_schema", "json_schema": {}}})
    assert not json_mode({"response_format": {"type": "text"}}) and not json_mode({})
