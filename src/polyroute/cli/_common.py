"""Small pieces every sub-command shares: consoles, data arguments, progress."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console

from polyroute.data import DEFAULT_OUTPUT_TOKENS, Outcomes, load_bundled, load_outcomes
from polyroute.data.loaders import DEFAULT_ENCODING
from polyroute.errors import DataError
from polyroute.features import DEFAULT_FEATURIZER


def _console(*, stderr: bool = False) -> Console:
    """A console that fits a terminal's width, and never wraps when piped or redirected.

    A pipe or a file has no width to fit: wrapping there breaks paths and request ids mid-word
    for grep and copy-paste, so lines are left whole (``soft_wrap``) and tables take their
    natural width (the width limit only caps them).
    """
    stream = sys.stderr if stderr else sys.stdout
    if stream is not None and stream.isatty():
        return Console(stderr=stderr)
    return Console(stderr=stderr, soft_wrap=True, width=_PIPE_WIDTH)


#: The width cap when piped: wider than any table the commands print, so none is squeezed.
_PIPE_WIDTH = 100_000

#: Results go to stdout; progress and notes go to stderr so stdout stays pipeable.
out = _console()
err = _console(stderr=True)


def add_data_arguments(parser: argparse.ArgumentParser, *, train_test: bool = False) -> None:
    group = parser.add_argument_group("data (default: the bundled llmrouter-bench data set)")
    group.add_argument("--data", type=Path, metavar="FILE",
                       help="outcomes file (.jsonl, .csv or .parquet; wide or long format)")
    if train_test:
        group.add_argument("--train", type=Path, metavar="FILE", help="training outcomes file")
        group.add_argument("--test", type=Path, metavar="FILE", help="test outcomes file")
    group.add_argument("--models", type=Path, metavar="FILE",
                       help="models file with prices (default: models.json beside the data)")
    group.add_argument("--output-tokens", type=int, default=DEFAULT_OUTPUT_TOKENS, metavar="N",
                       help="output tokens assumed per answer where no cost is recorded "
                            "(default: %(default)s)")
    group.add_argument("--sample", type=int, metavar="N",
                       help="use a seeded random sample of N prompts (quick runs)")
    add_encoding_argument(group)


def add_encoding_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument("--encoding", default=DEFAULT_ENCODING, metavar="NAME",
                        help="text encoding of JSONL/CSV data and models files, e.g. cp1252 for "
                             "a spreadsheet export (default: UTF-8)")


def load_data(args: argparse.Namespace, path: Path | None = None) -> Outcomes:
    """The outcomes named by ``--data`` (or ``path``), else the bundled data set."""
    path = path or getattr(args, "data", None)
    if path is None:
        if args.models is not None:
            raise DataError("--models needs --data (the bundled data set has its own prices)")
        outcomes = load_bundled(args.output_tokens)
    else:
        outcomes = load_outcomes(path, args.models, output_tokens=args.output_tokens,
                                 encoding=getattr(args, "encoding", DEFAULT_ENCODING))
    if getattr(args, "sample", None) is not None:  # --sample 0 is an error, not "everything"
        outcomes = outcomes.sample(args.sample, random_state=getattr(args, "seed", 0))
    return outcomes


def check_out_dir(path: Path, option: str = "--out") -> Path:
    """Refuse an output directory that cannot be created or written, before any slow work.

    The path must be a directory or not exist yet; its nearest existing ancestor must be a
    writable directory (``/etc/passwd/x`` fails here, not after training).
    """
    if path.exists() and not path.is_dir():
        raise DataError(f"{option} {path}: exists and is not a directory")
    _check_creatable(path, option)
    return path


def check_out_file(path: Path, option: str = "--output") -> Path:
    """Refuse an output file that cannot be written (a directory, or under a regular file)."""
    if path.is_dir():
        raise DataError(f"{option} {path}: is a directory; name a file")
    _check_creatable(path.parent, option, path)
    return path


def _check_creatable(directory: Path, option: str, target: Path | None = None) -> None:
    target = target or directory
    ancestor = directory
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise DataError(f"{option} {target}: {ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise DataError(f"{option} {target}: {ancestor} is not writable")


@contextmanager
def warnings_as_notes() -> Iterator[None]:
    """Show library warnings (e.g. models only one of two files holds) as one line each,
    ``polyroute: warning: ...`` on stderr, instead of Python's two-line format."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
        err.print(f"polyroute: warning: {message}", markup=False, highlight=False,
                  soft_wrap=True)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def add_cache_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--featurizer", default=DEFAULT_FEATURIZER, metavar="NAME",
                        help="minilm (default; all-MiniLM-L6-v2 on torch, the exact path), "
                             "minilm-static-tuned+tfidf (MiniLM's static word-piece embeddings "
                             "tuned towards MiniLM on the training prompts, beside TF-IDF: ~1.5 "
                             "ms a decision, as good in CV, ~0.01 AIQ lower per new task), "
                             "minilm-layers (its six layers pooled: better in-distribution), "
                             "minilm-onnx-int8 (the same model on ONNX Runtime, int8; "
                             "minilm-onnx-int8:tail64 etc. keep a token window), minilm-onnx "
                             "(fp32), minilm-static (distilled static embeddings), tfidf (no "
                             "model), or a sentence-transformers model name or local path")
    parser.add_argument("--cache", type=Path, metavar="PATH",
                        help="embedding cache file (default: $POLYROUTE_CACHE_DIR or "
                             "~/.cache/polyroute/embeddings.sqlite)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the cache")


def cache_setting(args: argparse.Namespace) -> Path | bool | None:
    return False if args.no_cache else args.cache


@contextmanager
def steps(total: int, description: str) -> Iterator:
    """A progress bar advanced by calling the yielded function with the current step's name."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(),
                        TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                        console=err, transient=True)
    with progress:
        task = progress.add_task(description, total=total)
        started = [False]

        def step(name: str) -> None:
            if started[0]:
                progress.advance(task)
            started[0] = True
            progress.update(task, description=f"{description}: {name}")

        yield step
        progress.update(task, completed=total)
