"""`systems[NAME].attributes` on hand-made run directories: every count chosen by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from scipy.stats import fisher_exact

from reidbench.datasets.attributes import write_attributes
from reidbench.metrics.run import write_metrics
from reidbench.pairs import pairset_hash
from reidbench.tables import SCORES_SCHEMA, write_table
from tests.run_builders import labelled_pairs, score_row

LABELS = np.array([1, 0, 1, 0, 1, 0])  # pair i: person i with person i (same) or i + 5000
IDS = np.arange(LABELS.size, dtype=np.int64) * 3 + 7
ATTR = {"name": "attrs", "type": "lvlm", "scale": 100.0, "threshold": 50.0}
PLAIN = {"name": "plain", "type": "lvlm", "scale": 100.0, "threshold": 50.0}


def answer(a: dict[str, str], b: dict[str, str], decision: str, confidence: int) -> str:
    return json.dumps({"image_a": a, "image_b": b, "decision": decision, "confidence": confidence})


def row(i: int, system: str, **kw: Any) -> dict[str, Any]:
    return score_row(int(IDS[i]), system, **kw)


def write_run(root: Path, rows: list[dict[str, Any]], systems: list[dict], bootstrap: int = 200):
    pairs = labelled_pairs(LABELS, IDS)
    meta = {"seed": 0, "split": "query-gallery", "content_hash": pairset_hash(pairs)}
    write_table(root / "pairs.parquet", pairs, meta)
    write_table(root / "scores.parquet", pa.Table.from_pylist(rows, schema=SCORES_SCHEMA))
    manifest = {
        "reidbench_version": "0.1.0",
        "created": "2026-12-07T15:00:00Z",
        "config": {"name": "t", "bootstrap": bootstrap, "seed": 0},
        "dataset": {"dataset": "market1501", "root": str(root / "nowhere"), "synthetic": True},
        "pairs": meta,
        "systems": systems,
    }
    (root / "run.json").write_text(json.dumps(manifest))


# Truth: persons 0..5 wear black tops; their partners (5000+) white; hats only on 0 and 1.
TRUTH = {i: {"upper_colour": "black", "hat": "yes" if i < 2 else "no"} for i in range(6)}
TRUTH.update({5000 + i: {"upper_colour": "white"} for i in range(6)})


def said(i: int, score: float, a: dict[str, str], b: dict[str, str]) -> dict[str, Any]:
    """An answered pair: decision and confidence as the `attributes` prompt gives them."""
    decision = "same" if score >= 50 else "different"
    conf = int(max(score, 100 - score))
    return row(i, "attrs", score=score, decision=decision, raw=answer(a, b, decision, conf))


def scenario_rows() -> list[dict[str, Any]]:
    black_hat = {"upper_colour": "black", "hat": "yes"}
    rows = [
        # 0 same: all right, confident and right.
        said(0, 95.0, black_hat, black_hat),
        # 1 different: B's top read as black (misperceived); a confident false accept.
        said(1, 95.0, black_hat, {"upper_colour": "black"}),
        # 2 same: hat "unclear" on A (not answered), "Black" spelled loosely: right.
        said(
            2,
            70.0,
            {"upper_colour": "Black", "hat": "unclear"},
            {"upper_colour": "black", "hat": "no"},
        ),
        # 3 different: A's top "gray" (misperceived), not confident.
        said(3, 30.0, {"upper_colour": "gray", "hat": "no"}, {"upper_colour": "white"}),
        # 4 same: a refusal: asked, no attributes (annotated values there are not correct).
        row(4, "attrs", status="refusal", raw="I'm sorry, I can't help with that."),
        # 5 different: an API error: the run's problem, not the model's: left out.
        row(5, "attrs", status="api_error", raw=""),
    ]
    rows += [row(i, "plain", score=60.0, decision="same", raw='{"score": 60}') for i in range(6)]
    return rows


def test_counts_confusion_and_fisher_by_hand(tmp_path: Path) -> None:
    write_run(tmp_path, scenario_rows(), [ATTR, PLAIN])
    write_attributes(tmp_path / "attributes.json", TRUTH, "by hand")
    m = write_metrics(tmp_path)
    assert "attributes" not in m["systems"]["plain"]
    a = m["systems"]["attrs"]["attributes"]
    assert a["ground_truth"] == {"source": "by hand", "identities": 12}
    assert a["answers_with_attributes"] == 4
    up, hat = a["per_attribute"]["upper_colour"], a["per_attribute"]["hat"]
    # Upper colour over pairs 0-4 (10 images; same pairs show one person twice): wrong on
    # 1B and 3A, no answer on 4A/4B.
    assert (up["n"], up["answered"], up["correct"]) == (10, 8, 6)
    assert up["accuracy"] == pytest.approx(0.6) and up["accuracy_answered"] == 0.75
    assert up["n_identities"] == 7 and up["majority_rate"] == pytest.approx(0.8)
    assert up["truth_counts"] == {"black": 8, "white": 2}
    # Hat, annotated for persons 0-5 only: pair 0 two right, 1 A right, 2 A unclear and B
    # right, 3 A right, 4 two without answer.
    assert (hat["n"], hat["answered"], hat["correct"]) == (8, 5, 5)
    assert hat["ci"]["low"] <= hat["accuracy"] <= hat["ci"]["high"]
    conf = a["colour_confusion"]["upper_colour"]
    assert conf["truth"] == ["black", "white"]
    black = dict(zip(conf["answer"], conf["counts"][0], strict=True))
    white = dict(zip(conf["answer"], conf["counts"][1], strict=True))
    assert (black["black"], black["gray"], black["no answer"]) == (5, 1, 2)
    assert (white["white"], white["black"], white["no answer"]) == (1, 1, 0)
    assert "hat" not in a["colour_confusion"]
    # Catastrophic: pair 1 (confident false accept) and pair 4 (refusal; no attributes, so
    # not checked). Upper colour checked on pairs 0-3: misperceived 1 and 3.
    cat = a["with_catastrophic"]["by_attribute"]["upper_colour"]
    table = [[1, 0], [1, 2]]
    assert (cat["misperceived_catastrophic"], cat["catastrophic"]) == (1, 1)
    assert (cat["misperceived_other"], cat["other"]) == (1, 3)
    assert cat["p_value"] == pytest.approx(fisher_exact(table)[1])
    assert cat["odds_ratio"] is None  # a zero cell: infinite odds ratio, recorded as null
    assert (cat["rate_catastrophic"], cat["rate_other"]) == (1.0, pytest.approx(1 / 3))
    # Agreement (attributes answered on both sides): pair 0 2/2, 1 1/1 (B's hat missing),
    # 2 1/1 (A's hat unclear), 3 0/1; labels 1, 0, 1, 0.
    agree = a["agreement_score"]
    assert agree["n_pairs"] == 4 and agree["auc"] == pytest.approx(0.75)


def test_interval_resamples_identities(tmp_path: Path) -> None:
    write_run(tmp_path, scenario_rows(), [ATTR, PLAIN], bootstrap=300)
    write_attributes(tmp_path / "attributes.json", TRUTH, "by hand")
    m = write_metrics(tmp_path)
    up = m["systems"]["attrs"]["attributes"]["per_attribute"]["upper_colour"]
    from reidbench.metrics import stats

    # Upper-colour hits / images per person, people sorted: 0, 1, 2, 3, 4, 5001, 5003.
    hits = np.array([2, 1, 2, 0, 0, 0, 1], float)
    sizes = np.array([2, 1, 2, 1, 2, 1, 1], float)
    seed = m["run"]["protocol"]["bootstrap"]["seed"]
    draws = stats.bootstrap_indices(7, 300, seed)
    accs = [hits[d].sum() / sizes[d].sum() for d in draws]
    lo, hi = np.percentile(accs, [2.5, 97.5])
    assert (up["ci"]["low"], up["ci"]["high"]) == (pytest.approx(lo), pytest.approx(hi))


def test_without_ground_truth_or_bootstrap(tmp_path: Path) -> None:
    write_run(tmp_path, scenario_rows(), [{**ATTR, "prompt_id": "attributes"}, PLAIN], 0)
    a = write_metrics(tmp_path)["systems"]["attrs"]["attributes"]
    assert a["ground_truth"] is None and "not measured" in a["note"]
    assert "per_attribute" not in a
    write_attributes(tmp_path / "attributes.json", TRUTH, "by hand")
    a = write_metrics(tmp_path)["systems"]["attrs"]["attributes"]
    assert a["per_attribute"]["hat"]["ci"] is None  # bootstrap = 0


def test_an_attributes_system_that_never_answered_still_gets_its_block(tmp_path: Path) -> None:
    rows = [row(i, "attrs", status="refusal", raw="I can't help with that.") for i in range(6)]
    write_run(tmp_path, rows, [{**ATTR, "prompt_id": "attributes"}])
    write_attributes(tmp_path / "attributes.json", TRUTH, "by hand")
    a = write_metrics(tmp_path)["systems"]["attrs"]["attributes"]
    assert a["answers_with_attributes"] == 0
    assert a["per_attribute"]["upper_colour"]["accuracy"] == 0.0
    assert a["per_attribute"]["upper_colour"]["accuracy_answered"] is None


def test_grouped_mean_ci_equals_a_loop_over_resampled_groups() -> None:
    from reidbench.metrics import stats

    rng = np.random.default_rng(3)
    groups = rng.integers(0, 9, size=60) * 7 + 100  # 9 people, unequal image counts
    values = (rng.random(60) < 0.7).astype(float)
    got = stats.grouped_mean_ci(values, groups, 400, seed=11, level=0.9)
    uniq = np.unique(groups)
    means = []
    for draw in stats.bootstrap_indices(uniq.size, 400, 11):
        take = np.concatenate([np.flatnonzero(groups == uniq[j]) for j in draw])
        means.append(values[take].mean())
    lo, hi = np.percentile(means, [5, 95])
    assert (got["low"], got["high"]) == (pytest.approx(lo), pytest.approx(hi))
    assert got["n_valid"] == 400
    assert stats.grouped_mean_ci(values, groups, 0, seed=1) is None
    assert stats.grouped_mean_ci(np.zeros(0), np.zeros(0), 10, seed=1) is None
