"""Comparisons on identical pairs (issue #9 items 1, 4, 5, 6): the pair ids behind every
comparison, identity-disjoint halves, out-of-sample thresholds, negatives by kind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reidbench.fusion.records import fuse_run
from reidbench.metrics.run import compute_metrics
from reidbench.metrics.run.blocks import pair_ids_digest
from reidbench.metrics.run.thresholds import best_accuracy_threshold, eer_threshold
from reidbench.rundir import open_run
from reidbench.rundir.halves import identity_halves
from reidbench.tables import read_table
from tests.fusion_fixtures import two_embedders_and_lvlm, write_run
from tests.run_builders import brute_threshold


@pytest.fixture(scope="module")
def fused(tmp_path_factory: pytest.TempPathFactory):
    y, systems = two_embedders_and_lvlm(n=240, seed=4)
    root = write_run(tmp_path_factory.mktemp("run"), y, systems, bootstrap=20)
    logistic = fuse_run(root, ["emb-a", "emb-b", "judge"])
    cascade = fuse_run(root, ["emb-a", "judge"], method="cascade", budget_usd_per_1k=1.0)
    return root, compute_metrics(root), logistic, cascade


def _answered(root: Path, metrics: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(answered, scored) per system over the run's pairs, recomputed from the files."""
    run = open_run(root)
    out = {}
    for name, v in run.systems.items():
        out[name] = (v.answered, v.answered & np.isfinite(v.score))
    for rec in [*metrics["fusion"].values(), *metrics["cascade"].values()]:
        rows = read_table(root / rec["file"])
        on = np.isin(run.pair_id, rows["pair_id"].to_numpy())
        out[rec["name"]] = (on, on)
    return out


@pytest.mark.slow
def test_every_comparison_names_its_identical_pairs(fused):
    root, m, *_ = fused
    run = open_run(root)
    ans = _answered(root, m)
    held = run.halves().b
    blocks = [(c, None) for c in m["comparisons"]]
    blocks += [(c, held) for c in m["held_out"]["comparisons"]]
    names = list(m["systems"])
    assert (
        len(m["comparisons"])
        == len(m["held_out"]["comparisons"])
        == len(names) * (len(names) - 1) // 2
    )
    for c, within in blocks:
        (aa, sa), (ab, sb) = ans[c["a"]], ans[c["b"]]
        mask = np.ones(run.n, bool) if within is None else within
        both, scored = aa & ab & mask, sa & sb & mask
        assert c["auc_diff"]["pair_ids_sha256"] == pair_ids_digest(run.pair_id[scored])
        assert c["auc_diff"]["n"] == scored.sum()
        if c["mcnemar"] is not None:
            assert c["mcnemar"]["pair_ids_sha256"] == pair_ids_digest(run.pair_id[both])
        # coverage-aware tests: every pair both were meant to answer (a fused system's pairs
        # outside the held-out half are not abstentions), abstentions included
        fused_names = {r["name"] for r in [*m["fusion"].values(), *m["cascade"].values()]}
        meant = mask.copy()
        for name in (c["a"], c["b"]):
            if name in fused_names:
                meant &= ans[name][0]
        assert c["coverage_aware"]["pair_ids_sha256"] == pair_ids_digest(run.pair_id[meant])
        assert c["coverage_aware"]["n"] == meant.sum()
    # the held-out view: every system on the same held-out pairs, coverage over all of them
    hv = m["held_out"]
    assert hv["pair_ids_sha256"] == pair_ids_digest(run.pair_id[held])
    assert set(hv["systems"]) == set(m["systems"])
    for name, b in hv["systems"].items():
        on = ans[name][0] & held
        assert b["coverage_aware"]["n"] == held.sum()
        assert b["n_pairs"] == held.sum() and b["n_answered"] == on.sum()
        assert b["pair_ids_sha256"] == pair_ids_digest(run.pair_id[on])
    # fused systems: coverage over the held-out pairs they were meant to answer
    for rec in m["fusion"].values():
        assert m["systems"][rec["name"]]["n_pairs"] == held.sum()


@pytest.mark.slow
def test_summary_never_puts_held_out_next_to_all_pairs(fused):
    _root, m, logistic, _ = fused
    from reidbench.report.markdown import summary_markdown

    text = summary_markdown(m)
    first, second = text.split("held-out pairs:")
    assert logistic["name"] not in first.split("All ")[1]  # all-pairs table: singles only
    assert logistic["name"] in second and "emb-a" in second


def test_fused_name_is_the_inputs_it_kept(fused):
    _, _m, logistic, _ = fused
    kept = logistic["selection"]["chosen"]
    assert logistic["name"] == f"logistic({'+'.join(kept)})"


