"""code_eval: the shipped tests run against the answer's code in a limited subprocess."""

from __future__ import annotations

import socket

import pytest

from polyroute.data import Reference
from polyroute.grading import make_grader
from polyroute.grading.code import called_functions, network_isolated, run_program

MBPP = Reference("p", "mbpp", "code_eval", ("assert add(1, 2) == 3", "assert add(0, 0) == 0"))
STUB = 'from typing import List\n\n\ndef add(a: int, b: int) -> int:\n    """Add two ints."""\n'
HUMANEVAL = Reference("h", "human_eval", "code_eval",
                      "\n\ndef check(candidate):\n    assert candidate(1, 2) == 3\n"
                      "    assert candidate(-1, 1) == 0\n", prompt=STUB)


@pytest.mark.parametrize("answer, default, strict", [
    ("[BEGIN]\ndef add(a, b):\n    return a + b\n[DONE]", 1.0, 1.0),
    ("def add(a, b):\n    return a + b", 1.0, 1.0),
    ("Here you go:\n```python\ndef add(a, b):\n    return a + b\n```\nDone.", 1.0, 0.0),
    ("[BEGIN]\n```python\ndef add(a, b):\n    return a + b\n```\n[Done]", 1.0, 0.0),
    ("[BEGIN]\ndef add(a, b):\n    return a - b\n[DONE]", 0.0, 0.0),
    ("I cannot write code.", 0.0, 0.0),
])
def test_mbpp(answer: str, default: float, strict: float) -> None:
    assert make_grader("code_eval").grade(answer, MBPP).score == default
    assert make_grader("code_eval", strict=True).grade(answer, MBPP).score == strict


@pytest.mark.parametrize("answer, default, strict", [
    ("[BEGIN]\n    return a + b\n[Done]", 1.0, 1.0),
    ("[BEGIN]\nreturn a + b\n[Done]", 1.0, 1.0),
    ("[BEGIN]\ndef add(a, b):\n    return a + b\n[Done]", 1.0, 1.0),
    # the first line lost its indentation to strip(): LLMRouter's re-indent breaks the body
    ("[BEGIN]\n    s = a + b\n    return s\n[Done]", 1.0, 0.0),
    ("```python\ndef add(a: int, b: int) -> int:\n    return a + b\n```", 1.0, 0.0),
    ("[BEGIN]\n    return a * b\n[Done]", 0.0, 0.0),
])
def test_humaneval(answer: str, default: float, strict: float) -> None:
    assert make_grader("code_eval").grade(answer, HUMANEVAL).score == default
    assert make_grader("code_eval", strict=True).grade(answer, HUMANEVAL).score == strict


def test_time_and_memory_are_limited() -> None:
    slow = make_grader("code_eval", timeout=1.0).grade(
        "def add(a, b):\n    while True:\n        pass", MBPP)
    assert (slow.score, slow.detail) == (0.0, "timed out")
    hungry = make_grader("code_eval", memory_mb=256).grade(
        "blob = bytearray(2 * 1024 ** 3)\ndef add(a, b):\n    return a + b", MBPP)
    assert hungry.score == 0.0 and "MemoryError" in hungry.detail


def test_sockets_are_refused() -> None:
    code = ("import socket\ntry:\n    socket.create_connection(('127.0.0.1', 9), timeout=1)\n"
            "    OPEN = True\nexcept OSError as exc:\n"
            "    OPEN = 'disabled while grading' not in str(exc)\n"
            "def add(a, b):\n    return None if OPEN else a + b")
    assert make_grader("code_eval").grade(code, MBPP).score == 1.0


@pytest.mark.skipif(not network_isolated(), reason="unshare --user --net is not available here")
def test_no_network_even_below_the_socket_module() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        result = run_program(
            f"import _socket\ns = _socket.socket()\ns.connect(('127.0.0.1', {port}))")
    assert not result.passed and "OSError" in result.outcome


def test_no_tests_no_grade() -> None:
    no_tests = Reference("u", "mine", "code_eval", None, usable=False, note="no reference answer")
    assert not make_grader("code_eval").grade("def f(): pass", no_tests).graded
    no_stub = Reference("h", "human_eval", "code_eval", HUMANEVAL.ground_truth, prompt=None)
    grade = make_grader("code_eval").grade("return a + b", no_stub)
    assert grade.score is None and "no runnable tests" in grade.detail


def test_called_functions_skip_builtins() -> None:
    assert called_functions(["assert set(similar(a, b)) == set((1,))",
                             "assert math.isclose(area(2), 12.5)"]) == ["similar", "area"]
