"""`systems[NAME].attributes`: how well an LVLM perceives attributes, and whether its
misperceptions go with catastrophic answers (issue #13 item 6; docs/tasks.md, Attributes).

An observation is one attribute of one image of a primary answer (order "ab", repeat
0) whose identity has a ground-truth value for it. Its prediction is the model's value
(`judges/attribute_answers.py`); "unclear", an unreadable value and an answer without
attributes are not correct (coverage says how many were answered). Only answers the
model gave count (statuses ok, refusal, safety_block, parse_error): API errors, budget
stops and missing rows describe the run, not the model.

Intervals resample identities, not images: the images of one person share their
ground truth and their look, so they are not independent (one-way cluster bootstrap
through `Bootstrap.grouped_mean_ci`, percentile interval).

Misperception vs catastrophic answers: per pair, an attribute is misperceived when
an answered value of either image differs from the truth. The 2x2 table misperceived
x catastrophic (refusal, safety block, parse error or confident wrong answer, as in
`metrics.failures`) gets Fisher's exact test (scipy). Fisher treats pairs as
independent; pairs share people, so read its p-value as descriptive.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import fisher_exact

from reidbench.datasets.attributes import (
    ATTRIBUTES_FILE,
    COLOUR_ATTRIBUTES,
    VOCABULARY,
    Truth,
    read_attributes_json,
)
from reidbench.judges.attribute_answers import OTHER, UNCLEAR, UNREADABLE, read_attribute_answer
from reidbench.metrics import failures as fail
from reidbench.metrics._util import fnum
from reidbench.metrics.run.bootstrap import Bootstrap
from reidbench.rundir import RunDir, SystemView
from reidbench.rundir.model import Pairs

MODEL_ANSWERED = ("ok", "refusal", "safety_block", "parse_error")
NO_ANSWER = "no answer"  # confusion column: unclear, unreadable or no attribute answer


def run_truth(run: RunDir) -> tuple[Truth, str] | None:
    """The ground truth recorded in the run directory, else the synthetic dataset's own
    file at the root recorded in run.json (runs made before the copy existed)."""
    own = run.path / ATTRIBUTES_FILE
    if own.is_file():
        return read_attributes_json(own)
    dataset = run.run.get("dataset") or {}
    if dataset.get("synthetic") and dataset.get("root"):
        theirs = Path(str(dataset["root"])) / ATTRIBUTES_FILE
        if theirs.is_file():
            return read_attributes_json(theirs)
    return None


def _observations(
    view: SystemView, pairs: Pairs, truth: Truth
) -> tuple[list[tuple[Any, ...]], np.ndarray, int] | None:
    """(observations, per-pair parsed sides or None, answers with attributes) or None when
    the system neither uses the `attributes` prompt nor gave any attribute answer."""
    parsed = [read_attribute_answer(r) for r in view.raw]
    asked_for = view.entry.get("prompt_id") == "attributes"
    if not asked_for and not any(p is not None for p in parsed):
        return None
    asked = np.isin(view.status.astype(str), MODEL_ANSWERED)
    obs: list[tuple[Any, ...]] = []  # (pair row, side, pid, attribute, truth, prediction)
    for i in np.flatnonzero(asked):
        sides = parsed[i]
        for s, pid in enumerate((int(pairs.pid_a[i]), int(pairs.pid_b[i]))):
            row = truth.get(pid)
            if not row:
                continue
            for attr, value in row.items():
                pred = sides[s].get(attr, UNREADABLE) if sides is not None else UNREADABLE
                obs.append((int(i), s, pid, attr, value, pred))
    n_read = sum(1 for i in np.flatnonzero(asked) if parsed[i] is not None)
    return obs, np.asarray(parsed, dtype=object), n_read


def _answered(pred: str) -> bool:
    return pred not in (UNCLEAR, UNREADABLE)


def _per_attribute(obs: list[tuple[Any, ...]], boot: Bootstrap) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attr in VOCABULARY:
        mine = [o for o in obs if o[3] == attr]
        if not mine:
            continue
        correct = np.array([o[5] == o[4] for o in mine])
        answered = np.array([_answered(o[5]) for o in mine])
        ids = np.array([o[2] for o in mine])
        truths = [o[4] for o in mine]
        values, counts = np.unique(truths, return_counts=True)
        n, n_ans, n_ok = len(mine), int(answered.sum()), int(correct.sum())
        out[attr] = {
            "n": n,
            "n_identities": int(np.unique(ids).size),
            "answered": n_ans,
            "correct": n_ok,
            "coverage": fnum(n_ans / n),
            "accuracy": fnum(n_ok / n),
            "ci": boot.grouped_mean_ci(correct, ids),  # people resampled, not images
            "accuracy_answered": fnum(n_ok / n_ans) if n_ans else None,
            "majority_rate": fnum(counts.max() / n),
            "truth_counts": {str(v): int(c) for v, c in zip(values, counts, strict=True)},
        }
    return out


def _confusion(obs: list[tuple[Any, ...]]) -> dict[str, Any]:
    """Colour confusion: rows the true colour, columns the answer (OTHER, NO_ANSWER last)."""
    out: dict[str, Any] = {}
    for attr in COLOUR_ATTRIBUTES:
        mine = [o for o in obs if o[3] == attr]
        if not mine:
            continue
        rows = list(VOCABULARY[attr])
        cols = [*rows, OTHER, NO_ANSWER]
        m = np.zeros((len(rows), len(cols)), dtype=np.int64)
        for o in mine:
            pred = o[5] if _answered(o[5]) else NO_ANSWER
            m[rows.index(o[4]), cols.index(pred)] += 1
        keep = m.sum(axis=1) > 0  # colours no identity wears: no row
        out[attr] = {
            "truth": [r for r, k in zip(rows, keep, strict=True) if k],
            "answer": cols,
            "counts": m[keep].tolist(),
        }
    return out


def _fisher(mis: np.ndarray, cat: np.ndarray) -> dict[str, Any]:
    a, b = int(np.sum(mis & cat)), int(np.sum(~mis & cat))
    c, d = int(np.sum(mis & ~cat)), int(np.sum(~mis & ~cat))
    odds, p = fisher_exact([[a, b], [c, d]]) if (a + b) and (c + d) else (np.nan, np.nan)
    return {
        "catastrophic": a + b,
        "misperceived_catastrophic": a,
        "rate_catastrophic": fnum(a / (a + b)) if a + b else None,
        "other": c + d,
        "misperceived_other": c,
        "rate_other": fnum(c / (c + d)) if c + d else None,
        "odds_ratio": fnum(odds),
        "p_value": fnum(p),
    }


def _with_catastrophic(
    obs: list[tuple[Any, ...]], view: SystemView, pairs: Pairs
) -> dict[str, Any]:
    fa, fr = fail.confident_wrong(pairs.label, view.score, view.scale, ok=view.status == "ok")
    cat = np.isin(view.status.astype(str), fail.CATASTROPHIC) | fa | fr
    n = pairs.n
    by_attr: dict[str, Any] = {}
    any_checked, any_mis = np.zeros(n, bool), np.zeros(n, bool)
    for attr in VOCABULARY:
        checked, mis = np.zeros(n, bool), np.zeros(n, bool)
        for i, _s, _pid, a, value, pred in obs:
            if a == attr and _answered(pred):
                checked[i] = True
                mis[i] |= pred != value
        if not checked.any():
            continue
        by_attr[attr] = _fisher(mis[checked], cat[checked])
        any_checked |= checked
        any_mis |= mis
    return {
        "definition": "catastrophic: refusal, safety block, parse error or confident wrong "
        "answer (metrics.failures); misperceived: an answered value of either image differs "
        "from the ground truth; pairs where the attribute was answered for an annotated image",
        "test": "Fisher's exact test, two-sided (scipy.stats.fisher_exact); treats pairs as "
        "independent, which pairs sharing people are not: descriptive",
        "any": _fisher(any_mis[any_checked], cat[any_checked]) if any_checked.any() else None,
        "by_attribute": by_attr,
    }


def _agreement(parsed: np.ndarray, view: SystemView, pairs: Pairs) -> dict[str, Any]:
    """Attribute agreement between the two images as a same/different score: the share of
    attributes answered for both images whose values match (a second way to form the
    system's score; its AUC next to the stated decision's)."""
    from sklearn.metrics import roc_auc_score

    agree = np.full(pairs.n, np.nan)
    for i, sides in enumerate(parsed):
        if sides is None:
            continue
        both = [a for a in VOCABULARY if _answered(sides[0][a]) and _answered(sides[1][a])]
        if both:
            agree[i] = np.mean([sides[0][a] == sides[1][a] for a in both])
    ok = np.isfinite(agree)
    y = pairs.label[ok]
    auc = roc_auc_score(y, agree[ok]) if np.unique(y).size == 2 else None
    stated = np.isfinite(view.score) & ok
    y2 = pairs.label[stated]
    auc_stated = roc_auc_score(y2, view.score[stated]) if np.unique(y2).size == 2 else None
    return {
        "n_pairs": int(ok.sum()),
        "auc": fnum(auc),
        "auc_stated_on_same_pairs": fnum(auc_stated),
        "rule": "share of attributes answered for both images with equal values",
    }


def attributes_block(
    view: SystemView, pairs: Pairs, truth: Truth | None, source: str, boot: Bootstrap
) -> dict[str, Any] | None:
    """The `attributes` block of one system, or None when it is not an attribute reader
    (neither the `attributes` prompt nor any answer with attribute values)."""
    found = _observations(view, pairs, truth or {})
    if found is None:
        return None
    obs, parsed, n_read = found
    out: dict[str, Any] = {
        "answers_with_attributes": n_read,
        "rows": "primary answers (order ab, repeat 0) the model gave",
        "agreement_score": _agreement(parsed, view, pairs),
    }
    if truth is None:
        out["ground_truth"] = None
        out["note"] = "no attribute ground truth for this dataset; accuracy not measured"
        return out
    out["ground_truth"] = {"source": source, "identities": len(truth)}
    out["n_observations"] = len(obs)
    out["per_attribute"] = _per_attribute(obs, boot)
    out["colour_confusion"] = _confusion(obs)
    out["with_catastrophic"] = _with_catastrophic(obs, view, pairs)
    return out


def attribute_blocks(run: RunDir, boot: Bootstrap) -> dict[str, dict[str, Any]]:
    """`attributes` blocks of every LVLM system that answered with attribute values."""
    lvlms = {n: v for n, v in run.systems.items() if v.kind == "lvlm"}
    if not lvlms:
        return {}
    found = run_truth(run)
    truth, source = found if found is not None else (None, "")
    out = {}
    for name, view in lvlms.items():
        block = attributes_block(view, run.pairs, truth, source, boot)
        if block is not None:
            out[name] = block
    return out
