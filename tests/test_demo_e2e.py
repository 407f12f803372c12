"""`reidbench demo` end to end, as a user runs it: a fresh interpreter, an empty folder, no
API key. Everything it reports must be a number recomputable from the files it wrote."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score

from reidbench.demo import AUTO_LVLM_PRESETS

REID = ("handcrafted", "efficientnet-lite0")


@pytest.mark.slow
@pytest.mark.timeout(1800)  # ~1.5 min on an idle 2-core box; far more when it is shared
def test_demo_runs_end_to_end_into_an_empty_folder(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if k not in AUTO_LVLM_PRESETS}
    env.update(HF_HUB_OFFLINE="1", REIDBENCH_CACHE_DIR=str(tmp_path / "cache"))
    done = subprocess.run(
        [sys.executable, "-m", "reidbench", "demo", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "LVLMs: none configured" in done.stdout + done.stderr

    for name in ("run.json", "pairs.parquet", "scores.parquet", "metrics.json", "report.html"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert not [p for p in out.rglob("*") if p.name.endswith((".partial", ".tmp"))]
    assert (out / "data" / "reidbench-synthetic.json").is_file()

    pairs = pq.read_table(out / "pairs.parquet").to_pandas()
    scores = pq.read_table(out / "scores.parquet").to_pandas()
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(pairs) >= 400  # demo.toml: 200 positives, 200 negatives (+ triplet pairs)
    assert set(pairs["label"]) == {0, 1}

    html = (out / "report.html").read_text()
    assert "SYNTHETIC" in html
    for name in REID:
        m = metrics["systems"][name]
        rows = scores[(scores["system"] == name) & (scores["status"] == "ok")]
        joined = rows.merge(pairs[["pair_id", "label"]], on="pair_id")
        assert len(joined) == len(pairs)  # an embedder answers every pair
        expected = roc_auc_score(joined["label"], joined["score"])
        assert m["auc"] == pytest.approx(expected, abs=1e-9)
        assert 0.5 < m["auc"] <= 1.0  # real signal on synthetic people, not a coin
        assert m["n_pairs"] == len(pairs) and m["coverage"] == 1.0
        assert all(math.isfinite(m[k]) for k in ("accuracy", "f1", "auc", "pr_auc"))
        assert name in html
        assert f"{m['auc']:.3f}" in html  # the report shows the number metrics.json holds

    # The [fusion] block of demo.toml: one fused system, evaluated on held-out pairs only.
    fused = [k for k in metrics["systems"] if k not in REID]
    assert len(fused) == 1 and "logistic" in fused[0]
    assert 0 < metrics["systems"][fused[0]]["n_pairs"] < len(pairs)
    assert np.isfinite(metrics["systems"][fused[0]]["auc"])
