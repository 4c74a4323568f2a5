"""The labelled jailbreak / prompt-injection set shipped in ``_data/`` and its fixed splits.

Rows: jailbreak and injection prompts (label 1) and benign role-play prompts (label 0) from the
public sources in ``_data/NOTICE.md``, split by near-duplicate group (see ``build_data``), plus
the bundled router prompts as benign rows, split by *task*: the held-out tasks are never seen in
training, so the false-positive rate measured on them is that of prompts unlike any benign
training prompt, not of near-copies.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

#: Bundled tasks held out from training (drawn with ``numpy.random.default_rng(0).choice`` of 5
#: from the 14 sorted task names, then written down so the split cannot drift).
HELD_OUT_TASKS = ("commongen", "commonsense_qa", "gsm8k", "human_eval", "math")


@dataclass(frozen=True)
class LabelledSet:
    texts: tuple[str, ...]
    labels: tuple[int, ...]
    sources: tuple[str, ...]
    groups: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.texts)


def data_path() -> Path:
    return Path(str(resources.files("polyroute.guards") / "_data")) / "jailbreak.jsonl.gz"


def load_jailbreak_set(split: str, *, bundled: bool = True) -> LabelledSet:
    """``split`` is ``train`` or ``test``; ``bundled`` adds the bundled prompts of that split's
    tasks as benign rows (source ``bundled:<task>``)."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    texts: list[str] = []
    labels: list[int] = []
    sources: list[str] = []
    groups: list[str] = []
    with gzip.open(data_path(), "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row["split"] == split:
                texts.append(row["text"])
                labels.append(int(row["label"]))
                sources.append(row["source"])
                groups.append(row["group"])
    if bundled:
        from polyroute.data import load_bundled

        outcomes = load_bundled()
        for pid, text, task in zip(outcomes.prompt_ids, outcomes.prompts, outcomes.tasks,
                                   strict=True):
            if (task in HELD_OUT_TASKS) == (split == "test"):
                texts.append(text)
                labels.append(0)
                sources.append(f"bundled:{task}")
                groups.append(f"bundled:{pid}")
    return LabelledSet(tuple(texts), tuple(labels), tuple(sources), tuple(groups))
