"""Logistic score fusion: fit on calibration only, failures explicit, reported like any system."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegressionCV
from sklearn.metrics import f1_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from reidbench.config import FusionConfig
from reidbench.errors import UserError
from reidbench.fusion import fuse_logistic, fuse_run, load_records
from reidbench.fusion import logistic as logistic_mod
from reidbench.fusion.records import fit_logistic_record, record_paths
from reidbench.metrics.run import compute_metrics
from reidbench.rundir import open_run
from reidbench.tables import read_table
from tests.fusion_fixtures import pair_ids, two_embedders_and_lvlm, with_noise, write_run

NAME = "logistic(emb-a+emb-b+judge)"


@pytest.fixture(scope="module")
def fused_run(tmp_path_factory: pytest.TempPathFactory):
    y, systems = two_embedders_and_lvlm()
    root = write_run(tmp_path_factory.mktemp("run"), y, systems)
    record = fuse_run(root, ["emb-a", "emb-b", "judge"])
    return root, y, systems, record, compute_metrics(root)


@pytest.mark.slow
def test_fit_sees_calibration_rows_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    y, systems = two_embedders_and_lvlm(n=200)
    data = open_run(write_run(tmp_path, y, systems))
    calib = data.calibration()
    seen = {}
    real = logistic_mod.fit_logistic

    def spy(x, labels, *a, **kw):
        seen["x"], seen["y"] = x, labels
        return real(x, labels, *a, **kw)

    real_select = logistic_mod.select_inputs
    selected = {}

    def spy_select(views, systems, calib_, labels, **kw):
        selected["y"], selected["calib"] = labels, calib_
        return real_select(views, systems, calib_, labels, **kw)

    monkeypatch.setattr(logistic_mod, "fit_logistic", spy)
    monkeypatch.setattr(logistic_mod, "select_inputs", spy_select)
    fused = fuse_logistic(data, ["emb-a", "judge"], cv_folds=3, cs=4)
    assert seen["y"].size == calib.sum()  # the last fit: the chosen inputs on all of half A
    np.testing.assert_array_equal(seen["y"], y[calib])
    np.testing.assert_array_equal(seen["x"], fused.spec.matrix(data.systems)[calib])
    np.testing.assert_array_equal(selected["y"], y[calib])  # selection: half A labels only
    np.testing.assert_array_equal(selected["calib"], calib)


@pytest.mark.slow
@pytest.mark.parametrize("make", [two_embedders_and_lvlm, with_noise])
def test_held_out_labels_cannot_change_the_fusion(tmp_path: Path, make) -> None:
    """Noise in place of every held-out label: same candidates' CV AUCs, same chosen inputs,
    same fitted model, threshold and scores."""
    y, systems = make(n=300)
    data = open_run(write_run(tmp_path, y, systems))
    names = list(systems)
    calib = data.calibration()
    first = fuse_logistic(data, names, calib=calib, cv_folds=3, cs=4)
    rng = np.random.default_rng(5)
    data.label = data.label.copy()
    data.label[~calib] = rng.integers(0, 2, int((~calib).sum()))  # garbage held-out labels
    second = fuse_logistic(data, names, calib=calib, cv_folds=3, cs=4)
    assert first.selection.enabled and len(first.selection.candidates) == 7
    assert first.selection.to_json() == second.selection.to_json()
    assert first.record() == second.record()
    np.testing.assert_array_equal(first.prob, second.prob)
    assert first.threshold == second.threshold
    if make is with_noise:
        assert "noise" in first.selection.dropped  # the test covers a selection that drops


@pytest.mark.slow
def test_failed_answers_are_imputed_and_flagged_not_dropped(fused_run) -> None:
    root, y, systems, record, _ = fused_run
    data = open_run(root)
    calib, held = data.calibration(), data.held_out()
    feats = record["logistic"]["features"]
    assert feats["names"] == ["score:emb-a", "score:emb-b", "score:judge", "failed:judge"]
    refused = systems["judge"]["status"] != "ok"
    expect = float(np.mean(systems["judge"]["score"][calib & ~refused] / 100.0))
    assert feats["imputation"]["values"]["judge"] == pytest.approx(expect)
    assert record["logistic"]["failed_pairs"]["judge"] == {
        "calibration": int((calib & refused).sum()),
        "held_out": int((held & refused).sum()),
    }
    rows = read_table(root / record["rows_file"])
    assert rows.num_rows == int(held.sum())  # every held-out pair, refused ones included
    np.testing.assert_array_equal(np.sort(rows["pair_id"].to_numpy()), pair_ids(y.size)[held])
    reasons = dict(zip(rows["pair_id"].to_pylist(), rows["reasons"].to_pylist(), strict=True))
    for pid in pair_ids(y.size)[held & refused]:
        assert reasons[int(pid)] == "imputed for failed: judge"


@pytest.mark.slow
def test_record_holds_the_fitted_model_and_split(fused_run) -> None:
    root, y, _, record, _ = fused_run
    model = record["logistic"]["model"]
    assert model["C"] in model["Cs"] and len(model["cv"]["mean_score_per_C"]) == len(model["Cs"])
    assert model["cv"]["folds"] == 5 and model["cv"]["scoring"] == "neg_log_loss"
    assert record["split"]["seed"] == 0
    calib, held = open_run(root).calibration(), open_run(root).held_out()
    assert record["split"]["n_calibration"] == calib.sum()
    assert record["split"]["n_held_out"] == held.sum()
    # The raw-scale coefficients reproduce the stored probabilities.
    data = open_run(root)
    x = logistic_mod.feature_spec(data.systems, ["emb-a", "emb-b", "judge"], calib).matrix(
        data.systems
    )
    z = model["intercept"] + x @ np.asarray(model["coef"])
    rows = read_table(root / record["rows_file"])
    order = np.argsort(pair_ids(y.size)[held])
    got = rows["score"].to_numpy()[np.argsort(np.argsort(rows["pair_id"].to_numpy()))]
    np.testing.assert_allclose(got, (1 / (1 + np.exp(-z)))[held][order][np.argsort(order)])
    # ... and they match scikit-learn's own fit on the calibration rows.
    assert model["C"] == pytest.approx(float(_refit(x[calib], y[calib]).C_), rel=1e-12)
    json_path, _ = record_paths(root, NAME)
    assert json.loads(json_path.read_text())["entry"]["type"] == "fusion"


def _refit(x, y):
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    lr = LogisticRegressionCV(
        Cs=10,
        l1_ratios=(0.0,),
        cv=StratifiedKFold(5, shuffle=True, random_state=0),
        scoring="neg_log_loss",
        max_iter=1000,
        use_legacy_attributes=False,
    )
    return lr.fit(StandardScaler().fit_transform(x), y)


@pytest.mark.slow
def test_fused_system_is_in_metrics_like_any_other(fused_run) -> None:
    root, y, _, record, metrics = fused_run
    fused = metrics["systems"][NAME]
    plain = metrics["systems"]["emb-a"]
    assert set(plain) - {"threshold_crossfit", "threshold_rule"} <= set(fused)
    assert fused["evaluated_on"] == "held-out" and fused["type"] == "fusion"
    _calib, held = open_run(root).calibration(), open_run(root).held_out()
    rows = read_table(root / record["rows_file"])
    pid = rows["pair_id"].to_numpy()
    held_y = dict(zip(pair_ids(y.size), y, strict=True))
    yy = np.array([held_y[p] for p in pid])
    s = rows["score"].to_numpy()
    assert fused["n_pairs"] == held.sum() == fused["n_answered"]
    assert fused["auc"] == pytest.approx(roc_auc_score(yy, s))
    assert fused["f1"] == pytest.approx(f1_score(yy, s >= record["entry"]["threshold"]))
    assert (
        fused["ci"]["intervals"]["auc"]["low"]
        <= fused["auc"]
        <= fused["ci"]["intervals"]["auc"]["high"]
    )
    assert fused["failures"]["missing"] == 0
    names = {(c["a"], c["b"]) for c in metrics["comparisons"]}
    assert ("emb-a", NAME) in names and ("judge", NAME) in names


def vs_coin_n(block: dict) -> int:
    return block["vs_best"]["coverage_aware"]["n"]


def test_singles_and_paired_test_on_the_same_held_out_pairs(fused_run) -> None:
    root, y, systems, record, metrics = fused_run
    block = metrics["fusion"][NAME]
    _calib, held = open_run(root).calibration(), open_run(root).held_out()
    assert block["split"]["n_held_out"] == held.sum()
    assert block["model"]["features"]["names"][-1] == "failed:judge"
    assert block["model"]["model"]["C"] == record["logistic"]["model"]["C"]
    ok = systems["judge"]["status"] != "ok"
    for name in ("emb-a", "emb-b", "judge"):
        m = held & (~ok if name == "judge" else np.ones(y.size, bool))
        single = block["singles"][name]
        assert single["n_answered"] == m.sum() and single["n_pairs"] == held.sum()
        assert single["auc"] == pytest.approx(roc_auc_score(y[m], systems[name]["score"][m]))
        if name != "judge":  # full coverage: the coin-flip AUC is the plain one
            assert single["coverage_aware"]["auc"] == pytest.approx(single["auc"])
    # The best input is ranked with abstentions as coin flips, never on answered pairs alone.
    aucs = {n: block["singles"][n]["coverage_aware"]["auc"] for n in block["singles"]}
    assert block["best_single"] == max(aucs, key=aucs.get)
    assert vs_coin_n(block) == held.sum()
    vs = block["vs_best"]
    best = block["best_single"]
    m = held & (~ok if best == "judge" else np.ones(y.size, bool))
    fused_scores = dict(
        zip(
            read_table(root / record["rows_file"])["pair_id"].to_pylist(),
            read_table(root / record["rows_file"])["score"].to_pylist(),
            strict=True,
        )
    )
    fs = np.array([fused_scores[int(p)] for p in pair_ids(y.size)[m]])
    assert vs["auc_diff"]["n"] == m.sum()
    assert vs["auc_diff"]["diff"] == pytest.approx(
        roc_auc_score(y[m], fs) - roc_auc_score(y[m], systems[best]["score"][m])
    )
    assert vs["mcnemar"]["n"] == m.sum()
    # Two independent informative scores: the fusion beats the best one clearly.
    assert vs["auc_diff"]["diff"] > 0.01 and vs["auc_diff"]["ci"]["low"] > 0


def _cv_pooled_auc(x: np.ndarray, y: np.ndarray) -> float:
    """Out-of-fold AUC of the same pipeline by scikit-learn's own cross_val_predict."""
    lr = LogisticRegressionCV(
        Cs=10,
        l1_ratios=(0.0,),
        cv=StratifiedKFold(5, shuffle=True, random_state=0),
        scoring="neg_log_loss",
        max_iter=1000,
        use_legacy_attributes=False,
    )
    pipe = Pipeline([("scale", StandardScaler()), ("logistic", lr)])
    outer = StratifiedKFold(5, shuffle=True, random_state=0)
    p = cross_val_predict(pipe, x, y, cv=outer, method="predict_proba")[:, 1]
    return float(roc_auc_score(y, p))


