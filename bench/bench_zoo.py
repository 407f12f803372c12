"""Extraction throughput of the model-zoo embedders (TransReID, CLIP-ReID, fast-reid).

    .venv/bin/python bench/bench_zoo.py [--images N] [--repeats R] [--batch-size B]
        [--models transreid-vit-b16,...] [--device cpu|cuda|auto] [--json FILE]

Each model gets random weights in its released layout at full size (our module's own
initialisation, saved and loaded back through `load_embedder` like a real checkpoint:
speed does not depend on the values) and runs `extract_features` end to end (read,
decode, resize, model) without a cache on the synthetic Market-1501 crops, with camera
ids for the SIE models. Reports images/s (best of R runs after one warm-up batch) and
the process CPU seconds per image, which a shared, loaded machine distorts less than wall
time. `personvit-b` (same pipeline) is a reference row.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from reidbench.models import extract_features, load_embedder

MODELS = (
    "personvit-b",
    "transreid-vit-b16",
    "clip-reid-vit-b16",
    "fastreid-bot-r50-ibn",
    "fastreid-sbs-r50-ibn",
    "fastreid-sbs-r101-ibn",
)


def random_checkpoint(name: str, folder: Path) -> Path:
    """A full-size state dict of `name` in its released layout (random values)."""
    torch.manual_seed(0)
    if name == "personvit-b":
        from reidbench.models.vit import VIT_BASE, ReIDViT

        model: torch.nn.Module = ReIDViT(VIT_BASE, fc_classes=1000, num_ids=751)
    elif name == "transreid-vit-b16":
        from reidbench.models.transreid import VIT_B16, TransReIDJPM
        from reidbench.models.vit import ViTConfig

        cfg = ViTConfig(768, 12, 12, img_size=(256, 128), stride=12)
        model = TransReIDJPM(cfg, VIT_B16, fc_classes=1000, sie_cameras=6)
    elif name == "clip-reid-vit-b16":
        from reidbench.models.clipreid import VIT_B16 as CLIP_B16
        from reidbench.models.clipreid import CLIPReID

        model = CLIPReID(CLIP_B16, (21, 10), 12, sie_cameras=6)
        for p in model.parameters():
            if p.ndim < 2:
                continue
            torch.nn.init.normal_(p, std=0.02)
    else:
        from reidbench.models.fastreid import FASTREID_ARCHS, FastReIDBaseline

        model = FastReIDBaseline(FASTREID_ARCHS[name], legacy_maxpool=True)
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.normal_(m.weight, std=0.3 * (2.0 / m.weight[0].numel()) ** 0.5)
    path = folder / f"{name}.pth"
    torch.save(model.state_dict(), path)
    return path


def make_images(folder: Path, n: int) -> list[Path]:
    from reidbench.datasets.synthetic import generate

    generate(folder, train_ids=2, test_ids=max(4, n // 8), seed=0)
    files = sorted((folder / "bounding_box_test").glob("*.jpg"))
    files += sorted((folder / "query").glob("*.jpg"))
    return [f for f in files if not f.name.startswith("-1")][:n]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = make_images(folder / "data", args.images)
        cams = [int(f.name.split("_c")[1][0]) - 1 for f in files]
        for name in args.models.split(","):
            ckpt = random_checkpoint(name, folder)
            emb = load_embedder(name, weights=ckpt, device=args.device, precision="fp32")
            extract_features(emb, files[: args.batch_size], batch_size=args.batch_size)  # warm-up
            best = cpu = float("inf")
            for _ in range(args.repeats):
                t0, c0 = time.perf_counter(), time.process_time()
                feats = extract_features(emb, files, batch_size=args.batch_size, camids=cams)
                best = min(best, time.perf_counter() - t0)
                cpu = min(cpu, time.process_time() - c0)
            assert np.isfinite(feats).all(), name
            rows.append(
                {
                    "model": name,
                    "dim": emb.dim,
                    "input_hw": list(emb.preprocess.size),
                    "images": len(files),
                    "seconds": round(best, 3),
                    "images_per_s": round(len(files) / best, 1),
                    "cpu_s_per_image": round(cpu / len(files), 3),
                }
            )
            print(f"{name}: {rows[-1]['images_per_s']} img/s", flush=True)
            del emb
    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "device": args.device,
        "batch_size": args.batch_size,
    }
    print(f"\n{env}\n\n| model | input | dim | images/s | CPU s / image |\n|---|---|---|---|---|")
    for r in rows:
        h, w = r["input_hw"]
        print(
            f"| `{r['model']}` | {h}x{w} | {r['dim']} | {r['images_per_s']:,} "
            f"| {r['cpu_s_per_image']} |"
        )
    if args.json:
        args.json.write_text(json.dumps({"env": env, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
