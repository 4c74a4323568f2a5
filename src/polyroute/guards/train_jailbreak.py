"""Train the bundled jailbreak classifier (offline; the result ships in ``_data/``)::

    python -m polyroute.guards.train_jailbreak [--featurizer minilm] [--out DIR]

Only the ``train`` split is used (``polyroute.guards.data``); the ``test`` split and the held-out
bundled tasks stay unseen for ``benchmarks/guards.py``. The regularisation strength is chosen by
grouped cross-validation (near-duplicate groups never straddle folds), and the threshold from the
out-of-fold scores: the lowest one whose false-positive rate on benign training prompts is at
most :data:`TARGET_FPR`, because a guard that blocks ordinary requests costs more than one that
misses some attacks (those still meet the model's own refusals).
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from polyroute.guards.data import HELD_OUT_TASKS, LabelledSet, data_path, load_jailbreak_set
from polyroute.guards.jailbreak import JailbreakModel

TARGET_FPR = 0.005
C_GRID = (0.3, 1.0, 3.0, 10.0, 30.0)
SEED = 0


def _fit(x: np.ndarray, y: np.ndarray, c: float):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, class_weight="balanced", max_iter=2000,
                              random_state=SEED).fit(x, y)


def out_of_fold(x: np.ndarray, y: np.ndarray, groups: Sequence[str], c: float,
                folds: int = 5) -> np.ndarray:
    from sklearn.model_selection import GroupKFold

    probs = np.empty(len(y))
    for tr, te in GroupKFold(n_splits=folds).split(x, y, groups):
        probs[te] = _fit(x[tr], y[tr], c).predict_proba(x[te])[:, 1]
    return probs


def threshold_for_fpr(probs: np.ndarray, y: np.ndarray, target: float = TARGET_FPR) -> float:
    """Lowest threshold whose false-positive rate on the negatives is at most ``target``."""
    neg = np.sort(probs[y == 0])[::-1]
    allowed = int(np.floor(target * len(neg)))
    edge = neg[allowed] if allowed < len(neg) else 0.0
    return float(min(max(np.nextafter(edge, 1.0), 0.05), 0.95))


def train(data: LabelledSet, embeddings: np.ndarray, featurizer_id: str) -> tuple[JailbreakModel,
                                                                                    dict]:
    from sklearn.metrics import roc_auc_score

    y = np.asarray(data.labels)
    cv = {}
    for c in C_GRID:
        cv[c] = out_of_fold(embeddings, y, data.groups, c)
    best = max(C_GRID, key=lambda c: roc_auc_score(y, cv[c]))
    threshold = threshold_for_fpr(cv[best], y)
    model = _fit(embeddings, y, best)
    oof = cv[best]
    report = {
        "C": best,
        "cv_auc": {str(c): round(float(roc_auc_score(y, p)), 4) for c, p in cv.items()},
        "cv_recall_at_threshold": round(float((oof[y == 1] >= threshold).mean()), 4),
        "cv_fpr_at_threshold": round(float((oof[y == 0] >= threshold).mean()), 4),
    }
    meta = {
        "trained_on": {"rows": len(y), "positives": int(y.sum()), "negatives": int((y == 0).sum()),
                       "data_sha256": hashlib.sha256(data_path().read_bytes()).hexdigest(),
                       "held_out_bundled_tasks": list(HELD_OUT_TASKS)},
        "threshold_rule": f"lowest out-of-fold threshold with benign FPR <= {TARGET_FPR}",
        "cv": report,
    }
    return JailbreakModel(model.coef_[0].astype(np.float32), float(model.intercept_[0]),
                          threshold, featurizer_id, meta), report


def main(argv: Sequence[str] | None = None) -> int:
    from polyroute.features import make_featurizer, with_cache

    parser = argparse.ArgumentParser(prog="python -m polyroute.guards.train_jailbreak")
    parser.add_argument("--out", type=Path, default=data_path().parent)
    parser.add_argument("--featurizer", default="minilm",
                        help="the router's featurizer (the model reads its embeddings)")
    args = parser.parse_args(argv)
    data = load_jailbreak_set("train")
    featurizer = with_cache(make_featurizer(args.featurizer))
    embeddings = featurizer.encode(list(data.texts))
    model, report = train(data, embeddings, featurizer.id)
    model.save(args.out)
    print(f"saved to {args.out}: C={report['C']} threshold={model.threshold:.4f} "
          f"cv recall {report['cv_recall_at_threshold']} fpr {report['cv_fpr_at_threshold']}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
