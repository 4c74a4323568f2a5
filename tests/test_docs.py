"""Every Python snippet in README.md and docs/*.md runs as written, and every ``polyroute``
command a shell snippet names exists.

A Python block that cannot run here (it needs a live gateway, say) is preceded by a line
``<!-- docs-test: skip: REASON -->``; the reason shows in the test report.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from polyroute.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
SKIP = re.compile(r"<!--\s*docs-test:\s*skip:\s*(.+?)\s*-->\s*$")


def blocks(language: str) -> list[tuple[str, str, str | None]]:
    """(file:line, code, skip reason or None) of every fenced block in ``language``."""
    found = []
    for path in DOCS:
        text = path.read_text()
        for m in FENCE.finditer(text):
            if m.group(1) != language:
                continue
            line = text.count("\n", 0, m.start()) + 1
            before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
            skip = SKIP.search(before)
            found.append((f"{path.name}:{line}", m.group(2), skip.group(1) if skip else None))
    return found


PYTHON = blocks("python")
BASH = blocks("bash")


def test_the_docs_have_snippets() -> None:
    assert any(where.startswith("README.md") for where, _, _ in PYTHON)
    assert BASH


@pytest.mark.parametrize(("where", "code", "skip"), PYTHON, ids=[w for w, _, _ in PYTHON])
def test_python_snippet_runs(where: str, code: str, skip: str | None, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    if skip is not None:
        pytest.skip(skip)
    monkeypatch.chdir(tmp_path)  # snippets may write files (a saved router, say)
    exec(compile(code, where, "exec"), {"__name__": "__docs__"})


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _commands(code: str) -> list[list[str]]:
    """The argument lists after each ``polyroute`` word in a shell snippet."""
    joined = re.sub(r"\\\n", " ", code)
    found = []
    for line in joined.splitlines():
        line = line.split("#", 1)[0]
        for part in re.split(r"&&|\|\||;|\|", line):
            words = shlex.split(part)
            for i, word in enumerate(words):
                if word == "polyroute" or word.endswith("/polyroute"):
                    found.append(words[i + 1:])
                    break
    return found


@pytest.mark.parametrize(("where", "code"), [(w, c) for w, c, _ in BASH],
                         ids=[w for w, _, _ in BASH])
def test_shell_snippets_name_real_commands(where: str, code: str) -> None:
    for args in _commands(code):
        parser = build_parser()
        path = []
        for word in args:
            subs = _subcommands(parser)
            if not subs or word.startswith("-"):
                break
            assert word in subs, f"{where}: `polyroute {' '.join([*path, word])}` is no command"
            parser = subs[word]
            path.append(word)
        assert path, f"{where}: `polyroute {' '.join(args)}` names no command"
