"""Extraction throughput, end to end (read + decode + resize + model), and bf16 accuracy.

    .venv/bin/python bench/bench_extract.py [--images N] [--repeats R] [--batch-size B]
        [--dir FOLDER] [--models personvit-s,handcrafted,...] [--device cpu|cuda|auto]

Models: any `load_embedder` name; `osnet_*` run with random weights in torchreid's
layout (fp32; bf16 was not verified for OSNet); `onnx:NAME` exports NAME (random
weights) with `reidbench.models.onnx_export` and times the ONNX Runtime embedder.

Images: the JPEG crops of `reidbench.datasets.synthetic.generate` (the synthetic
Market-1501 set, 128x64 like Market's), or your own folder with `--dir`.
PersonViT runs with random weights in the released checkpoint layout (TransReID
initialisation: trunc-normal 0.02), loaded through `load_embedder` like a real
checkpoint. Speed does not depend on the values; the bf16-vs-fp32 cosine is
measured on these weights, which is indicative, not a proof for trained ones.

Every run calls `extract_features` without a cache, so each one decodes and
embeds every image. Prints a Markdown table and writes JSON with `--json FILE`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from reidbench.models import extract_features, load_embedder
from reidbench.models.vit import VIT_BASE, VIT_SMALL, ReIDViT


def make_images(folder: Path, n: int) -> list[Path]:
    """Synthetic Market-layout crops (the project's generator), at least n of them; plain
    procedural 128x64 JPEGs if the generator is unavailable."""
    try:
        from reidbench.datasets.synthetic import generate

        generate(folder, train_ids=2, test_ids=max(4, n // 8), seed=0)
        files = sorted((folder / "bounding_box_test").glob("*.jpg"))
        files += sorted((folder / "query").glob("*.jpg"))
        files = [f for f in files if not f.name.startswith("-1")]
    except Exception as exc:  # the bench must still run where the generator does not
        print(f"synthetic generator unavailable ({exc}); using procedural crops", flush=True)
        files = []
    if len(files) >= n:
        return files[:n]
    from PIL import Image

    rng = np.random.default_rng(0)
    (folder / "plain").mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n):
        a = np.empty((128, 64, 3), dtype=np.float64)
        a[:] = rng.integers(0, 256, 3)
        a[16:64, 12:52] = rng.integers(0, 256, 3)
        a[64:, 16:48] = rng.integers(0, 256, 3)
        a = np.clip(a + rng.normal(0, 12, a.shape), 0, 255).astype(np.uint8)
        files.append(folder / "plain" / f"{i:05d}.jpg")
        Image.fromarray(a).save(files[-1], quality=90)
    return files


def random_checkpoint(path: Path, size: str) -> Path:
    cfg = VIT_SMALL if size == "s" else VIT_BASE
    torch.manual_seed(0)
    model = ReIDViT(cfg, fc_classes=1000, num_ids=751)  # TransReID init inside
    torch.save(model.state_dict(), path)
    return path


def random_osnet_checkpoint(path: Path, name: str) -> Path:
    """torchreid-layout OSNet weights (torch's default init): speed does not depend on them."""
    from reidbench.models.osnet import OSNET_ARCHS, OSNet

    torch.manual_seed(0)
    torch.save(OSNet(OSNET_ARCHS[name]).state_dict(), path)
    return path


def checkpoint_for(work: Path, model: str) -> Path:
    if model.startswith("personvit"):
        return random_checkpoint(work / f"{model}.pth", model[-1])
    return random_osnet_checkpoint(work / f"{model}.pth", model)


def onnx_file(work: Path, model: str) -> Path:
    from reidbench.models.onnx_export import export_onnx

    emb = load_embedder(model, weights=checkpoint_for(work, model), precision="fp32")
    result = export_onnx(emb, work / f"{model}.onnx")
    print(f"exported {model}: parity min cosine {result.min_cosine:.6f}", flush=True)
    return result.path


def timed(fn, repeats: int) -> tuple[list[float], list[float], np.ndarray]:
    """Wall seconds and process CPU seconds (all threads) per run, and the last output."""
    times, cpu, out = [], [], None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    assert out is not None
    return times, cpu, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=320)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--dir", type=Path, default=None, help="use these JPEGs instead")
    ap.add_argument("--models", default="personvit-s,handcrafted,efficientnet-lite0,mobilenetv2")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="reidbench-bench-"))
    if args.dir:
        files = sorted(p for p in args.dir.rglob("*") if p.suffix.lower() in {".jpg", ".png"})
        files = files[: args.images]
    else:
        files = make_images(work / "synth", args.images)
    n = len(files)
    print(
        f"# {n} images, batch {args.batch_size}, {args.repeats} runs each; torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}; {platform.processor() or platform.machine()}",
        flush=True,
    )
    rows, record = [], {"images": n, "batch_size": args.batch_size, "runs": []}
    for model in args.models.split(","):
        model = model.strip()
        configs: list[tuple[str, dict]] = []
        if model.startswith("personvit"):
            ckpt = random_checkpoint(work / f"{model}.pth", model[-1])
            configs = [
                ("fp32", {"weights": ckpt, "precision": "fp32"}),
                ("auto", {"weights": ckpt, "precision": "auto"}),
            ]
        elif model.startswith("osnet"):
            configs = [("fp32", {"weights": checkpoint_for(work, model), "precision": "fp32"})]
        elif model.startswith("onnx:"):
            path = onnx_file(work, model[len("onnx:") :])
            model = f"onnx:{path.name}"
            configs = [("fp32", {})]
        elif model == "handcrafted":
            configs = [("fp32", {})]
        else:
            configs = [("fp32", {"precision": "fp32"}), ("bf16", {"precision": "bf16"})]
        reference = None
        for label, opts in configs:
            try:
                name = f"onnx:{work / model[5:]}" if model.startswith("onnx:") else model
                emb = load_embedder(name, device=args.device, **opts)
            except Exception as exc:  # a missing optional package: report and go on
                print(f"skip {model} {label}: {exc}", file=sys.stderr)
                continue
            extract_features(emb, files[: args.batch_size], batch_size=args.batch_size)  # warm
            load = os.getloadavg()[0]
            times, cpu, feats = timed(
                lambda emb=emb: extract_features(emb, files, batch_size=args.batch_size),
                args.repeats,
            )
            rates = [n / t for t in times]
            cpu_rate = n / statistics.median(cpu)  # images per CPU-second: load-independent
            cos = None
            if reference is None:
                reference = feats
            elif emb.info["precision"] != "fp32":
                per = (reference.astype(np.float64) * feats).sum(axis=1)
                cos = (float(per.min()), float(per.mean()))
            prec = emb.info.get("precision", "fp32")
            rows.append(
                f"| {model} | {label} ({prec}) | {statistics.median(rates):.1f} | "
                f"{min(rates):.1f}-{max(rates):.1f} | {cpu_rate:.1f} | {load:.1f} | "
                + (f"{cos[0]:.5f} / {cos[1]:.5f}" if cos else "-")
                + " |"
            )
            record["runs"].append(
                {
                    "model": model,
                    "config": label,
                    "precision": prec,
                    "rates": rates,
                    "cpu_seconds": cpu,
                    "load_before": load,
                    "cosine_min_mean": cos,
                    "device": emb.info["device"],
                }
            )
            print(rows[-1], flush=True)
    print(
        "\n| model | precision | median img/s | range img/s | img per CPU-s | load | "
        "cosine vs fp32 min / mean |"
    )
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if args.json:
        args.json.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
