"""Code (``code_eval``; mbpp, human_eval): run the shipped tests against the answer's code.

LLMRouter's rule, which recorded the bundled scores: take the code between ``[BEGIN]`` and
``[DONE]`` / ``[Done]`` (or the whole answer if there is no ``[BEGIN]``) — the prompts asked for
that format. For MBPP, run the code and then each test assertion; for HumanEval, run prompt +
code + the ``check(candidate)`` tests + ``check(<entry point>)``, where code not starting with
``def`` is a function body and is indented by four spaces. Pass = 1, anything else (failure,
error, 3 s timeout) = 0. ``strict=True`` reads the code exactly that way.

The default also takes the code out of a Markdown fence (LLMRouter ran the fence too, a syntax
error), accepts a full ``def <entry point>`` anywhere in a HumanEval answer, and re-indents a body
whose first line lost its indentation (LLMRouter's re-indent turns that into an
IndentationError); among the readings it keeps the first that compiles, never the one that passes.

**Isolation, honestly:** each program runs in a fresh ``python -I`` subprocess in an empty temporary
directory with a minimal environment, a wall-clock timeout, and ``setrlimit`` limits on address
space, CPU seconds, file size and core dumps. Network: where ``unshare --user --net`` works (Linux
with user namespaces), the process gets an empty network namespace, so it has no network at all;
in every case the program first replaces Python's socket constructors with ones that refuse, which
stops ordinary library code but not a determined program (ctypes, a child process). This is a
guard against accidents of model-written code, not a sandbox for hostile code. Where no tests ship,
the answer is ungraded, never scored 0.
"""

from __future__ import annotations

import ast
import builtins
import functools
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from polyroute.data.references import Reference, entry_point
from polyroute.grading.base import Grade, Grader, register

