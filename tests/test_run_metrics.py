"""metrics.json from a run directory: every number checked against scikit-learn or brute force."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from reidbench.errors import UserError
from reidbench.metrics import verification as ver
from reidbench.metrics.run import compute_metrics, write_metrics
from reidbench.pairs import pairset_hash
from reidbench.rundir import open_run
from reidbench.tables import SCORES_SCHEMA, write_table
from tests.run_builders import brute_threshold, crossfit_reference, labelled_pairs, score_row

N = 120


def _row(pair_id: int, system: str, **kw: Any) -> dict[str, Any]:
    return score_row(pair_id, system, **{"latency_s": 1.0, "attempts": 1, **kw})


def _write_run(
    root: Path,
    labels: np.ndarray,
    systems: list[dict[str, Any]],
    rows: list[dict[str, Any]],
    *,
    triplets: list[list[int]] | None = None,
    config: dict[str, Any] | None = None,
) -> Path:
    n = labels.size
    ids = np.arange(n, dtype=np.int64) * 3 + 7  # ids unrelated to row numbers
    pairs = labelled_pairs(
        labels,
        ids,
        path_a=[f"query/{i:04d}_c1.jpg" for i in range(n)],
        path_b=[f"gallery/{i:04d}_c2.jpg" for i in range(n)],
    )
    meta = {"seed": 0, "split": "query-gallery", "content_hash": pairset_hash(pairs)}
    if triplets is not None:
        meta["triplets"] = triplets
    write_table(root / "pairs.parquet", pairs, meta)
    scores = (
        pa.Table.from_pylist(rows, schema=SCORES_SCHEMA) if rows else SCORES_SCHEMA.empty_table()
    )
    write_table(root / "scores.parquet", scores)
    manifest = {
        "reidbench_version": "0.1.0",
        "created": "2026-11-28T15:00:00Z",
        "config": {"name": "t", "bootstrap": 50, "seed": 0, **(config or {})},
        "dataset": {"dataset": "market1501", "root": "/data", "synthetic": True},
        "pairs": meta,
        "systems": systems,
    }
    (root / "run.json").write_text(json.dumps(manifest))
    return root


def _pair_ids(n: int = N) -> np.ndarray:
    return np.arange(n, dtype=np.int64) * 3 + 7


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    """Three systems: an LVLM with failures, both orders and repeats; an embedder; a
    decision-only LVLM. Returns the run dir, the metrics and the raw arrays used."""
    root = tmp_path_factory.mktemp("run")
    rng = np.random.default_rng(42)
    labels = (rng.random(N) < 0.45).astype(np.int64)
    ids = _pair_ids()
    # LVLM: 0-100 integer scores, 10 refusals, 4 parse errors, 2 safety blocks
    lv = np.clip(np.round(50 + 30 * (labels - 0.5) + rng.normal(0, 25, N)), 0, 100)
    status = np.array(["ok"] * N, dtype=object)
    status[rng.choice(N, 16, replace=False)] = (
        ["refusal"] * 10 + ["parse_error"] * 4 + ["safety_block"] * 2
    )
    emb = np.clip(0.5 + 0.15 * (labels - 0.5) + rng.normal(0, 0.1, N), 0, 1)
    dec_only = np.where(rng.random(N) < 0.8, labels, 1 - labels)  # 80% right
    rows = []
    for i, pid in enumerate(ids):
        ok = status[i] == "ok"
        rows.append(
            _row(
                int(pid),
                "gpt",
                score=float(lv[i]) if ok else None,
                decision=("same" if lv[i] >= 50 else "different") if ok else "unknown",
                status=str(status[i]),
                raw=f"answer {i} <script>x</script>",
                error=None if ok else "no usable answer",
                tokens_in=1000,
                tokens_out=50,
                cost_usd=0.003,
                latency_s=float(1 + i % 7),
                cached=bool(i % 10 == 0),
                attempts=0 if i % 10 == 0 else 1,
            )
        )
        if ok:  # the other order and a repeat, with some noise
            rows.append(
                _row(
                    int(pid),
                    "gpt",
                    score=float(np.clip(lv[i] + (i % 5) * 4 - 8, 0, 100)),
                    order="ba",
                    cost_usd=0.003,
                    tokens_in=1000,
                    tokens_out=50,
                )
            )
            rows.append(
                _row(
                    int(pid),
                    "gpt",
                    score=float(np.clip(lv[i] + (i % 3) * 3 - 3, 0, 100)),
                    repeat=1,
                    cost_usd=0.003,
                    tokens_in=1000,
                    tokens_out=50,
                )
            )
        rows.append(_row(int(pid), "emb", score=float(emb[i]), latency_s=None, attempts=0))
        rows.append(
            _row(
                int(pid),
                "yesno",
                decision="same" if dec_only[i] else "different",
                raw="yes" if dec_only[i] else "no",
            )
        )
    systems = [
        # the user fixed gpt's threshold in the config: it is used as is, not cross-fitted
        {
            "name": "gpt",
            "type": "lvlm",
            "scale": 100.0,
            "threshold": 50.0,
            "threshold_fixed": True,
            "model": "gpt-4o",
        },
        {"name": "emb", "type": "reid", "scale": 1.0, "threshold": None, "model": "handcrafted"},
        {"name": "yesno", "type": "lvlm", "scale": 100.0, "threshold": 50.0},
    ]
    trip = [[int(ids[3 * k]), int(ids[3 * k + 1]), int(ids[3 * k + 2])] for k in range(15)]
    _write_run(root, labels, systems, rows, triplets=trip)
    (root / "retrieval.json").write_text(
        json.dumps({"emb": {"rank1": 0.5, "mAP": 0.25, "cmc": [0.5, 0.75, 1.0]}, "other": {}})
    )
    metrics = write_metrics(root)
    return {
        "root": root,
        "m": metrics,
        "labels": labels,
        "ids": ids,
        "lv": lv,
        "status": status,
        "emb": emb,
        "dec_only": dec_only,
        "triplets": trip,
    }


def test_metrics_json_is_strict_and_equals_return_value(scenario):
    text = (scenario["root"] / "metrics.json").read_text()

    def bad_constant(name):
        raise AssertionError(f"non-strict JSON constant {name}")

    on_disk = json.loads(text, parse_constant=bad_constant)
    assert on_disk == json.loads(json.dumps(scenario["m"]))
    assert on_disk["format"] == "reidbench.metrics/1"
    assert on_disk["run"]["synthetic"] is True
    assert on_disk["run"]["pairs"]["n_pairs"] == N
    assert on_disk["run"]["pairs"]["n_triplets"] == 15
    assert "triplets" not in on_disk["run"]["pairs"]["meta"]
    assert list(on_disk["systems"]) == ["gpt", "emb", "yesno"]


def test_lvlm_headline_equals_sklearn(scenario):
    m, y, lv, status = (
        scenario["m"]["systems"]["gpt"],
        scenario["labels"],
        scenario["lv"],
        scenario["status"],
    )
    ok = status == "ok"
    yy, ss = y[ok], lv[ok]
    pred = ss >= 50
    assert m["threshold"] == 50.0 and m["threshold_source"] == "fixed"
    assert m["n_pairs"] == N and m["n_answered"] == ok.sum() and m["coverage"] == ok.mean()
    assert m["accuracy"] == pytest.approx(accuracy_score(yy, pred))
    assert m["precision"] == pytest.approx(precision_score(yy, pred))
    assert m["recall"] == pytest.approx(recall_score(yy, pred))
    assert m["f1"] == pytest.approx(f1_score(yy, pred))
    assert m["auc"] == pytest.approx(roc_auc_score(yy, ss))
    assert m["pr_auc"] == pytest.approx(average_precision_score(yy, ss))
    point = ver.ranking_metrics(yy, ss)
    assert m["eer"] == pytest.approx(point["eer"])
    assert m["tar_at_far_1e-2"] == pytest.approx(point["tar_at_far_1e-2"])
    assert m["confusion"]["matrix"] == confusion_matrix(yy, pred, labels=[0, 1]).tolist()
    d = m["distributions"]
    assert d["same"]["mean"] == pytest.approx(ss[yy == 1].mean())
    assert d["different"]["median"] == pytest.approx(np.median(ss[yy == 0]))
    assert sum(d["histogram"]["same"]) == (yy == 1).sum()
    assert m["curves"]["roc"]["fpr"][0] == 0.0 and m["curves"]["pr"]["recall"][-1] == 0.0
    assert m["curves"]["calibration"]["brier"] == pytest.approx(np.mean((ss / 100 - yy) ** 2))
    assert m["info"]["model"] == "gpt-4o"
    assert m["retrieval"] is None


@pytest.mark.slow
def test_cis_cover_point_estimates_and_are_deterministic(scenario):
    m = scenario["m"]["systems"]["gpt"]
    ci = m["ci"]
    assert ci["resamples"] == 50 and ci["seed"] == 0 and ci["level"] == 0.95
    for name in (
        "accuracy",
        "precision",
        "recall",
        "f1",
        "auc",
        "pr_auc",
        "eer",
        "tar_at_far_1e-2",
    ):
        iv = ci["intervals"][name]
        assert iv["low"] <= iv["high"] and iv["n_valid"] == 50
    assert ci["intervals"]["auc"]["low"] < m["auc"] < ci["intervals"]["auc"]["high"]
    again = compute_metrics(scenario["root"])
    assert again == json.loads(json.dumps(scenario["m"]))
    other_seed = compute_metrics(scenario["root"], seed=1)
    assert other_seed["systems"]["gpt"]["ci"] != m["ci"]
    assert other_seed["systems"]["gpt"]["auc"] == m["auc"]


def test_embedder_threshold_chosen_on_calibration_half(scenario):
    m, y, emb, _ids = (
        scenario["m"]["systems"]["emb"],
        scenario["labels"],
        scenario["emb"],
        scenario["ids"],
    )
    halves = open_run(scenario["root"]).halves()
    half = halves.half
    pred, ta, tb = crossfit_reference(y, emb, np.ones(y.size, bool), half)
    assert m["threshold_source"] == "crossfit_accuracy"
    assert m["threshold"] == pytest.approx(ta)
    assert m["threshold_crossfit"]["A"]["threshold"] == pytest.approx(ta)
    assert m["threshold_crossfit"]["B"]["threshold"] == pytest.approx(tb)
    assert m["threshold_crossfit"]["A"]["n"] == (half == 0).sum()
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["f1"] == pytest.approx(f1_score(y, pred))
    assert m["auc"] == pytest.approx(roc_auc_score(y, emb))
    assert m["coverage"] == 1.0
    assert m["retrieval"] == {"rank1": 0.5, "mAP": 0.25, "cmc": [0.5, 0.75, 1.0]}
    assert scenario["m"]["retrieval_other"] == {"other": {}}
    # tuned on one half, measured on the other: sklearn on the held-out half
    th = m["tuned_halves"]
    a, b = half == 0, half == 1
    for key, tune, test in (("a_to_b", a, b), ("b_to_a", b, a)):
        t_k = brute_threshold(y[tune], emb[tune])
        blk = th[key]
        assert blk["threshold"] == pytest.approx(t_k)
        assert blk["n"] == test.sum()
        assert blk["accuracy"] == pytest.approx(accuracy_score(y[test], emb[test] >= t_k))
        assert blk["f1"] == pytest.approx(f1_score(y[test], emb[test] >= t_k))
        assert blk["auc"] == pytest.approx(roc_auc_score(y[test], emb[test]))
    assert th["mean"]["f1"] == pytest.approx((th["a_to_b"]["f1"] + th["b_to_a"]["f1"]) / 2)


def test_failures_as_wrong_block(scenario):
    m, y, lv, status = (
        scenario["m"]["systems"]["gpt"],
        scenario["labels"],
        scenario["lv"],
        scenario["status"],
    )
    ok = status == "ok"
    pred = np.where(ok, lv >= 50, y == 0)  # a failed pair is always wrong
    fw = m["failures_as_wrong"]
    assert fw["n"] == N and fw["n_failed"] == (~ok).sum()
    assert fw["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert fw["f1"] == pytest.approx(f1_score(y, pred))
    worst = np.where(y == 1, -1.0, 101.0)
    assert fw["auc"] == pytest.approx(roc_auc_score(y, np.where(ok, lv, worst)))
    assert fw["accuracy"] < m["accuracy"] and fw["auc"] < m["auc"]
    assert fw["coverage"] == pytest.approx(ok.mean())
    cov = fw["ci"]["intervals"]["coverage"]
    assert cov["low"] <= ok.mean() <= cov["high"]


def test_decision_only_system(scenario):
    m, y, d = scenario["m"]["systems"]["yesno"], scenario["labels"], scenario["dec_only"]
    assert m["n_answered"] == N and m["n_scored"] == 0 and m["n_decision_only"] == N
    assert m["accuracy"] == pytest.approx(accuracy_score(y, d))
    assert m["f1"] == pytest.approx(f1_score(y, d))
    assert m["auc"] is None and m["null_reasons"]["auc"] == "no scored pairs"
    assert m["ci"]["intervals"]["auc"] is None and m["ci"]["intervals"]["f1"] is not None
    assert m["curves"]["roc"] is None and m["curves"]["null_reasons"]["roc"]
    assert m["tuned_halves"]["a_to_b"]["accuracy"] is not None


def test_comparisons_equal_brute_force(scenario):
    m, y, lv, status, emb, d = (
        scenario["m"],
        scenario["labels"],
        scenario["lv"],
        scenario["status"],
        scenario["emb"],
        scenario["dec_only"],
    )
    comps = {(c["a"], c["b"]): c for c in m["comparisons"]}
    assert set(comps) == {("gpt", "emb"), ("gpt", "yesno"), ("emb", "yesno")}
    ok = status == "ok"
    half = open_run(scenario["root"]).halves().half
    right_gpt = (lv >= 50) == (y == 1)
    right_emb = crossfit_reference(y, emb, np.ones(y.size, bool), half)[0] == (y == 1)
    c = comps[("gpt", "emb")]
    b = int(np.sum(ok & right_gpt & ~right_emb))
    cc = int(np.sum(ok & ~right_gpt & right_emb))
    assert (c["mcnemar"]["n"], c["mcnemar"]["b"], c["mcnemar"]["c"]) == (ok.sum(), b, cc)
    auc_diff = roc_auc_score(y[ok], lv[ok]) - roc_auc_score(y[ok], emb[ok])
    assert c["auc_diff"]["diff"] == pytest.approx(auc_diff)
    assert c["auc_diff"]["n"] == ok.sum()
    ci = c["auc_diff"]["ci"]
    assert ci["low"] <= c["auc_diff"]["mean_diff"] <= ci["high"]
    c2 = comps[("gpt", "yesno")]
    right_yes = d == y
    assert c2["mcnemar"]["c"] == int(np.sum(ok & ~right_gpt & right_yes))
    assert c2["auc_diff"]["diff"] is None


def test_failures_ranking_and_examples(scenario):
    m, y, lv, status = scenario["m"], scenario["labels"], scenario["lv"], scenario["status"]
    f = m["systems"]["gpt"]["failures"]
    assert (f["refusal"], f["parse_error"], f["safety_block"]) == (10, 4, 2)
    ok = status == "ok"
    fa = int(np.sum(ok & (y == 0) & (lv >= 90)))
    fr = int(np.sum(ok & (y == 1) & (lv <= 10)))
    assert (f["confident_false_accept"], f["confident_false_reject"]) == (fa, fr)
    assert f["catastrophic"] == 16 + fa + fr
    ranking = m["failures"]["ranking"]
    assert ranking[-1]["system"] == "gpt" and ranking[-1]["catastrophic"] == 16 + fa + fr
    ex = m["failures"]["examples"]["gpt"]
    assert len(ex["refusal"]) == 10 and len(ex["safety_block"]) == 2
    first = ex["refusal"][0]
    row = int(np.flatnonzero(status == "refusal")[0])
    assert first["pair_id"] == int(scenario["ids"][row])
    assert first["path_a"] == f"query/{row:04d}_c1.jpg"
    assert first["raw"] == f"answer {row} <script>x</script>"  # unescaped: the report escapes
    assert first["status"] == "refusal" and first["label"] == int(y[row])
    assert first["error"] == "no usable answer"
    assert [e["pair_id"] for e in ex["refusal"]] == sorted(e["pair_id"] for e in ex["refusal"])
    assert len(ex["confident_false_accept"]) == min(12, fa)
    # embedders: a similarity is not a confidence, so no confident-wrong counts or examples
    emb = m["systems"]["emb"]["failures"]
    assert emb["confident_counted"] is False and emb["confident_false_accept"] is None
    assert (
        emb["catastrophic"] == 0
        and "confident_false_accept" not in m["failures"]["examples"]["emb"]
    )


def test_consistency_from_other_orders_and_repeats(scenario):
    m, lv, status, ids = (
        scenario["m"]["systems"]["gpt"],
        scenario["lv"],
        scenario["status"],
        scenario["ids"],
    )
    ok = np.flatnonzero(scenario["status"] == "ok")
    ba = np.clip(lv + (np.arange(N) % 5) * 4 - 8, 0, 100)
    rep = np.clip(lv + (np.arange(N) % 3) * 3 - 3, 0, 100)
    sym = m["consistency"]["symmetry"]
    assert sym["n_pairs"] == ok.size
    assert sym["disagreement_rate"] == pytest.approx(np.mean((lv[ok] >= 50) != (ba[ok] >= 50)))
    assert sym["mean_abs_score_gap"] == pytest.approx(np.mean(np.abs(lv[ok] - ba[ok])))
    rs = m["consistency"]["repeat_stability"]
    assert rs["n_pairs"] == ok.size and rs["max_repeats"] == 2
    assert rs["decision_agreement"] == pytest.approx(np.mean((lv[ok] >= 50) == (rep[ok] >= 50)))
    assert rs["mean_score_range"] == pytest.approx(np.mean(np.abs(lv[ok] - rep[ok])))
    tr = m["consistency"]["transitivity"]
    answered = dict(zip(ids[status == "ok"].tolist(), (lv >= 50)[status == "ok"], strict=True))
    evaluated = [t for t in scenario["triplets"] if all(p in answered for p in t)]
    viol = [t for t in evaluated if sum(bool(answered[p]) for p in t) == 2]
    assert tr["n_evaluated"] == len(evaluated) and tr["violations"] == len(viol)
    emb = scenario["m"]["systems"]["emb"]["consistency"]
    assert emb["symmetry"] is None and emb["null_reasons"]["symmetry"]
    assert emb["repeat_stability"] is None and emb["transitivity"]["n_evaluated"] == 15


def test_costs(scenario):
    c = scenario["m"]["systems"]["gpt"]["costs"]
    ok = scenario["status"] == "ok"
    cached = np.arange(N) % 10 == 0
    rows = N + 2 * ok.sum()
    assert c["rows"] == rows and c["cached_rows"] == cached.sum()
    assert c["this_run"]["calls"] == rows - cached.sum()
    assert c["answers"]["usd"] == pytest.approx(0.003 * rows)
    assert c["this_run"]["usd"] == pytest.approx(0.003 * (rows - cached.sum()))
    assert c["answers"]["tokens_in"] == 1000 * rows
    assert c["usd_per_1000_pairs"] == pytest.approx(0.003 * rows / N * 1000)
    lat = np.array([1 + i % 7 for i in range(N)], float)
    primary_lat = lat[ok]
    all_lat = np.r_[primary_lat, np.ones(2 * ok.sum())]  # the extra rows keep the 1.0 default
    assert c["latency_p50_s"] == pytest.approx(np.percentile(all_lat, 50))
    assert c["latency_p95_s"] == pytest.approx(np.percentile(all_lat, 95))
    emb = scenario["m"]["systems"]["emb"]["costs"]
    assert emb["answers"]["usd"] == 0.0 and emb["latency_p50_s"] is None


def test_degenerate_run_gives_nulls_not_crashes(tmp_path):
    labels = np.ones(10, np.int64)  # one class only
    ids = _pair_ids(10)
    rows = [_row(int(p), "all-refuse", status="refusal", raw="I can't") for p in ids]
    rows += [_row(int(p), "flat", score=50.0) for p in ids]
    systems = [
        {"name": "all-refuse", "type": "lvlm", "scale": 100.0, "threshold": 50.0},
        {"name": "flat", "type": "lvlm", "scale": 100.0, "threshold": 50.0},
        {"name": "never-ran", "type": "reid", "scale": 1.0, "threshold": None},
    ]
    _write_run(tmp_path, labels, systems, rows)
    m = write_metrics(tmp_path)
    json.loads((tmp_path / "metrics.json").read_text())
    r = m["systems"]["all-refuse"]
    assert r["coverage"] == 0.0 and r["accuracy"] is None and r["null_reasons"]["accuracy"]
    assert r["failures_as_wrong"]["accuracy"] == 0.0
    assert r["failures"]["refusal"] == 10
    flat = m["systems"]["flat"]
    assert flat["accuracy"] == 1.0 and flat["auc"] is None
    assert "one class" in flat["null_reasons"]["auc"]
    nr = m["systems"]["never-ran"]
    assert nr["coverage"] == 0.0 and nr["threshold"] is None
    assert nr["threshold_source"] == "stated" and nr["failures"]["missing"] == 10
    assert nr["failures_as_wrong"]["accuracy"] == 0.0  # every pair failed, so every pair wrong
    assert nr["costs"]["rows"] == 0
    assert m["comparisons"][0]["auc_diff"]["diff"] is None


def test_empty_pair_set(tmp_path):
    _write_run(
        tmp_path,
        np.zeros(0, np.int64),
        [{"name": "x", "type": "lvlm", "scale": 100.0, "threshold": 50.0}],
        [],
    )
    m = write_metrics(tmp_path)
    assert m["systems"]["x"]["coverage"] is None
    json.dumps(m, allow_nan=False)


def test_bootstrap_zero_skips_intervals(tmp_path):
    labels = np.array([0, 1] * 10)
    rows = [_row(int(p), "s", score=float(i)) for i, p in enumerate(_pair_ids(20))]
    _write_run(
        tmp_path,
        labels,
        [{"name": "s", "type": "lvlm", "scale": 100.0, "threshold": 10.0}],
        rows,
        config={"bootstrap": 0},
    )
    m = compute_metrics(tmp_path)
    ci = m["systems"]["s"]["ci"]
    assert ci["intervals"]["auc"] is None and "disabled" in ci["null_reasons"]["auc"]


@pytest.mark.parametrize(
    "breakage, message",
    [
        ("no_manifest", "run.json: not found"),
        ("bad_manifest", "not a readable run manifest"),
        ("unknown_pair", "pair_id 99999 is not in pairs.parquet"),
        ("duplicate_row", "more than one row for the same pair"),
        ("unlisted_system", "that run.json does not list"),
        ("bad_status", "unknown status values"),
        ("bad_retrieval", "not a readable retrieval.json"),
        ("no_scores", "scores.parquet: file not found"),
        ("bad_bootstrap", "config.bootstrap must be a whole number"),
    ],
)
def test_bad_run_directories_are_user_errors(tmp_path, breakage, message):
    labels = np.array([0, 1] * 5)
    ids = _pair_ids(10)
    rows = [_row(int(p), "s", score=float(i * 10)) for i, p in enumerate(ids)]
    systems = [{"name": "s", "type": "lvlm", "scale": 100.0, "threshold": 50.0}]
    config = {"bootstrap": -1} if breakage == "bad_bootstrap" else None
    if breakage == "unknown_pair":
        rows.append(_row(99999, "s", score=1.0))
    if breakage == "duplicate_row":
        rows.append(dict(rows[0]))
    if breakage == "unlisted_system":
        rows.append(_row(int(ids[0]), "ghost", score=1.0))
    if breakage == "bad_status":
        rows[0]["status"] = "exploded"
    _write_run(tmp_path, labels, systems, rows, config=config)
    if breakage == "no_manifest":
        (tmp_path / "run.json").unlink()
    if breakage == "bad_manifest":
        (tmp_path / "run.json").write_text("{not json")
    if breakage == "bad_retrieval":
        (tmp_path / "retrieval.json").write_text("[1, 2")
    if breakage == "no_scores":
        (tmp_path / "scores.parquet").unlink()
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        write_metrics(tmp_path)
    assert not (tmp_path / "metrics.json").exists()
    assert not list(tmp_path.glob(".metrics.json*"))  # no partial temp file either


@pytest.mark.slow
def test_speed_workload_shape_is_supported(tmp_path):
    """5 systems x 400 pairs with 30 resamples: the full pipeline on a larger run (no timing)."""
    rng = np.random.default_rng(0)
    n = 400
    labels = rng.integers(0, 2, n)
    ids = _pair_ids(n)
    rows, systems = [], []
    for k in range(5):
        s = 1.0 / (1.0 + np.exp(-(rng.normal(size=n) + labels * (k + 1) / 3)))  # on 0-1
        rows += [_row(int(p), f"s{k}", score=float(v)) for p, v in zip(ids, s, strict=True)]
        systems.append({"name": f"s{k}", "type": "reid", "scale": 1.0, "threshold": None})
    _write_run(tmp_path, labels, systems, rows, config={"bootstrap": 30})
    m = write_metrics(tmp_path)
    assert len(m["comparisons"]) == 10
    aucs = [m["systems"][f"s{k}"]["auc"] for k in range(5)]
    assert aucs == sorted(aucs)  # stronger signal, higher AUC


def test_lvlm_without_recorded_threshold_uses_50_and_package_exports(tmp_path):
    import reidbench.metrics as metrics_pkg

    labels = np.array([0, 1] * 10)
    rows = [_row(int(p), "s", score=float(i * 5)) for i, p in enumerate(_pair_ids(20))]
    _write_run(tmp_path, labels, [{"name": "s", "type": "lvlm", "scale": 100.0}], rows)
    m = metrics_pkg.compute_metrics(tmp_path, bootstrap=0)
    s = m["systems"]["s"]
    scores = np.arange(20) * 5.0
    # as prompted: its own 50 on 0-100; headline: cross-fitted like every other system
    assert s["as_prompted"]["threshold"] == 50.0
    assert s["as_prompted"]["accuracy"] == pytest.approx(accuracy_score(labels, scores >= 50))
    assert s["threshold_source"] == "crossfit_accuracy"
    half = open_run(tmp_path).halves().half
    pred, ta, _ = crossfit_reference(labels, scores, np.ones(20, bool), half)
    assert s["threshold"] == pytest.approx(ta)
    assert s["accuracy"] == pytest.approx(accuracy_score(labels, pred))
    assert metrics_pkg.write_metrics is write_metrics
