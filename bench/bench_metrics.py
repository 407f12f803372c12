"""Benchmark `compute_metrics` on a synthetic run directory (run by hand; see docs/benchmarks.md).

    .venv/bin/python bench/bench_metrics.py                    # 5 systems x 1,000 pairs x 1,000
    .venv/bin/python bench/bench_metrics.py --pairs 10000      # a larger pair set

The run has LVLM-like systems (integer 0-100 scores, refusals and parse errors,
one asked in both orders and twice) and embedder-like systems (continuous 0-1
scores, threshold chosen on the calibration half), and 100 triplets.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from reidbench.metrics.run import compute_metrics, metrics_json
from reidbench.tables import PAIRS_SCHEMA, SCORES_SCHEMA, write_table


def make_run(out: Path, n: int, n_systems: int, bootstrap: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.5).astype(np.int8)
    ids = np.arange(n, dtype=np.int64)
    pairs = pa.table(
        {
            "pair_id": ids,
            "path_a": [f"query/{i:06d}.jpg" for i in range(n)],
            "path_b": [f"gallery/{i:06d}.jpg" for i in range(n)],
            "pid_a": ids,
            "pid_b": ids,
            "cam_a": np.ones(n, np.int64),
            "cam_b": np.full(n, 2, np.int64),
            "label": y,
        },
        schema=PAIRS_SCHEMA,
    )
    triplets = [[3 * k, 3 * k + 1, 3 * k + 2] for k in range(min(100, n // 3))]
    write_table(out / "pairs.parquet", pairs, {"triplets": triplets})
    tables, systems = [], []
    for k in range(n_systems):
        lvlm = k % 2 == 0
        scale = 100.0 if lvlm else 1.0
        s = np.clip(rng.normal(0.5 + (y - 0.5) * 0.2 * (k + 1), 0.2), 0, 1) * scale
        status = np.full(n, "ok", dtype=object)
        if lvlm:
            s = np.round(s)
            status[rng.random(n) < 0.05] = "refusal"
            status[rng.random(n) < 0.02] = "parse_error"
        score = pa.array(np.where(status == "ok", s, np.nan), from_pandas=True)
        base = {
            "pair_id": ids,
            "system": [f"s{k}"] * n,
            "score": score,
            "decision": ["unknown"] * n,
            "status": status.tolist(),
            "latency_s": rng.gamma(2.0, 0.5, n) if lvlm else pa.nulls(n, pa.float64()),
            "tokens_in": np.full(n, 800),
            "tokens_out": np.full(n, 40),
            "cost_usd": np.full(n, 0.0024 if lvlm else 0.0),
            "raw": ["{'score': 42}"] * n,
            "order": ["ab"] * n,
            "repeat": np.zeros(n, np.int64),
            "reasons": [None] * n,
            "error": [None] * n,
            "cached": [False] * n,
            "attempts": np.ones(n, np.int64),
        }
        tables.append(pa.table(base, schema=SCORES_SCHEMA))
        if k == 0:
            for order, rep in (("ba", 0), ("ab", 1)):
                extra = dict(base, order=[order] * n, repeat=np.full(n, rep, np.int64))
                tables.append(pa.table(extra, schema=SCORES_SCHEMA))
        systems.append(
            {
                "name": f"s{k}",
                "type": "lvlm" if lvlm else "reid",
                "scale": scale,
                "threshold": 50.0 if lvlm else None,
            }
        )
    write_table(out / "scores.parquet", pa.concat_tables(tables))
    manifest = {
        "config": {"bootstrap": bootstrap, "seed": 0},
        "dataset": {"synthetic": True},
        "pairs": {},
        "systems": systems,
    }
    (out / "run.json").write_text(json.dumps(manifest))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--systems", type=int, default=5)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3, help="runs; the best is reported")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp)
        make_run(run, args.pairs, args.systems, args.bootstrap)
        times, cpu = [], []
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            metrics = compute_metrics(run)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        size = len(metrics_json(metrics).encode())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{args.systems} systems x {args.pairs} pairs x {args.bootstrap} resamples: "
        f"best {min(times):.2f} s, median {sorted(times)[len(times) // 2]:.2f} s "
        f"({args.repeat} runs), best CPU {min(cpu):.2f} s; "
        f"metrics.json {size / 1024:.0f} KiB; peak RSS {rss:.0f} MiB"
    )


if __name__ == "__main__":
    main()
