"""Benchmark `render_report` (run by hand; see docs/benchmarks.md).

    .venv/bin/python bench/bench_report.py                          # 5 systems x 1,000 pairs
    .venv/bin/python bench/bench_report.py --run runs/demo          # also a real run directory

The synthetic run is bench_metrics.py's (LVLM-like systems with refusals and parse
errors, one asked in both orders and twice, embedder-like systems), with a real
64 x 128 JPEG for every image so the failure gallery embeds thumbnails.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench.bench_metrics import make_run
from reidbench.metrics.run import compute_metrics
from reidbench.report import render_report

IMPORT = (
    "import time; t = time.perf_counter(); import reidbench.report.context; "
    "print(time.perf_counter() - t)"
)


def _images(root: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    for kind in ("query", "gallery"):
        (root / kind).mkdir(parents=True)
        for i in range(n):
            px = rng.integers(0, 255, (128, 64, 3), dtype=np.uint8)
            Image.fromarray(px).save(root / kind / f"{i:06d}.jpg", quality=90)


def _time(run: Path, metrics: dict, repeat: int) -> tuple[list[float], list[float], int]:
    wall, cpu, size = [], [], 0
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        html, _ = render_report(run, metrics, generated="bench")
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        size = len(html.encode())
    return wall, cpu, size


def _line(label: str, wall: list[float], cpu: list[float], size: int) -> str:
    med = sorted(wall)[len(wall) // 2]
    return (
        f"{label}: median {med:.2f} s, best {min(wall):.2f} s ({len(wall)} runs), "
        f"best CPU {min(cpu):.2f} s; report.html {size / 1e6:.2f} MB"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--systems", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--run", type=Path, help="also time a run directory with metrics.json")
    args = ap.parse_args()
    imports = [
        float(
            subprocess.run(
                [sys.executable, "-c", IMPORT], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(3)
    ]
    print(
        f"import reidbench.report (fresh process, matplotlib included): "
        f"median {sorted(imports)[1]:.2f} s"
    )
    if args.run:
        metrics = json.loads((args.run / "metrics.json").read_text())
        n = len(metrics["systems"])
        print(_line(f"{args.run} ({n} systems)", *_time(args.run, metrics, args.repeat)))
    with tempfile.TemporaryDirectory() as tmp:
        run, data = Path(tmp) / "run", Path(tmp) / "data"
        run.mkdir()
        make_run(run, args.pairs, args.systems, bootstrap=200)
        _images(data, args.pairs)
        manifest = json.loads((run / "run.json").read_text())
        manifest["dataset"]["root"] = str(data)
        (run / "run.json").write_text(json.dumps(manifest))
        metrics = compute_metrics(run)
        label = f"synthetic, {args.systems} systems x {args.pairs} pairs"
        print(_line(label, *_time(run, metrics, args.repeat)))


if __name__ == "__main__":
    main()
