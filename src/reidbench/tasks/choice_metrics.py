"""metrics.json `tasks.<name>` for a multiple-choice task (docs/tasks.md, Multiple choice).

Per system, on the first repeat of every item (identical items for every system):
- accuracy, with a cluster bootstrap interval over query identities (items of one person
  are not independent: some people are easy), next to chance = 1/N;
- accuracy per true slot, and the answer distribution (slots named, over answered items);
- position bias: a chi-square goodness-of-fit test of the slots named against uniform.
  The true slot is balanced over slots, so a system without a position preference names
  each slot equally often in expectation, right or wrong; a second test (chi-square on the
  slot x right/wrong table) asks whether accuracy depends on where the answer sits;
- statuses: refusal, parse_error, api_error, ... count as wrong answers, never as right;
- repeat agreement, when a system was asked each item more than once.
Between systems, McNemar's exact test on the same items (and its identity-clustered
version, as for pairs).
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import chi2_contingency, chisquare

from reidbench.metrics import stats
from reidbench.metrics.clusters import as_pair_clusters
from reidbench.tables import read_table
from reidbench.tasks.choice_items import ChoiceItems, read_items
from reidbench.tasks.registry import MetricsSettings


def _num(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def accuracy_interval(
    correct: np.ndarray, clusters: np.ndarray, settings: MetricsSettings
) -> dict[str, Any] | None:
    """Percentile interval of accuracy under a bootstrap that resamples clusters (identities),
    each drawn cluster bringing all its items."""
    if correct.size == 0 or settings.n_boot <= 0:
        return None
    pc = as_pair_clusters(clusters, correct.size)
    values = []
    for w in stats.cluster_weight_chunks(pc, settings.n_boot, settings.seed):
        total = w.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            values.append((w @ correct.astype(np.float64)) / total)
    return stats.percentile_ci(np.concatenate(values), settings.level)


def position_tests(answers: np.ndarray, truth: np.ndarray, n: int) -> dict[str, Any]:
    """Chi-square of the answered slots vs uniform, and of accuracy by true slot."""
    counts = np.bincount(answers[answers >= 0], minlength=n)
    out: dict[str, Any] = {"answer_counts": counts.tolist()}
    if counts.sum() > 0:
        res = chisquare(counts)
        out["uniform_answers"] = {
            "test": "chi-square goodness of fit of the slots named vs uniform (answered items)",
            "chi2": _num(res.statistic),
            "df": n - 1,
            "p_value": _num(res.pvalue),
            "n": int(counts.sum()),
        }
    right = answers == truth
    table = np.array(
        [[int(np.sum(right & (truth == k))), int(np.sum(~right & (truth == k)))] for k in range(n)]
    )
    keep = table.sum(axis=1) > 0
    if keep.sum() >= 2 and (table[keep].sum(axis=0) > 0).all():
        chi2, p, dof, _ = chi2_contingency(table[keep], correction=False)
        out["accuracy_by_slot"] = {
            "test": "chi-square of true slot x right/wrong (every item; non-answers wrong)",
            "chi2": _num(chi2),
            "df": int(dof),
            "p_value": _num(p),
        }
    return out


def system_block(
    rows: Mapping[str, np.ndarray], items: ChoiceItems, settings: MetricsSettings
) -> dict[str, Any]:
    """One system's block from its answer rows (already aligned to the items)."""
    n = items.n_candidates
    truth = items.true_slot
    answers = rows["answer"]
    correct = rows["correct"]
    statuses = rows["status"]
    uniq, cnt = np.unique(statuses, return_counts=True)
    per_slot = []
    for k in range(n):
        at = truth == k
        per_slot.append(
            {
                "slot": k,
                "n": int(at.sum()),
                "accuracy": _num(correct[at].mean()) if at.any() else None,
                "answered": int(np.sum(answers == k)),
            }
        )
    return {
        "n_items": int(truth.size),
        "accuracy": _num(correct.mean()) if truth.size else None,
        "accuracy_ci": accuracy_interval(correct, items.query_pid, settings),
        "chance": 1.0 / n,
        "n_correct": int(correct.sum()),
        "n_answered": int(np.sum(statuses == "ok")),
        "statuses": {str(s): int(c) for s, c in zip(uniq, cnt, strict=True)},
        "per_slot": per_slot,
        "position_bias": position_tests(answers, truth, n),
    }


