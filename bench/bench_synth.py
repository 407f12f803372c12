"""Speed and difficulty of the synthetic pedestrian generator (run by hand).

    .venv/bin/python bench/bench_synth.py                  # default set, seed 0
    .venv/bin/python bench/bench_synth.py --seeds 0 1 2 3  # difficulty across seeds

Speed is single-process: `generate` end to end (plan, cameras, render, JPEG, files,
marker) and render+encode alone (no file system). `--where /dev/shm` takes the disk
out of the end-to-end figure (file creation on a busy shared disk costs as much as
rendering). CPU seconds are reported next to
wall seconds because the machine this was written on is shared. Difficulty is the
rank-1 of a plain colour histogram (8x8x8 joint RGB, L2-normalised, cosine) on the
test split, Market protocol. Results go to docs/benchmarks.md by hand.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from reidbench.datasets.synthetic.build import (
    DEFAULT_TEST_IDS,
    DEFAULT_TRAIN_IDS,
    _plan,
    _World,
    generate,
)
from reidbench.datasets.synthetic.check import histogram_baseline


def _timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def bench_generate(
    seed: int, train_ids: int, test_ids: int, where: Path | None
) -> dict[str, object]:
    with tempfile.TemporaryDirectory(dir=where) as tmp:
        out = Path(tmp) / "synth"
        counts, wall, cpu = _timed(
            lambda: generate(out, train_ids=train_ids, test_ids=test_ids, seed=seed)
        )
        quality = {space: histogram_baseline(out, space) for space in ("rgb", "hsv")}
    n = int(counts["files"])
    return {
        "seed": seed,
        "files": n,
        "generate_wall_s": round(wall, 3),
        "generate_cpu_s": round(cpu, 3),
        "images_per_s_wall": round(n / wall, 1),
        "images_per_s_cpu": round(n / cpu, 1),
        "rank1_rgb": round(float(quality["rgb"]["rank1"]), 4),
        "mAP_rgb": round(float(quality["rgb"]["mAP"]), 4),
        "rank1_hsv": round(float(quality["hsv"]["rank1"]), 4),
        "chance_rank1": round(float(quality["rgb"]["chance_rank1"]), 4),
        "queries": quality["rgb"]["queries"],
        "content_sha256": counts["content_sha256"],
    }


def bench_render(seed: int, train_ids: int, test_ids: int, repeats: int) -> dict[str, float]:
    """Render + JPEG encode only: the per-image cost without the file system."""
    jobs = _plan(seed, train_ids, test_ids, 6)
    world, setup_wall, setup_cpu = _timed(lambda: _World(seed, 6))
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        world._tracks.clear()
        _, wall, cpu = _timed(lambda: [world.render(j) for j in jobs])
        best_wall, best_cpu = min(best_wall, wall), min(best_cpu, cpu)
    return {
        "images": len(jobs),
        "camera_setup_wall_s": round(setup_wall, 3),
        "camera_setup_cpu_s": round(setup_cpu, 3),
        "render_encode_per_s_wall": round(len(jobs) / best_wall, 1),
        "render_encode_per_s_cpu": round(len(jobs) / best_cpu, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--train-ids", type=int, default=DEFAULT_TRAIN_IDS)
    ap.add_argument("--test-ids", type=int, default=DEFAULT_TEST_IDS)
    ap.add_argument("--repeats", type=int, default=3, help="render-only repeats (best kept)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument(
        "--where", type=Path, help="folder to generate in (default: $TMPDIR); e.g. /dev/shm"
    )
    args = ap.parse_args()
    results: dict[str, object] = {
        "render": bench_render(args.seeds[0], args.train_ids, args.test_ids, args.repeats),
        "generate": [
            bench_generate(s, args.train_ids, args.test_ids, args.where) for s in args.seeds
        ],
    }
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
