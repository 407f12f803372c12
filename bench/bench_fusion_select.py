"""Input selection of logistic fusion over many draws (run by hand; results in docs/fusion.md).

    .venv/bin/python bench/bench_fusion_select.py            # 30 draws, about 3-5 minutes

Each draw is `tests/fusion_fixtures.with_noise(seed=draw)`: 400 pairs (about 200 per
half), an informative embedder `emb-a` and `noise`, a uniform random score. The fusion
of emb-a + noise is fitted with input selection (the default) and without
(`select=False`); for each the held-out AUC minus emb-a's held-out AUC is printed, and
how often the noise was kept.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parents[1]

from reidbench.fusion import fuse_logistic  # noqa: E402
from reidbench.rundir import open_run  # noqa: E402
from tests.fusion_fixtures import with_noise, write_run  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--draws", type=int, default=30)
    args = ap.parse_args()
    kept, d_sel, d_all = 0, [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.draws):
            y, systems = with_noise(seed=seed)
            data = open_run(write_run(Path(tmp) / str(seed), y, systems))
            held = ~data.calibration()
            a = systems["emb-a"]["score"]
            base = roc_auc_score(y[held], a[held])
            sel = fuse_logistic(data, ["emb-a", "noise"])
            every = fuse_logistic(data, ["emb-a", "noise"], select=False)
            d_sel.append(roc_auc_score(y[held], sel.prob[held]) - base)
            d_all.append(roc_auc_score(y[held], every.prob[held]) - base)
            kept += "noise" in sel.inputs
            means = ", ".join(
                f"{'+'.join(c.inputs)} {c.mean:.4f}" for c in sel.selection.candidates
            )
            print(
                f"draw {seed:2d}: kept {'+'.join(sel.inputs):12s} (CV AUC {means}); held-out "
                f"fused - emb-a: selection {d_sel[-1]:+.4f}, every input {d_all[-1]:+.4f}"
            )
    n = args.draws
    print(f"\nnoise kept on {kept} of {n} draws")
    for label, d in (("selection", d_sel), ("every input", d_all)):
        d = np.asarray(d)
        print(
            f"{label:12s}: fused - emb-a on held-out pairs: mean {d.mean():+.4f}, "
            f"worst {d.min():+.4f}, below emb-a on {(d < -1e-12).sum()} of {n} draws"
        )


if __name__ == "__main__":
    main()