def _aligned(table: Any, items: ChoiceItems) -> dict[str, dict[str, np.ndarray]]:
    """Rows per repeat, in item order; a missing row is an unanswered item (wrong)."""
    ids = items.table.column("item_id").to_pylist()
    where = {i: k for k, i in enumerate(ids)}
    rep = np.asarray(table.column("repeat").to_numpy(zero_copy_only=False))
    out: dict[str, dict[str, np.ndarray]] = {}
    for r in sorted(set(rep.tolist())):
        answer = np.full(len(ids), -1, dtype=np.int64)
        status = np.array(["missing"] * len(ids), dtype=object)
        sel = np.flatnonzero(rep == r)
        item_col = table.column("item_id").to_pylist()
        ans_col = table.column("answer").to_pylist()
        st_col = table.column("status").to_pylist()
        for k in sel.tolist():
            if item_col[k] not in where:
                continue
            j = where[item_col[k]]
            status[j] = st_col[k]
            if st_col[k] == "ok" and ans_col[k] is not None:
                answer[j] = int(ans_col[k])
        out[str(r)] = {
            "answer": answer,
            "status": status.astype(str),
            "correct": answer == items.true_slot,
        }
    return out


def metrics(folder: Path, task: Mapping[str, Any], settings: MetricsSettings) -> dict[str, Any]:
    """The task's block for metrics.json (see the module docstring)."""
    items = read_items(folder / "items.parquet")
    systems: dict[str, Any] = {}
    first: dict[str, dict[str, np.ndarray]] = {}
    answer_dir = folder / "systems"
    for path in sorted(answer_dir.glob("*.parquet")) if answer_dir.is_dir() else []:
        table = read_table(path)
        if table.num_rows == 0:
            continue
        name = str(table.column("system")[0].as_py())
        reps = _aligned(table, items)
        first[name] = reps[min(reps, key=int)]
        block = system_block(first[name], items, settings)
        block["cost_usd"] = _num(
            float(np.nansum(np.asarray(table.column("cost_usd").to_pylist(), dtype=float)))
        )
        if len(reps) > 1:
            stack = np.stack([reps[r]["answer"] for r in sorted(reps, key=int)])
            block["repeats"] = {
                "n_repeats": len(reps),
                "all_agree": _num(np.mean((stack == stack[0]).all(axis=0))),
                "accuracy_per_repeat": [
                    _num(reps[r]["correct"].mean()) for r in sorted(reps, key=int)
                ],
            }
        systems[name] = block
    comparisons = []
    for a, b in combinations(sorted(first), 2):
        ca, cb = first[a]["correct"], first[b]["correct"]
        exact = stats.mcnemar(ca, cb)
        clustered = stats.mcnemar(ca, cb, clusters=items.query_pid)
        comparisons.append(
            {
                "a": a,
                "b": b,
                "accuracy_a": _num(ca.mean()),
                "accuracy_b": _num(cb.mean()),
                "mcnemar_exact": exact,
                "mcnemar_clustered": clustered,
            }
        )
    meta = {k: v for k, v in items.meta.items() if k not in ("request",)}
    return {
        "kind": "choice",
        "n_items": len(items),
        "n_candidates": items.n_candidates,
        "n_identities": int(np.unique(items.query_pid).size),
        "true_slot_counts": np.bincount(items.true_slot, minlength=items.n_candidates).tolist(),
        "items": meta,
        "systems": systems,
        "comparisons": comparisons,
    }
