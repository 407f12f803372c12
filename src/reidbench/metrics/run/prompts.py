"""Prompt sensitivity and verbalised vs probability scores, per model (issue #13 items 2, 5).

Several `[[systems]]` may ask one model with different prompts. They are grouped by model
(`provider:model` from run.json), and for each group this module reports the spread across
prompts (AUC and accuracy range), the paired tests between every two prompts (the entries
`comparisons.compare` already computed for the whole run: paired cluster bootstrap of the
AUC difference on identical pairs, McNemar), the repeat flip rate of each system
(metrics/consistency.py, asked with `repeats` > 1) with its temperature, and, where a
verbalised-score prompt and a `probability` prompt (yes-no-probability) share a model, the
verbalised-vs-probability AUC comparison. Nothing is recomputed: it regroups what the run's
system blocks and paired comparisons hold, so the numbers match the rest of metrics.json.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from reidbench.metrics.run.thresholds import Decided

VERBALISED = ("score", "decision")  # prompt answer kinds whose score the model states
POSITION_BIAS_NOTE = "no choice task in this run; position bias is measured by the choice task"
RULE = (
    "systems grouped by provider:model; spread = max - min over the group's systems on all "
    "pairs; paired tests from `comparisons` (identical pairs, dependence-aware bootstrap); "
    "flip rate = 1 - decision agreement between repeats (ab order), with the temperature asked"
)


def _answer_kind(info: Mapping[str, Any]) -> str:
    kind = info.get("prompt_answer")
    if isinstance(kind, str):
        return kind
    # Runs written before prompt_answer was recorded: the bundled probability prompt by id.
    return "probability" if info.get("prompt_id") == "yes-no-probability" else "score"


def _model_key(info: Mapping[str, Any]) -> str | None:
    if info.get("type") != "lvlm" or not info.get("model"):
        return None
    return f"{info.get('provider')}:{info.get('model')}"


def _flip(block: Mapping[str, Any]) -> tuple[float | None, int | None]:
    rs = (block.get("consistency") or {}).get("repeat_stability")
    if not isinstance(rs, Mapping) or rs.get("decision_agreement") is None:
        return None, None
    return 1.0 - float(rs["decision_agreement"]), rs.get("flipped_pairs")


def _member(name: str, block: Mapping[str, Any], distinct: int | None) -> dict[str, Any]:
    info = block.get("info") or {}
    params = info.get("params") or {}
    flip, flipped = _flip(block)
    return {
        "name": name,
        "prompt_id": info.get("prompt_id"),
        "prompt_version": info.get("prompt_version"),
        "prompt_answer": _answer_kind(info),
        "auc": block.get("auc"),
        "accuracy": block.get("accuracy"),
        "coverage": block.get("coverage"),
        "n_distinct_scores": distinct,
        "temperature": params.get("temperature"),
        "repeats": info.get("repeats"),
        "flip_rate": flip,
        "flipped_pairs": flipped,
    }


def _distinct(view: Decided) -> int:
    """Distinct scores among the primary answers: a verbalised 0-100 prompt gives a handful."""
    s = view.score[view.answered]
    return int(np.unique(s[np.isfinite(s)]).size)


def _spread(values: list[Any]) -> dict[str, Any] | None:
    nums = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(nums) < 2:
        return None
    return {"min": min(nums), "max": max(nums), "spread": max(nums) - min(nums)}


def _find(
    comps: Sequence[Mapping[str, Any]], a: str, b: str
) -> tuple[Mapping[str, Any], bool] | None:
    """The comparison entry of a and b, and whether it is stored as (b, a)."""
    for c in comps:
        if c.get("a") == a and c.get("b") == b:
            return c, False
        if c.get("a") == b and c.get("b") == a:
            return c, True
    return None


def _oriented(entry: Mapping[str, Any], swapped: bool) -> dict[str, Any]:
    """The entry's AUC test as first-named minus second-named."""
    d = dict(entry.get("auc_diff") or {})
    if swapped and d:
        d["auc_a"], d["auc_b"] = d.get("auc_b"), d.get("auc_a")
        for key in ("diff", "mean_diff"):
            if isinstance(d.get(key), (int, float)):
                d[key] = -d[key]
        ci = d.get("ci")
        if isinstance(ci, Mapping) and ci.get("low") is not None and ci.get("high") is not None:
            d["ci"] = {**ci, "low": -ci["high"], "high": -ci["low"]}
    return d


