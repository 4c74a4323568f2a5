"""How well do the guards work, and what do they cost per request?

* **Jailbreak / prompt injection** — precision and recall on the held-out split of the shipped set
  (``polyroute.guards.data``: near-duplicate groups and five bundled tasks never seen in
  training), at the shipped threshold and along a precision–recall table; classifier alone, phrase
  rules alone and both; per source; a cross-source check (retrain without one source's attacks,
  measure recall on them); false-positive rate on all 5,489 bundled prompts, split into the tasks
  seen and not seen in training.
* **PII** — per-type precision and recall on a synthetic labelled set made here from seeded
  templates (values generated with their own check digits, plus look-alikes that must *not* be
  found: Luhn-failing cards, IBANs with wrong check digits, never-issued SSNs, …), and the share
  of bundled prompts with any finding.
* **Latency** — p50/p99 per text of each guard on bundled prompts, the classifier given the
  router's embedding (as in the gateway), and on a 8,000-character prompt.

Usage::

    python benchmarks/guards.py            # ~1 min with a warm embedding cache
"""

from __future__ import annotations

import os
import random
import string
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, fmt, machine, write_json  # noqa: E402

SEED = 0
PR_THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


# -- jailbreak ----------------------------------------------------------------------------------
def _prf(pred: np.ndarray, y: np.ndarray) -> dict:
    tp = int((pred & (y == 1)).sum())
    fp = int((pred & (y == 0)).sum())
    fn = int((~pred & (y == 1)).sum())
    neg = int((y == 0).sum())
    return {"precision": tp / (tp + fp) if tp + fp else None,
            "recall": tp / (tp + fn) if tp + fn else None,
            "fpr": fp / neg if neg else None, "tp": tp, "fp": fp, "fn": fn}


def jailbreak_section(featurizer) -> dict:
    from sklearn.metrics import average_precision_score, roc_auc_score

    from polyroute.data import load_bundled
    from polyroute.guards.data import HELD_OUT_TASKS, load_jailbreak_set
    from polyroute.guards.jailbreak import JailbreakGuard, rule_hits
    from polyroute.guards.train_jailbreak import _fit, out_of_fold, threshold_for_fpr

    guard = JailbreakGuard()
    thr = guard.threshold
    test = load_jailbreak_set("test")
    y = np.asarray(test.labels)
    x = featurizer.encode(list(test.texts))
    clf = guard.model.score(x)
    rules = np.array([max((h.score for h in rule_hits(t)), default=0.0) for t in test.texts])
    both = np.maximum(clf, rules)
    out: dict = {"threshold": thr, "test_rows": len(y), "test_positives": int(y.sum()),
                 "test_negatives": int((y == 0).sum()),
                 "held_out_bundled_tasks": list(HELD_OUT_TASKS)}
    out["at_threshold"] = {name: _prf(s >= thr, y) for name, s in
                           (("classifier", clf), ("rules", rules), ("classifier+rules", both))}
    out["auc"] = {"classifier_roc_auc": float(roc_auc_score(y, clf)),
                  "classifier_average_precision": float(average_precision_score(y, clf))}
    out["pr_table"] = [{"threshold": t, "classifier": _prf(clf >= t, y),
                        "classifier+rules": _prf(both >= t, y)} for t in PR_THRESHOLDS]
    sources = np.asarray(test.sources)
    per_source = {}
    for src in sorted(set(test.sources)):
        m = sources == src
        per_source[src] = {"rows": int(m.sum()), "label": int(y[m][0]),
                           "flagged_share": float((both[m] >= thr).mean()),
                           "flagged_by_rules_share": float((rules[m] >= thr).mean())}
    out["per_source"] = per_source
    # false positives on the test negatives, shown so a reader can judge them
    fp_idx = np.nonzero((both >= thr) & (y == 0))[0]
    out["false_positive_examples"] = [
        {"source": test.sources[i], "score": round(float(both[i]), 3),
         "rules": sorted({h.type for h in rule_hits(test.texts[i])}),
         "text": test.texts[i][:160]} for i in fp_idx[:12]]

    # all bundled prompts
    bundled = load_bundled()
    xb = featurizer.encode(list(bundled.prompts))
    pb = guard.model.score(xb)
    rb = np.array([max((h.score for h in rule_hits(t)), default=0.0) for t in bundled.prompts])
    flagged = np.maximum(pb, rb) >= thr
    unseen = np.array([t in HELD_OUT_TASKS for t in bundled.tasks])
    out["bundled_fpr"] = {
        "all": {"prompts": len(flagged), "flagged": int(flagged.sum()),
                "fpr": float(flagged.mean())},
        "unseen_tasks": {"prompts": int(unseen.sum()), "flagged": int(flagged[unseen].sum()),
                         "fpr": float(flagged[unseen].mean())},
        "training_tasks": {"prompts": int((~unseen).sum()),
                           "flagged": int(flagged[~unseen].sum()),
                           "fpr": float(flagged[~unseen].mean())},
        "rules_only_flagged": int((rb >= thr).sum()),
        "examples": [{"task": bundled.tasks[i], "text": bundled.prompts[i][:160],
                      "rules": sorted({h.type for h in rule_hits(bundled.prompts[i])})}
                     for i in np.nonzero(flagged)[0][:8]],
    }

    # cross-source: retrain without one source family's attacks, measure recall on all of them
    train = load_jailbreak_set("train")
    xt = featurizer.encode(list(train.texts))
    yt = np.asarray(train.labels)
    cross = {}
    families = {"pallms (both lists)": ("pallms-jailbreak", "pallms-injection"),
                "inthewild": ("inthewild", "gptfuzzer")}
    for name, fam in families.items():
        keep = np.array([s not in fam for s in train.sources])
        groups = [g for g, k in zip(train.groups, keep, strict=True) if k]
        oof = out_of_fold(xt[keep], yt[keep], groups, c=1.0)
        t = threshold_for_fpr(oof, yt[keep])
        model = _fit(xt[keep], yt[keep], 1.0)
        rows = [i for i, s in enumerate(train.sources) if s in fam] + \
               [len(train) + i for i, s in enumerate(test.sources) if s in fam]
        xa = np.vstack([xt, x])[rows]
        ta = [(list(train.texts) + list(test.texts))[i] for i in rows]
        p = model.predict_proba(xa)[:, 1]
        r = np.array([max((h.score for h in rule_hits(s)), default=0.0) for s in ta])
        cross[name] = {"rows": len(rows), "threshold": t,
                       "recall_classifier": float((p >= t).mean()),
                       "recall_classifier+rules": float((np.maximum(p, r) >= t).mean())}
    out["cross_source"] = cross
    return out