@pytest.mark.slow
def test_selection_drops_a_pure_noise_input(tmp_path: Path) -> None:
    y, systems = with_noise()
    root = write_run(tmp_path, y, systems)
    record = fuse_run(root, ["emb-a", "noise"])
    name = "logistic(emb-a)"  # named by the input it kept; the record says what was asked
    assert record["name"] == name and record["systems"] == ["emb-a", "noise"]
    sel = record["selection"]
    assert sel["enabled"] and sel["chosen"] == ["emb-a"] and sel["dropped"] == ["noise"]
    assert sel["note"].startswith(
        "noise was dropped: it did not raise cross-validated AUC on calibration pairs"
    )
    assert [c["inputs"] for c in sel["candidates"]] == [["emb-a"], ["noise"], ["emb-a", "noise"]]
    means = {tuple(c["inputs"]): c["cv_auc_mean"] for c in sel["candidates"]}
    assert means[("emb-a",)] == max(means.values())
    for c in sel["candidates"]:
        assert len(c["cv_auc_folds"]) == 5 and c["cv_auc_std"] >= 0
        assert c["cv_auc_mean"] == pytest.approx(np.mean(c["cv_auc_folds"]))
    assert sel["cv"]["folds"] == 5 and sel["cv"]["seed"] == 0
    # The candidates' out-of-fold AUCs are scikit-learn's, on calibration pairs only.
    calib, _held = open_run(root).calibration(), open_run(root).held_out()
    x = np.column_stack([systems["emb-a"]["score"], systems["noise"]["score"]])
    for cols, inputs in (([0], ("emb-a",)), ([0, 1], ("emb-a", "noise"))):
        pooled = next(c["cv_auc_pooled"] for c in sel["candidates"] if tuple(c["inputs"]) == inputs)
        assert pooled == pytest.approx(_cv_pooled_auc(x[calib][:, cols], y[calib]), abs=1e-12)
    assert record["logistic"]["features"]["names"] == ["score:emb-a"]
    metrics = compute_metrics(root)
    block = metrics["fusion"][name]
    assert block["selection"] == sel and block["systems"] == ["emb-a", "noise"]
    assert set(block["singles"]) == {"emb-a", "noise"}  # a dropped input is still shown alone
    # One input left: the fused score is monotone in it, so held-out AUC is exactly the same.
    assert block["best_single"] == "emb-a"
    assert block["fused"]["auc"] == pytest.approx(block["singles"]["emb-a"]["auc"], abs=1e-12)
    assert block["vs_best"]["auc_diff"]["diff"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.slow
def test_selection_keeps_complementary_inputs(tmp_path: Path) -> None:
    y, systems = with_noise()
    root = write_run(tmp_path, y, systems)
    record = fuse_run(root, ["emb-a", "emb-b"])
    sel = record["selection"]
    assert sel["chosen"] == ["emb-a", "emb-b"] and sel["dropped"] == []
    assert sel["note"].startswith("all inputs kept")
    assert record["logistic"]["features"]["names"] == ["score:emb-a", "score:emb-b"]
    block = compute_metrics(root)["fusion"]["logistic(emb-a+emb-b)"]
    for single in block["singles"].values():
        assert block["fused"]["auc"] > single["auc"] + 0.02  # held-out: beats each alone
    assert block["vs_best"]["auc_diff"]["ci"]["low"] > 0


@pytest.mark.slow
def test_no_select_keeps_every_input(tmp_path: Path, run_cli) -> None:
    y, systems = with_noise()
    root = write_run(tmp_path / "run", y, systems)
    res = run_cli("fuse", root, "--systems", "emb-a,noise", "--no-select", "--name", "both")
    assert res.code == 0, res.err
    record = json.loads(record_paths(root, "both")[0].read_text())
    assert record["selection"]["enabled"] is False
    assert record["selection"]["chosen"] == ["emb-a", "noise"]
    assert record["selection"]["dropped"] == [] and "candidates" not in record["selection"]
    assert record["logistic"]["features"]["names"] == ["score:emb-a", "score:noise"]
    metrics = json.loads((root / "metrics.json").read_text())
    assert metrics["fusion"]["both"]["selection"]["enabled"] is False
    res = run_cli("fuse", root, "--systems", "emb-a,noise", "--method", "cascade", "--no-select")
    assert res.code == 2 and "logistic only" in res.err
    # The config switch: on unless turned off.
    assert FusionConfig(systems=["a", "b"]).select_inputs is True
    assert FusionConfig(systems=["a", "b"], select_inputs=False).select_inputs is False


@pytest.mark.slow
def test_stale_record_is_skipped_not_reported(tmp_path: Path) -> None:
    y, systems = two_embedders_and_lvlm(n=200)
    root = write_run(tmp_path / "run", y, systems)
    fuse_run(root, ["emb-a", "emb-b"])
    assert len(load_records(root)[0]) == 1
    systems["emb-b"]["score"] = systems["emb-b"]["score"][::-1].copy()  # a re-run system
    write_run(root, y, systems)
    found, skipped = load_records(root)
    assert found == [] and "stale" in skipped[0]["reason"]
    metrics = compute_metrics(root)
    assert "logistic(emb-a+emb-b)" not in metrics["systems"]
    assert "stale" in metrics["fusion_skipped"][0]["reason"]


def test_user_errors(tmp_path: Path) -> None:
    y, systems = two_embedders_and_lvlm(n=40)
    root = write_run(tmp_path, y, systems)
    data = open_run(root)
    with pytest.raises(UserError, match="no system named 'nope'"):
        fit_logistic_record(data, ["emb-a", "nope"])
    with pytest.raises(UserError, match="at least two"):
        fuse_logistic(data, ["emb-a"])
    with pytest.raises(UserError, match="already a system"):
        fit_logistic_record(data, ["emb-a", "emb-b"], name="judge")
    with pytest.raises(UserError, match="cross-validation needs at least 30"):
        fit_logistic_record(data, ["emb-a", "emb-b"], cv_folds=30)
    # k pairs of the rarer label in calibration half A: enough for k folds, not for k folds
    # inside k folds.
    ya = data.label[data.calibration()]
    k = int(min(ya.sum(), ya.size - ya.sum()))
    assert k >= 2
    with pytest.raises(UserError, match=rf"input selection runs {k}-fold .* needs at least"):
        fit_logistic_record(data, ["emb-a", "emb-b"], cv_folds=k)
    record, _ = fit_logistic_record(data, ["emb-a", "emb-b"], cv_folds=k, select_inputs=False)
    assert record["selection"]["enabled"] is False


@pytest.mark.slow
def test_fuse_cli_writes_records_metrics_and_errors(tmp_path: Path, run_cli) -> None:
    y, systems = two_embedders_and_lvlm(n=120)
    root = write_run(tmp_path / "run", y, systems)
    res = run_cli("fuse", root, "--systems", "emb-a,emb-b", "--name", "both")
    assert res.code == 0, res.err
    metrics = json.loads((root / "metrics.json").read_text())
    assert "both" in metrics["systems"] and "both" in metrics["fusion"]
    assert (root / "report.html").is_file()
    for args, needle in [
        (("--systems", "emb-a"), "at least two systems"),
        (("--systems", "emb-a,zzz"), "no system named 'zzz'"),
        (("--systems", "emb-a,emb-b", "--method", "mean"), "use logistic or cascade"),
        (("--systems", "emb-a,emb-b", "--fraction", "0.2"), "cascade only"),
        (("--systems", "emb-a,emb-b,judge", "--method", "cascade"), "two systems"),
    ]:
        res = run_cli("fuse", root, *args)
        assert res.code == 2, (args, res.err)
        assert res.err.startswith("error: ") and needle in res.err
        assert res.err.count("\n") == 1
    res = run_cli("fuse", tmp_path / "nothing", "--systems", "a,b")
    assert res.code == 2 and "no scores.parquet" in res.err