def _pairwise(members: list[dict[str, Any]], comps: Sequence[Mapping[str, Any]]) -> list[dict]:
    out = []
    for i, a in enumerate(members):
        for b in members[i + 1 :]:
            found = _find(comps, a["name"], b["name"])
            if found is None:
                continue
            entry, swapped = found
            out.append(
                {
                    "a": a["name"],
                    "b": b["name"],
                    "prompt_a": a["prompt_id"],
                    "prompt_b": b["prompt_id"],
                    "auc_diff": _oriented(entry, swapped),
                    "mcnemar": entry.get("mcnemar"),
                }
            )
    return out


def _versus(model: str, members: list[dict[str, Any]], comps: Sequence[Mapping[str, Any]]) -> list:
    out = []
    for v in (m for m in members if m["prompt_answer"] in VERBALISED):
        for p in (m for m in members if m["prompt_answer"] == "probability"):
            found = _find(comps, p["name"], v["name"])
            test = _oriented(*found) if found else None
            out.append(
                {
                    "model": model,
                    "verbalised": v["name"],
                    "verbalised_prompt": v["prompt_id"],
                    "probability": p["name"],
                    "probability_prompt": p["prompt_id"],
                    "auc_verbalised": test.get("auc_b") if test else None,
                    "auc_probability": test.get("auc_a") if test else None,
                    "n_distinct_verbalised": v["n_distinct_scores"],
                    "n_distinct_probability": p["n_distinct_scores"],
                    # probability minus verbalised, on the pairs both scored
                    "auc_diff": test,
                    "null_reasons": {} if test else {"auc_diff": "no paired comparison"},
                }
            )
    return out


def prompt_blocks(
    systems: Mapping[str, Mapping[str, Any]],
    comps: Sequence[Mapping[str, Any]],
    views: list[Decided],
) -> dict[str, Any]:
    """`prompt_sensitivity` (models asked with 2+ systems) and `verbalised_vs_probability`;
    empty when no model has two systems."""
    distinct = {v.name: _distinct(v) for v in views}
    groups: dict[str, list[dict[str, Any]]] = {}
    for name, block in systems.items():
        if block.get("evaluated_on"):  # a cascade's subset: not comparable on all pairs
            continue
        key = _model_key(block.get("info") or {})
        if key is not None:
            groups.setdefault(key, []).append(_member(name, block, distinct.get(name)))
    models = []
    versus: list[dict[str, Any]] = []
    for key, members in groups.items():
        if len(members) < 2:
            continue
        vs = _versus(key, members, comps)
        versus.extend(vs)
        models.append(
            {
                "model": key,
                "systems": members,
                "n_prompts": len({m["prompt_id"] for m in members}),
                "auc": _spread([m["auc"] for m in members]),
                "accuracy": _spread([m["accuracy"] for m in members]),
                "comparisons": _pairwise(members, comps),
                "verbalised_vs_probability": vs,
                "position_bias": None,
                "null_reasons": {"position_bias": POSITION_BIAS_NOTE},
            }
        )
    if not models:
        return {}
    return {
        "prompt_sensitivity": {"rule": RULE, "models": models},
        "verbalised_vs_probability": versus,
    }


def fill_position_bias(sensitivity: dict[str, Any], tasks: Mapping[str, Any]) -> None:
    """Fill each model's `position_bias` from the choice tasks its systems answered: per
    system and task, the chi-square tests the choice metrics computed (not recomputed)."""
    for model in sensitivity.get("models") or []:
        found: list[dict[str, Any]] = []
        for member in model.get("systems") or []:
            for task_name, block in tasks.items():
                if not isinstance(block, Mapping) or block.get("kind") != "choice":
                    continue
                system = (block.get("systems") or {}).get(member["name"])
                if isinstance(system, Mapping) and system.get("position_bias"):
                    found.append(
                        {"system": member["name"], "task": task_name, **system["position_bias"]}
                    )
        if found:
            model["position_bias"] = found
            model.get("null_reasons", {}).pop("position_bias", None)