# -- PII: synthetic labelled set ----------------------------------------------------------------
def _luhn_complete(prefix: str) -> str:
    digits = [int(c) for c in prefix]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return prefix + str((10 - total % 10) % 10)


def _iban(rng: random.Random, country: str, length: int) -> str:
    bban = "".join(rng.choice(string.digits) for _ in range(length - 4))
    num = int("".join(str(int(ch, 36)) for ch in bban + country + "00"))
    return f"{country}{98 - num % 97:02d}{bban}"


_VD = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
       [2, 3, 4, 0, 1, 7, 8, 9, 5, 6], [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
       [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
       [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
       [8, 7, 6, 5, 9, 3, 2, 1, 0, 4], [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]]
_VP = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
       [5, 8, 0, 3, 7, 9, 6, 1, 4, 2], [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
       [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
       [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8]]
_VINV = [0, 4, 3, 2, 1, 5, 6, 7, 8, 9]


def _verhoeff_complete(prefix: str) -> str:
    c = 0
    for i, ch in enumerate(reversed(prefix)):
        c = _VD[c][_VP[(i + 1) % 8][int(ch)]]
    return prefix + str(_VINV[c])


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def _alnum(rng: random.Random, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _value(kind: str, rng: random.Random) -> str:
    """A valid value of ``kind`` in one of its usual written forms."""
    if kind == "EMAIL":
        user = rng.choice(["john.doe", "a.b-c", "support", "x_y+tag", "maria93"])
        dom = rng.choice(["example.com", "mail.example.co.uk", "uni-x.edu", "corp.io"])
        return f"{user}{rng.randint(0, 99)}@{dom}"
    if kind == "PHONE":
        form = rng.randrange(5)
        if form == 0:
            return f"+1 {rng.randint(201, 989)} {rng.randint(200, 999)} {_digits(rng, 4)}"
        if form == 1:
            return f"+44{rng.choice(['20', '161', '7700'])}{_digits(rng, 7)}"
        if form == 2:
            return f"({rng.randint(201, 989)}) {rng.randint(200, 999)}-{_digits(rng, 4)}"
        if form == 3:
            return f"{rng.randint(201, 989)}-{rng.randint(200, 999)}-{_digits(rng, 4)}"
        return f"07{_digits(rng, 3)} {_digits(rng, 6)}"
    if kind == "CREDIT_CARD":
        prefix, n = rng.choice([("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15),
                                ("37", 15), ("6011", 16), ("35", 16)])
        if prefix == "35":
            prefix = "3530"
        raw = _luhn_complete(prefix + _digits(rng, n - len(prefix) - 1))
        sep = rng.choice(["", " ", "-"])
        if n == 16 and sep:
            return sep.join(raw[i:i + 4] for i in range(0, 16, 4))
        return raw
    if kind == "IBAN":
        country, length = rng.choice([("DE", 22), ("GB", 22), ("FR", 27), ("NL", 18),
                                      ("ES", 24), ("IT", 27), ("BE", 16), ("CH", 21)])
        if country in ("GB", "NL"):   # bank code letters
            v = _iban(rng, country, length)
            bban = "".join(rng.choice(string.ascii_uppercase) for _ in range(4)) + v[8:]
            num = int("".join(str(int(ch, 36)) for ch in bban + country + "00"))
            v = f"{country}{98 - num % 97:02d}{bban}"
        else:
            v = _iban(rng, country, length)
        return " ".join(v[i:i + 4] for i in range(0, len(v), 4)) if rng.random() < 0.5 else v
    if kind == "US_SSN":
        area = rng.choice([a for a in range(1, 900) if a != 666])
        return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"
    if kind == "UK_NINO":
        first = rng.choice("ABCEGHJKLMNOPRSTWXYZ")
        second = rng.choice("ABCEGHJKLMNPRSTWXYZ")
        while first + second in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}:
            second = rng.choice("ABCEGHJKLMNPRSTWXYZ")
        d = _digits(rng, 6)
        suffix = rng.choice("ABCD")
        return f"{first}{second} {d[:2]} {d[2:4]} {d[4:]} {suffix}" if rng.random() < 0.5 \
            else f"{first}{second}{d}{suffix}"
    if kind == "ES_DNI":
        n = rng.randint(0, 99_999_999)
        if rng.random() < 0.3:
            lead = rng.randrange(3)
            n = rng.randint(0, 9_999_999)
            return f"{'XYZ'[lead]}{n:07d}{'TRWAGMYFPDXBNJZSQVHLCKE'[(lead * 10**7 + n) % 23]}"
        return f"{n:08d}{'TRWAGMYFPDXBNJZSQVHLCKE'[n % 23]}"
    if kind == "IN_AADHAAR":
        v = _verhoeff_complete(str(rng.randint(2, 9)) + _digits(rng, 10))
        return f"{v[:4]} {v[4:8]} {v[8:]}"
    if kind == "CA_SIN":
        v = _luhn_complete(str(rng.randint(1, 7)) + _digits(rng, 7))
        return f"{v[:3]}-{v[3:6]}-{v[6:]}"
    if kind == "IP_ADDRESS":
        if rng.random() < 0.6:
            return ".".join(str(rng.randint(0, 255)) for _ in range(4))
        groups = [f"{rng.randint(0, 65535):x}" for _ in range(8)]
        return "2001:db8::" + ":".join(groups[:3]) if rng.random() < 0.5 else ":".join(groups)
    if kind == "API_KEY":
        form = rng.randrange(4)
        if form == 0:
            return "sk-proj-" + _alnum(rng, 48)
        if form == 1:
            return "sk-ant-api03-" + _alnum(rng, 80, string.ascii_letters + string.digits + "_-")
        if form == 2:
            return "ghp_" + _alnum(rng, 36)
        return "AIza" + _alnum(rng, 35)
    if kind == "AWS_ACCESS_KEY":
        return "AKIA" + _alnum(rng, 16, string.ascii_uppercase + "234567")
    if kind == "JWT":
        import base64
        import json

        def seg(o: dict) -> str:
            return base64.urlsafe_b64encode(json.dumps(o).encode()).decode().rstrip("=")
        return f"{seg({'alg': 'HS256', 'typ': 'JWT'})}.{seg({'sub': _digits(rng, 8)})}." + \
            _alnum(rng, 43, string.ascii_letters + string.digits + "_-")
    if kind == "BEARER_TOKEN":
        return _alnum(rng, rng.randint(20, 60))
    if kind == "PRIVATE_KEY":
        body = "\n".join(_alnum(rng, 64, string.ascii_letters + string.digits + "+/")
                         for _ in range(rng.randint(2, 6)))
        label = rng.choice(["RSA ", "EC ", "OPENSSH ", ""])
        return f"-----BEGIN {label}PRIVATE KEY-----\n{body}\n-----END {label}PRIVATE KEY-----"
    raise KeyError(kind)


def _look_alike(rng: random.Random) -> str:
    """Text that must contain no finding: invalid check digits, never-issued ranges, numbers."""
    form = rng.randrange(9)
    if form == 0:   # Luhn-failing card
        v = _luhn_complete("4" + _digits(rng, 14))
        return v[:-1] + str((int(v[-1]) + rng.randint(1, 9)) % 10)
    if form == 1:   # IBAN with wrong check digits
        v = _iban(rng, "DE", 22)
        return v[:2] + f"{(int(v[2:4]) + rng.randint(1, 50)) % 100:02d}" + v[4:]
    if form == 2:
        return f"{rng.choice(['000', '666', '9' + _digits(rng, 2)])}-{_digits(rng, 2)}-" \
               f"{_digits(rng, 4)}"
    if form == 3:
        return f"{rng.randint(256, 999)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}." \
               f"{rng.randint(0, 255)}"
    if form == 4:
        return f"v{rng.randint(0, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 99)}"
    if form == 5:
        return f"{rng.randint(1990, 2030)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} " \
               f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
    if form == 6:
        return f"{rng.randint(1, 999)},{_digits(rng, 3)},{_digits(rng, 3)}"
    if form == 7:   # a DNI with the wrong letter
        n = rng.randint(0, 99_999_999)
        wrong = "TRWAGMYFPDXBNJZSQVHLCKE"[(n + rng.randint(1, 22)) % 23]
        return f"{n:08d}{wrong}"
    return _digits(rng, rng.randint(5, 9))


_TEMPLATES = (
    "Please update my record: {v}. Thanks!",
    "My details are {v} — can you check them?",
    "{v}",
    "Send the invoice to {v} by Friday.",
    "Here is what I have ({v}), is it right?",
    "Customer said: \"use {v} for this\" and hung up.",
    "log line 17: value={v}; status=ok",
)


def pii_synthetic(n_per_type: int = 150, n_negatives: int = 1500) -> tuple[list, list]:
    """Texts with their gold spans; seeded, so the set is the same on every run."""
    from polyroute.guards.pii import PII_TYPES

    rng = random.Random(SEED)
    items: list[tuple[str, list[tuple[int, int, str]]]] = []
    for kind in PII_TYPES:
        for _ in range(n_per_type):
            value = _value(kind, rng)
            template = rng.choice(_TEMPLATES)
            if kind == "BEARER_TOKEN":
                template = template.replace("{v}", "Authorization: Bearer {v}")
            before = template.split("{v}")[0]
            text = template.replace("{v}", value)
            items.append((text, [(len(before), len(before) + len(value), kind)]))
    for _ in range(n_negatives):
        items.append((rng.choice(_TEMPLATES).replace("{v}", _look_alike(rng)), []))
    rng.shuffle(items)
    return items, list(PII_TYPES)


def pii_section() -> dict:
    from polyroute.data import load_bundled
    from polyroute.guards.pii import find_pii

    items, kinds = pii_synthetic()
    tp: Counter = Counter()
    fp: Counter = Counter()
    fn: Counter = Counter()
    misses: dict[str, list[str]] = defaultdict(list)
    for text, gold in items:
        found = {(s.start, s.end, s.type) for s in find_pii(text)}
        for g in gold:
            if g in found:
                tp[g[2]] += 1
            else:
                fn[g[2]] += 1
                if len(misses[g[2]]) < 3:
                    misses[g[2]].append(text[:120])
        for f in found - set(gold):
            fp[f[2]] += 1
            if len(misses["fp:" + f[2]]) < 3:
                misses["fp:" + f[2]].append(text[:120])
    per_type = {}
    for k in kinds:
        p = tp[k] / (tp[k] + fp[k]) if tp[k] + fp[k] else None
        r = tp[k] / (tp[k] + fn[k]) if tp[k] + fn[k] else None
        per_type[k] = {"precision": p, "recall": r, "tp": tp[k], "fp": fp[k], "fn": fn[k]}
    total_tp, total_fp, total_fn = sum(tp.values()), sum(fp.values()), sum(fn.values())
    bundled = load_bundled()
    hits = [(i, s) for i, t in enumerate(bundled.prompts) for s in find_pii(t)]
    with_hits = sorted({i for i, _ in hits})
    return {
        "synthetic": {"texts": len(items), "positives": sum(1 for _, g in items if g),
                      "look_alike_negatives": sum(1 for _, g in items if not g),
                      "per_type": per_type,
                      "micro": {"precision": total_tp / (total_tp + total_fp),
                                "recall": total_tp / (total_tp + total_fn)},
                      "errors": dict(misses)},
        "bundled": {"prompts": len(bundled.prompts), "with_any_finding": len(with_hits),
                    "share": len(with_hits) / len(bundled.prompts),
                    "by_type": dict(Counter(s.type for _, s in hits)),
                    "examples": [{"task": bundled.tasks[i], "type": s.type,
                                  "value": bundled.prompts[i][s.start:s.end][:80]}
                                 for i, s in hits[:15]]},
    }


# -- latency ------------------------------------------------------------------------------------
def _percentiles(fn, items, repeats: int = 5) -> dict:
    """Per-text cost: each text is judged ``repeats`` times in a row and its fastest time kept,
    then percentiles are taken over texts. On a shared machine a single timing often includes
    the process being descheduled (a few ms whenever the load exceeds the cores), which says
    nothing about the guard; ``single_pass_*`` keeps the first timing of each text too."""
    best, first = [], []
    for item in items:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter_ns()
            fn(item)
            times.append(time.perf_counter_ns() - t0)
        best.append(min(times))
        first.append(times[0])
    b, f = np.asarray(best) / 1e6, np.asarray(first) / 1e6
    return {"p50_ms": float(np.percentile(b, 50)), "p99_ms": float(np.percentile(b, 99)),
            "max_ms": float(b.max()), "mean_ms": float(b.mean()),
            "single_pass_p50_ms": float(np.percentile(f, 50)),
            "single_pass_p99_ms": float(np.percentile(f, 99))}


def latency_section(featurizer) -> dict:
    from polyroute.data import load_bundled
    from polyroute.guards.jailbreak import JailbreakGuard, rule_hits
    from polyroute.guards.pii import PiiGuard, find_pii

    bundled = load_bundled()
    rng = np.random.default_rng(SEED)
    idx = rng.choice(len(bundled.prompts), size=1000, replace=False)
    texts = [bundled.prompts[i] for i in idx]
    emb = featurizer.encode(texts)
    pii, jb = PiiGuard(), JailbreakGuard()
    pairs = list(zip(texts, emb, strict=True))
    long_text = (" ".join(texts))[:8000]
    long_emb = featurizer.encode([long_text])[0]
    lengths = np.array([len(t) for t in texts])
    out = {"texts": len(texts), "chars_p50": float(np.median(lengths)),
           "chars_p99": float(np.percentile(lengths, 99)), "rows": {}}
    cases = {
        "pii: find_pii": (lambda t: find_pii(t), texts),
        "pii: guard check (find + redact)": (lambda t: pii.check(t), texts),
        "jailbreak: classifier (dot product on given embedding)":
            (lambda p: jb.model.score(p[1]), pairs),
        "jailbreak: rules": (lambda t: rule_hits(t), texts),
        "jailbreak: guard check (classifier + rules)": (lambda p: jb.check(p[0], p[1]), pairs),
    }
    for name, (fn, items) in cases.items():
        out["rows"][name] = _percentiles(fn, items)
    out["long_8000_chars"] = {
        "pii: guard check": _percentiles(lambda t: pii.check(t), [long_text] * 50),
        "jailbreak: guard check": _percentiles(lambda p: jb.check(p[0], p[1]),
                                               [(long_text, long_emb)] * 50),
    }
    return out


# -- report -------------------------------------------------------------------------------------
def _p(v: float | None) -> str:
    return fmt(v, ".3f")


def render(res: dict) -> str:
    jb, pii, lat, m = res["jailbreak"], res["pii"], res["latency"], res["machine"]
    lines = ["# Guards: accuracy and cost", "",
             f"Machine: {m['cpus']} CPUs, load average {m['load_average_1min_at_start']:.2f} at "
             f"start and {m['load_average_1min_at_end']:.2f} at the end (the CPUs are shared "
             f"with other work), Python {m['python']}, commit {m['commit']}, {m['date']}. "
             "Produced by `python benchmarks/guards.py`.", "",
             "## Jailbreak / prompt-injection detector", "",
             f"Held-out split of the shipped set (`polyroute/guards/_data/`): {jb['test_rows']} "
             f"texts, {jb['test_positives']} attacks and {jb['test_negatives']} benign "
             f"(role-play prompts from awesome-chatgpt-prompts whose near-duplicate groups were "
             f"held out, and every bundled prompt of the tasks never used in training: "
             f"{', '.join(jb['held_out_bundled_tasks'])}). Threshold {jb['threshold']:.3f} (the "
             "shipped one: lowest out-of-fold threshold with ≤ 0.5 % false positives on the "
             "benign training prompts). Embeddings: all-MiniLM-L6-v2, the router's.", "",
             "| detector | precision | recall | FPR | TP | FP | FN |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in jb["at_threshold"].items():
        lines.append(f"| {name} | {_p(r['precision'])} | {_p(r['recall'])} | "
                     f"{fmt(r['fpr'], '.4f')} | {r['tp']} | {r['fp']} | {r['fn']} |")
    lines += ["", f"Classifier ROC AUC {jb['auc']['classifier_roc_auc']:.4f}, average precision "
              f"{jb['auc']['classifier_average_precision']:.4f}. Precision depends on the share "
              "of attacks in the mix (here about one in "
              f"{round(jb['test_rows'] / jb['test_positives'])}); the false-positive rate does "
              "not.", "", "### Precision–recall by threshold", "",
              "| threshold | classifier P | classifier R | classifier FPR | +rules P | +rules R | "
              "+rules FPR |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for row in jb["pr_table"]:
        c, b = row["classifier"], row["classifier+rules"]
        lines.append(f"| {row['threshold']:.2f} | {_p(c['precision'])} | {_p(c['recall'])} | "
                     f"{fmt(c['fpr'], '.4f')} | {_p(b['precision'])} | {_p(b['recall'])} | "
                     f"{fmt(b['fpr'], '.4f')} |")
    lines += ["", "### Per source (held-out rows, classifier + rules at the threshold)", "",
              "| source | label | rows | flagged | flagged by rules |", "|---|---:|---:|---:|---:|"]
    for src, r in jb["per_source"].items():
        lines.append(f"| {src} | {r['label']} | {r['rows']} | {r['flagged_share']:.3f} | "
                     f"{r['flagged_by_rules_share']:.3f} |")
    lines += ["", "False positives among the held-out benign rows (first 160 characters):", ""]
    for ex in jb["false_positive_examples"]:
        lines.append(f"- `{ex['source']}` {ex['score']:.2f} {ex['rules'] or ''}: "
                     f"{ex['text'][:160]!r}")
    b = jb["bundled_fpr"]
    lines += ["", "### False positives on the bundled prompts", "",
              "| prompts | count | flagged | FPR |", "|---|---:|---:|---:|",
              f"| all | {b['all']['prompts']} | {b['all']['flagged']} | {b['all']['fpr']:.4f} |",
              f"| tasks never seen in training | {b['unseen_tasks']['prompts']} | "
              f"{b['unseen_tasks']['flagged']} | {b['unseen_tasks']['fpr']:.4f} |",
              f"| training tasks (seen) | {b['training_tasks']['prompts']} | "
              f"{b['training_tasks']['flagged']} | {b['training_tasks']['fpr']:.4f} |", "",
              f"Rules alone flag {b['rules_only_flagged']} bundled prompts. Flagged examples:", ""]
    for ex in b["examples"]:
        lines.append(f"- `{ex['task']}` {ex['rules'] or ''}: {ex['text'][:160]!r}")
    lines += ["", "### Cross-source check", "",
              "Retrained without one source family's attacks (same C, threshold re-chosen out "
              "of fold), recall on every row of that family (train and test):", "",
              "| left out | rows | recall classifier | recall classifier + rules |",
              "|---|---:|---:|---:|"]
    for name, r in jb["cross_source"].items():
        lines.append(f"| {name} | {r['rows']} | {r['recall_classifier']:.3f} | "
                     f"{r['recall_classifier+rules']:.3f} |")
    s = pii["synthetic"]
    lines += ["", "## PII detector", "",
              f"Synthetic labelled set generated here with seeded templates (seed {SEED}; "
              f"`pii_synthetic` in this script): {s['positives']} texts with one value each "
              "(valid check digits, several written forms per type, inside 7 sentence "
              f"templates) and {s['look_alike_negatives']} look-alikes that must yield nothing "
              "(Luhn-failing cards, IBANs with wrong check digits, never-issued SSNs, IPs with "
              "an octet > 255, versions, timestamps, thousands separators, DNIs with the wrong "
              "letter, bare digit runs). A finding counts only with the exact span and type. "
              "Synthetic values are what the patterns were written for, so these numbers are "
              "an upper bound on real text; the bundled-prompt row below is the real-text "
              "check for false positives. The set was also the development set: its first run "
              "found three span-boundary bugs (a Bearer token or an IP taking the sentence's "
              "full stop, a phone number taking a closing bracket), fixed in commit b19448b, "
              "and its second run zero-led ids read as phones after a 00 exit code, fixed in "
              "1f5a358, so it is no longer an unseen test.", "",
              "| type | precision | recall | TP | FP | FN |", "|---|---:|---:|---:|---:|---:|"]
    for k, r in s["per_type"].items():
        lines.append(f"| {k} | {_p(r['precision'])} | {_p(r['recall'])} | {r['tp']} | "
                     f"{r['fp']} | {r['fn']} |")
    lines.append(f"| **micro** | {_p(s['micro']['precision'])} | {_p(s['micro']['recall'])} "
                 f"| | | |")
    if s["errors"]:
        lines += ["", "Errors (first three per type; `fp:` = false positive):", ""]
        for k, exs in s["errors"].items():
            for ex in exs:
                lines.append(f"- {k}: {ex!r}")
    pb = pii["bundled"]
    lines += ["", f"Bundled prompts with any PII finding: {pb['with_any_finding']} of "
              f"{pb['prompts']} ({pb['share']:.4f}); by type: {pb['by_type'] or 'none'}.", ""]
    for ex in pb["examples"]:
        lines.append(f"- `{ex['task']}` {ex['type']}: {ex['value']!r}")
    lines += ["", "## Latency per text", "",
              f"{lat['texts']} bundled prompts drawn with seed {SEED} (median "
              f"{lat['chars_p50']:.0f} characters, p99 {lat['chars_p99']:.0f}), one at a time. "
              "p50 / p99 / max are over texts of each text's fastest of 5 back-to-back runs (its "
              "own cost); the single-pass columns are each text's first run, which on this "
              "shared, loaded machine includes the process being descheduled. The classifier "
              "is given the router's embedding, as in the gateway; the embedding itself (the "
              "router's, ~13 ms) is not counted.", "",
              "| guard | p50 | p99 | max | single-pass p50 | single-pass p99 |",
              "|---|---:|---:|---:|---:|---:|"]
    rows = list(lat["rows"].items()) + [(f"{k}, 8,000-character prompt", v)
                                        for k, v in lat["long_8000_chars"].items()]
    for name, r in rows:
        lines.append(f"| {name} | {r['p50_ms']:.4f} ms | {r['p99_ms']:.4f} ms | "
                     f"{r['max_ms']:.4f} ms | {r['single_pass_p50_ms']:.4f} ms | "
                     f"{r['single_pass_p99_ms']:.4f} ms |")
    return "\n".join(lines) + "\n"


def main() -> int:
    from polyroute.features import make_featurizer, with_cache

    featurizer = with_cache(make_featurizer("minilm"))
    res = {"machine": machine()}
    res["jailbreak"] = jailbreak_section(featurizer)
    res["pii"] = pii_section()
    res["latency"] = latency_section(featurizer)
    res["machine"]["load_average_1min_at_end"] = os.getloadavg()[0]
    write_json("guards.json", res)
    (RESULTS / "guards.md").write_text(render(res), encoding="utf-8")
    print(render(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