#: Prepended to every program: refuse to open sockets (see "Isolation" above).
_NO_SOCKETS = """\
import socket as _polyroute_socket
class _PolyrouteNoSocket(_polyroute_socket.socket):
    def __init__(self, *args, **kwargs):
        raise OSError("network access is disabled while grading")
def _polyroute_refuse(*args, **kwargs):
    raise OSError("network access is disabled while grading")
_polyroute_socket.socket = _PolyrouteNoSocket
_polyroute_socket.create_connection = _polyroute_refuse
_polyroute_socket.socketpair = _polyroute_refuse
del _polyroute_socket
"""
_BEGIN = re.compile(r"\[BEGIN\](.*?)(?:\[DONE\]|\[Done\]|$)", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)(?:```|$)", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class RunResult:
    """How one program ended: ``passed``, or why not (``failed: ...`` / ``timed out``)."""

    passed: bool
    outcome: str


@functools.cache
def _unshare_prefix() -> tuple[str, ...]:
    """``unshare --user --net --`` if it works here (probed once), else nothing."""
    tool = shutil.which("unshare")
    if tool is None:
        return ()
    try:
        probe = subprocess.run([tool, "--user", "--net", "--", "true"], capture_output=True,
                               timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return (tool, "--user", "--net", "--") if probe.returncode == 0 else ()


def network_isolated() -> bool:
    """Whether programs run in an empty network namespace (else only the socket guard applies)."""
    return bool(_unshare_prefix())


def run_program(source: str, timeout: float = 5.0, memory_mb: int = 1024) -> RunResult:
    """Run ``source`` as a Python program under the limits described above."""

    def limit() -> None:  # runs in the child between fork and exec
        mem = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        cpu = int(timeout) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024 * 1024,) * 2)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    with tempfile.TemporaryDirectory(prefix="polyroute-grade-") as tmp:
        path = Path(tmp) / "program.py"
        path.write_text(_NO_SOCKETS + source, encoding="utf-8")
        argv = [*_unshare_prefix(), sys.executable, "-I", str(path)]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
               "OMP_NUM_THREADS": "1"}
        proc = subprocess.Popen(argv, cwd=tmp, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                preexec_fn=limit, start_new_session=True)
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.communicate()
            return RunResult(False, "timed out")
    if proc.returncode == 0:
        return RunResult(True, "passed")
    lines = err.decode("utf-8", "replace").strip().splitlines()
    return RunResult(False, f"failed: {lines[-1] if lines else f'exit {proc.returncode}'}")


# -- reading the code out of an answer -----------------------------------------------------------
def llmrouter_code(answer: str) -> str:
    """The code LLMRouter reads from an answer."""
    found = _BEGIN.search(answer)
    return found.group(1).strip() if found else answer.strip()


def read_code(answer: str, name: str | None = None) -> str:
    """The code of an answer: its ``[BEGIN]`` block, else the fenced block defining ``name`` (or the
    first fence), else the whole answer; fences inside a ``[BEGIN]`` block are unwrapped."""
    found = _BEGIN.search(answer)
    text = found.group(1) if found else answer
    fences = _FENCE.findall(text)
    if fences:
        defining = [f for f in fences if name and re.search(rf"^\s*def\s+{re.escape(name)}\s*\(",
                                                            f, re.M)]
        text = (defining or fences)[0]
    return text.strip("\n")


def called_functions(tests: Sequence[str]) -> list[str]:
    """The functions MBPP assertions call that the answer must define (builtins left out)."""
    names: list[str] = []
    for test in tests:
        try:
            tree = ast.parse(test)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and not hasattr(builtins, node.func.id) and node.func.id not in names:
                names.append(node.func.id)
    return names


def _compiles(source: str) -> bool:
    try:
        compile(source, "<answer>", "exec")
    except (SyntaxError, ValueError):
        return False
    return True


def humaneval_completions(code: str, name: str, strict: bool) -> list[str]:
    """The ways to read a HumanEval answer as the rest of the prompt's function, best first."""
    stripped = code.strip()
    if strict:
        if stripped.startswith("def "):
            return [stripped]
        return ["    " + stripped.replace("\n", "\n    ")]
    if re.search(rf"^\s*def\s+{re.escape(name)}\s*\(", code, re.M):
        return ["\n" + textwrap.dedent(code)]
    lines = code.strip("\n").splitlines()
    body = textwrap.indent(textwrap.dedent("\n".join(lines)), "    ")
    first_fixed = lines[:]
    later = [ln for ln in lines[1:] if ln.strip()]
    if later:
        indent = len(later[0]) - len(later[0].lstrip())
        first_fixed[0] = " " * indent + lines[0].lstrip()
    reindented = textwrap.indent(textwrap.dedent("\n".join(first_fixed)), "    ")
    return [body, reindented, "    " + stripped.replace("\n", "\n    ")]


def program_for(answer: str, reference: Reference, strict: bool = False) -> str | None:
    """The program that tests ``answer`` (None where the reference cannot make one)."""
    tests = reference.ground_truth
    if isinstance(tests, tuple):  # MBPP: assertions on a function the code defines
        called = called_functions(tests)
        code = llmrouter_code(answer) if strict else read_code(answer, next(iter(called), None))
        return code + "\n\n" + "\n".join(tests) + "\n"
    prompt = reference.prompt or ""
    name = entry_point(prompt)
    if name is None or not isinstance(tests, str):
        return None
    code = llmrouter_code(answer) if strict else read_code(answer, name)
    candidates = [prompt + c + "\n" + tests + "\n" + f"check({name})\n"
                  for c in humaneval_completions(code, name, strict)]
    if strict:
        return candidates[0]
    return next((c for c in candidates if _compiles(c)), candidates[0])


@register("code_eval")
class CodeGrader(Grader):
    """1 if the answer's code passes every shipped test, else 0; ungraded where none ship."""

    def __init__(self, strict: bool = False, timeout: float = 5.0, memory_mb: int = 1024) -> None:
        self.strict = strict
        self.timeout = timeout
        self.memory_mb = memory_mb

    def _grade(self, answer: str, reference: Reference) -> Grade:
        program = program_for(answer, reference, self.strict)
        if program is None:
            return Grade.ungraded("the reference ships no runnable tests for this prompt")
        result = run_program(program, self.timeout, self.memory_mb)
        return Grade(float(result.passed), result.outcome)
