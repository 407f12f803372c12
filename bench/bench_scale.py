"""One box at its limits: decode ceiling, model ceiling, end to end (local and Ray), cache.

    .venv/bin/python bench/bench_scale.py [--images N] [--model personvit-s]
        [--precision auto|fp32|bf16] [--batch-size B] [--device cpu|cuda|auto]
        [--repeats R] [--workers W] [--compile] [--no-ray] [--json FILE]

What each line times (images from `reidbench.datasets.synthetic.generate`, the
128x64 JPEGs of bench_extract.py; PersonViT with random weights in the released
layout, loaded through `load_embedder`):

- decode ceiling: read + PIL decode + resize to the model's input, in W worker
  processes (the `models.decode` workers), no model;
- model ceiling: `embed_prepared` on batches decoded beforehand (host to device
  copy included), no reading or decoding;
- end to end, local: `extract_features` into a fresh feature cache (hashing,
  decoding in processes, model, cache writes);
- end to end, Ray: the same through the Ray engine on a local one-node instance
  started here (start-up not timed; a warm-up pass is);
- cache: rows per second written in transactions of 64 and of WRITE_ROWS rows,
  and read back with `get_many`.

Each end-to-end figure is printed as a fraction of the ceiling, the smaller of
the decode and model ceilings. The median of the repeats is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from bench.bench_extract import make_images, random_checkpoint
from reidbench.models import FeatureCache, extract_features, load_embedder
from reidbench.models import decode as decode_mod
from reidbench.models.extract import WRITE_ROWS


def median_rate(n: int, fn, repeats: int) -> tuple[float, list[float]]:
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates), rates


def decode_ceiling(emb, files: list[Path], workers: int, repeats: int) -> tuple[float, list]:
    import multiprocessing

    ctx = multiprocessing.get_context("forkserver")
    preparer = decode_mod.preparer_of(emb)
    chunk = 64
    chunks = [files[i : i + chunk] for i in range(0, len(files), chunk)]
    with ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=decode_mod._init_worker, initargs=(preparer,)
    ) as pool:
        list(pool.map(decode_mod._prepare_paths, chunks[:workers]))  # start the workers

        def run() -> None:
            for _ in pool.map(decode_mod._prepare_paths, chunks):
                pass

        return median_rate(len(files), run, repeats)


def model_ceiling(emb, files: list[Path], batch: int, repeats: int) -> tuple[float, list]:
    from reidbench.models.preprocess import decode_image, read_bytes

    prepared = np.stack([emb.prepare(decode_image(read_bytes(p), p)) for p in files])
    batches = [prepared[i : i + batch] for i in range(0, len(prepared), batch)]
    emb.embed_prepared(batches[0])  # warm-up

    def run() -> None:
        for b in batches:
            emb.embed_prepared(b)
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    return median_rate(len(files), run, repeats)


def end_to_end(emb, files: list[Path], batch: int, repeats: int, work: Path, tag: str):
    counter = iter(range(10**6))

    def run() -> None:
        with FeatureCache(work / f"cache-{tag}-{next(counter)}") as cache:
            extract_features(emb, files, batch_size=batch, cache=cache)

    run()  # warm-up: pools, forkserver, Ray Data operators
    return median_rate(len(files), run, repeats)


def cache_rates(n: int, dim: int, work: Path) -> dict[str, float]:
    rng = np.random.default_rng(0)
    rows = {f"{i:064x}": rng.normal(size=dim).astype(np.float32) for i in range(n)}
    keys = list(rows)
    out = {}
    for label, per in (("write_per_64", 64), (f"write_per_{WRITE_ROWS}", WRITE_ROWS)):
        with FeatureCache(work / f"c-{label}") as cache:
            t0 = time.perf_counter()
            for i in range(0, n, per):
                cache.put_many("fp", {k: rows[k] for k in keys[i : i + per]}, {"x": 1})
            out[label] = n / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            cache.get_many("fp", keys, dim)
            out[f"read (get_many, after {label})"] = n / (time.perf_counter() - t0)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=640)
    ap.add_argument("--model", default="personvit-s")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=None, help="decode processes (default: all)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="reidbench-scale-"))
    files = make_images(work / "synth", args.images)
    n = len(files)
    workers = args.workers or decode_mod.decode_workers()
    os.environ["REIDBENCH_DECODE_WORKERS"] = str(workers)
    decode_mod.PROCESS_MIN_IMAGES = 0  # the process path at any size: that is what is measured
    opts: dict = {"device": args.device}
    if args.model.startswith("personvit"):
        opts["weights"] = random_checkpoint(work / "w.pth", args.model[-1])
    if args.model != "handcrafted":
        opts["precision"] = args.precision
    emb = load_embedder(args.model, **opts)
    if args.compile:
        emb.model = torch.compile(emb.model)
    print(
        f"# {n} images, {args.model} {emb.info['precision']} on {emb.info['device']}, batch "
        f"{args.batch_size}, {workers} decode processes, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}{', compiled' if args.compile else ''}",
        flush=True,
    )
    rows: dict[str, float] = {}
    record: dict = {"images": n, "model": args.model, "precision": emb.info["precision"]}
    rows["decode ceiling (processes)"], record["decode"] = decode_ceiling(
        emb, files, workers, args.repeats
    )
    print(f"decode ceiling: {rows['decode ceiling (processes)']:.0f} img/s", flush=True)
    rows["model ceiling"], record["model"] = model_ceiling(
        emb, files, args.batch_size, args.repeats
    )
    print(f"model ceiling: {rows['model ceiling']:.1f} img/s", flush=True)
    rows["end to end, local"], record["local"] = end_to_end(
        emb, files, args.batch_size, args.repeats, work, "local"
    )
    print(f"end to end, local: {rows['end to end, local']:.1f} img/s", flush=True)
    if not args.no_ray:
        try:
            from reidbench.engine import session

            with session("ray"):
                rows["end to end, Ray (one node)"], record["ray"] = end_to_end(
                    emb, files, args.batch_size, args.repeats, work, "ray"
                )
            print(f"end to end, Ray: {rows['end to end, Ray (one node)']:.1f} img/s", flush=True)
        except Exception as exc:  # Ray not installed: report, keep the rest
            print(f"ray skipped: {exc}", file=sys.stderr)
    ceiling = min(rows["decode ceiling (processes)"], rows["model ceiling"])
    cache = cache_rates(max(n, 20_000), emb.dim, work)
    record["cache_rows_per_s"] = cache
    record["rates"] = rows
    print(f"\n| stage | img/s | fraction of ceiling ({ceiling:.1f} img/s) |\n|---|---|---|")
    for name, rate in rows.items():
        print(f"| {name} | {rate:.1f} | {rate / ceiling:.2f} |")
    print("\n| feature cache | rows/s |\n|---|---|")
    for name, rate in cache.items():
        print(f"| {name} | {rate:,.0f} |")
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
