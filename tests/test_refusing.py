"""Issue #9 item 3, end to end: an LVLM that refuses the pairs nearest its threshold is
never ranked above the same LVLM answering them, in metrics.json, the highlights, the
paired tests and summary.md (through a hand-made run directory and the real metrics)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from reidbench.metrics.run import write_metrics
from reidbench.metrics.run.blocks import pair_ids_digest
from reidbench.pairs import pairset_hash
from reidbench.report import render_report
from reidbench.report.context import _highlights
from reidbench.tables import SCORES_SCHEMA, write_table
from tests.run_builders import labelled_pairs, score_row

N = 400


def _lvlm(name: str) -> dict:
    return {"name": name, "type": "lvlm", "scale": 100.0, "threshold": 50.0}


def _refusing_run(root: Path, share: float) -> tuple[Path, dict, np.ndarray, np.ndarray]:
    """`honest` answers every pair; `refuser` has the same scores but refuses the `share`
    of pairs nearest the threshold 50 (the issue's fake LVLM)."""
    rng = np.random.default_rng(9)
    labels = (rng.random(N) < 0.5).astype(np.int64)
    ids = np.arange(N, dtype=np.int64) * 2 + 11
    score = np.clip(np.round(50 + 36 * (labels - 0.5) + rng.normal(0, 22, N)), 0, 100)
    near = np.argsort(np.abs(score - 50.0), kind="stable")[: round(share * N)]
    refused = np.zeros(N, bool)
    refused[near] = True
    pairs = labelled_pairs(labels, ids)
    meta = {"seed": 0, "split": "query-gallery", "content_hash": pairset_hash(pairs)}
    write_table(root / "pairs.parquet", pairs, meta)
    rows = []
    for i, pid in enumerate(ids.tolist()):
        dec = "same" if score[i] >= 50 else "different"
        rows.append(score_row(pid, "honest", score=float(score[i]), decision=dec))
        if refused[i]:
            rows.append(score_row(pid, "refuser", status="refusal", raw="I can't help."))
        else:
            rows.append(score_row(pid, "refuser", score=float(score[i]), decision=dec))
    write_table(root / "scores.parquet", pa.Table.from_pylist(rows, schema=SCORES_SCHEMA))
    manifest = {
        "reidbench_version": "0.1.0",
        "created": "2026-12-04T18:00:00Z",
        "config": {"name": "refusing", "bootstrap": 200, "seed": 0},
        "dataset": {"dataset": "market1501", "root": str(root), "synthetic": True},
        "pairs": meta,
        "systems": [_lvlm("honest"), _lvlm("refuser")],
    }
    (root / "run.json").write_text(json.dumps(manifest))
    return root, write_metrics(root), ids, refused


@pytest.fixture(scope="module", params=[0.20, 0.45], ids=["refuse20", "refuse45"])
def refusing(request, tmp_path_factory):
    return _refusing_run(tmp_path_factory.mktemp("refusing"), request.param)


def test_answered_only_rewards_refusing_but_the_coin_flip_does_not(refusing):
    _, m, _, refused = refusing
    h, r = m["systems"]["honest"], m["systems"]["refuser"]
    assert r["coverage"] == pytest.approx(1 - refused.mean())
    # The optimistic bound shows the bias the issue measured ...
    assert r["auc"] > h["auc"]
    assert "optimistic" in h["answered_only_bound"]
    assert "pessimistic" in r["failures_as_wrong"]["bound"]
    # ... the coverage-aware values (the headline) do not reward it.
    hc, rc = h["coverage_aware"], r["coverage_aware"]
    assert rc["auc"] <= hc["auc"]
    assert rc["accuracy"] <= hc["accuracy"] + 1e-12
    assert rc["coverage"] == pytest.approx(1 - refused.mean()) and hc["coverage"] == 1.0
    # The honest system answers everything: its coin-flip values are its plain ones.
    assert hc["auc"] == pytest.approx(h["auc"]) and hc["accuracy"] == pytest.approx(h["accuracy"])
    # Between the pessimistic and optimistic bounds.
    assert r["failures_as_wrong"]["auc"] <= rc["auc"] <= r["auc"]
    assert rc["ci"]["intervals"]["auc"]["low"] <= rc["auc"] <= rc["ci"]["intervals"]["auc"]["high"]


def test_risk_coverage_reaches_full_coverage_at_the_coin_flip_error(refusing):
    _, m, _, refused = refusing
    for name in ("honest", "refuser"):
        b = m["systems"][name]
        rc = b["risk_coverage"]
        assert rc["coverage"][-1] == 1.0
        # At full coverage the risk is the coin-flip error rate: 1 - coverage-aware accuracy.
        assert rc["risk_full_coverage"] == pytest.approx(1 - b["coverage_aware"]["accuracy"])
        assert 0.0 <= rc["aurc"] <= 1.0
    assert m["systems"]["refuser"]["risk_coverage"]["coverage_max"] == pytest.approx(
        1 - refused.mean()
    )


def test_paired_test_on_identical_pairs_does_not_favour_the_refuser(refusing):
    _, m, ids, _ = refusing
    (c,) = m["comparisons"]
    ca = c["coverage_aware"]
    assert ca["n"] == N and ca["pair_ids_sha256"] == pair_ids_digest(ids)
    sign = 1 if c["a"] == "refuser" else -1  # refuser minus honest
    assert sign * ca["auc"]["diff"] <= 0
    assert sign * ca["accuracy"]["diff"] <= 1e-12
    # Whatever the direction, no significant advantage for the refuser.
    assert sign * ca["auc"]["diff"] <= 0 or ca["auc"]["p_value"] >= 0.05
    assert 0 < ca["auc"]["p_value"] <= 1 and 0 < ca["accuracy"]["p_value"] <= 1


@pytest.mark.slow
def test_refuser_is_never_ranked_above_the_honest_system(refusing):
    run, m, _, _ = refusing
    lines = _highlights(m)
    best = [ln for ln in lines if ln.startswith("Highest")]
    assert len(best) == 1 and best[0].split(":")[1].strip().startswith("honest")
    assert not any("refuser" in ln and "best" in ln.lower() for ln in lines)
    html, summary = render_report(run, m, generated="2026-12-04 18:00 UTC")
    assert "Abstentions counted as coin flips" in html
    assert "Risk-coverage curves" in html  # the figure's alt text
    row = next(ln for ln in summary.splitlines() if ln.startswith("| refuser"))
    honest = next(ln for ln in summary.splitlines() if ln.startswith("| honest"))
    coin = [float(r.strip(" |").split("|")[-1]) for r in (row, honest)]
    assert coin[0] <= coin[1]


def test_a_decision_only_system_has_no_coin_flip_ranking(tmp_path):
    """No scores at all: every pair would tie (AUC 0.5), which is not a ranking."""
    from tests.report_runs import make_run

    _, m = make_run(tmp_path, n=30, missing_images=False, decision_only=True)
    ca = m["systems"]["yesno"]["coverage_aware"]
    assert ca["auc"] is None and "decisions only" in ca["null_reasons"]["auc"]
    assert ca["accuracy"] == pytest.approx(m["systems"]["yesno"]["accuracy"])  # all answered
    for c in m["comparisons"]:
        if "yesno" in (c["a"], c["b"]):
            assert c["coverage_aware"]["auc"] is None
            assert c["coverage_aware"]["accuracy"]["p_value"] is not None
    assert m["systems"]["yesno"]["risk_coverage"]["coverage"][-1] == 1.0