def test_halves_are_identity_disjoint_with_zero_leakage(fused):
    root, m, *_ = fused
    split = m["run"]["protocol"]["split"]
    assert split["kind"] == "identity" and split["leakage"] == {"identities": 0, "images": 0}
    run = open_run(root)
    h = run.halves()
    id_a, id_b = run.pairs.identities
    in_a = set(id_a[h.a]) | set(id_b[h.a])
    in_b = set(id_a[h.b]) | set(id_b[h.b])
    assert not in_a & in_b
    assert split["n_across"] == h.across.sum() > 0
    assert (run.label[h.across] == 0).all()  # only negatives can straddle the halves
    fit = m["fusion"][next(iter(m["fusion"]))]["split"]
    assert fit["n_held_out"] == h.b.sum() and fit["n_calibration"] == h.a.sum()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 10_000), min_size=4, max_size=60),
    st.integers(0, 2**31),
)
def test_identity_halves_never_split_an_identity(ids, seed):
    rng = np.random.default_rng(seed)
    id_a = np.asarray(ids)
    id_b = np.where(rng.random(id_a.size) < 0.5, id_a, rng.integers(0, 10_000, id_a.size))
    h = identity_halves(id_a, id_b, seed)
    same = id_a == id_b
    assert (h.half[same] >= 0).all()
    for half in (0, 1):
        sel = h.half == half
        other = h.half == 1 - half
        assert not (set(id_a[sel]) | set(id_b[sel])) & (set(id_a[other]) | set(id_b[other]))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 12)), min_size=2, max_size=40))
def test_accuracy_threshold_equals_brute_force(rows):
    y = np.array([r[0] for r in rows])
    s = np.array([r[1] / 12 for r in rows], dtype=float)
    t, acc, reason = best_accuracy_threshold(y, s)
    ref = brute_threshold(y, s)
    if ref is None:
        assert t is None and reason
        return
    assert t == pytest.approx(ref)
    best = max(np.mean((s >= c) == (y == 1)) for c in np.unique(s))
    assert acc == pytest.approx(best) == pytest.approx(np.mean((s >= t) == (y == 1)))


def test_eer_threshold_balances_the_errors():
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.5).astype(int)
    s = rng.normal(y, 1.0)
    t, eer, _ = eer_threshold(y, s)
    fpr = np.mean(s[y == 0] >= t)
    fnr = np.mean(s[y == 1] < t)
    assert abs(fpr - fnr) < 0.02 and eer == pytest.approx((fpr + fnr) / 2, abs=0.01)


@pytest.mark.slow
def test_negatives_by_kind_and_miner_warning(tmp_path: Path):
    y, systems = two_embedders_and_lvlm(n=120, seed=2)
    root = write_run(tmp_path, y, systems, bootstrap=0)
    run = open_run(root)
    neg = np.flatnonzero(run.label == 0)
    mined_ids = run.pair_id[neg[::2]]
    # hard negatives mined by emb-a, recorded in the pair set's provenance
    import pyarrow.parquet as pq

    from reidbench.pairs import pairset_hash
    from reidbench.tables import write_table

    table = pq.read_table(root / "pairs.parquet")
    meta = {
        "content_hash": pairset_hash(table),
        "seed": 0,
        "hard_negatives": {"miner": "emb-a", "pair_ids": mined_ids.tolist()},
    }
    write_table(root / "pairs.parquet", table.replace_schema_metadata(None), meta)
    m = compute_metrics(root)
    assert any("emb-a mined" in w for w in m["warnings"])
    b = m["systems"]["emb-b"]["by_negative_kind"]
    mined = np.isin(run.pair_id, mined_ids)
    assert b["miner"] == "emb-a"
    assert b["mined"]["n_negatives"] == mined.sum()
    assert b["random"]["n_negatives"] == ((run.label == 0) & ~mined).sum()
    from sklearn.metrics import roc_auc_score

    s = systems["emb-b"]["score"]
    keep = (run.label == 1) | mined
    assert b["mined"]["auc"] == pytest.approx(roc_auc_score(run.label[keep], s[keep]))


@pytest.mark.slow
def test_threshold_rule_from_the_config(tmp_path: Path):
    import json

    from reidbench.config import ExperimentConfig
    from reidbench.errors import UserError

    assert ExperimentConfig.model_fields["threshold_rule"].default == "accuracy"
    y, systems = two_embedders_and_lvlm(n=100, seed=6)
    root = write_run(tmp_path, y, systems, bootstrap=0)
    manifest = json.loads((root / "run.json").read_text())
    manifest["config"]["threshold_rule"] = "eer"
    (root / "run.json").write_text(json.dumps(manifest))
    m = compute_metrics(root)
    assert m["systems"]["emb-a"]["threshold_source"] == "crossfit_eer"
    assert m["run"]["protocol"]["threshold_rule"] == "eer"
    assert compute_metrics(root, threshold_rule="f1")["systems"]["emb-a"]["threshold_rule"] == "f1"
    with pytest.raises(UserError, match="threshold rule"):
        compute_metrics(root, threshold_rule="median")
