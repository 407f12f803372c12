"""Run directories for the report tests: LVLM-like answers (failures, hostile text, both
orders, repeats, triplets, costs) next to an embedder, with real image files to thumbnail.

Built by hand rather than by `reidbench run`, so each situation the report must show
is present and small; the metrics come from the real `compute_metrics`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from PIL import Image

from reidbench.judges import load_prompt
from reidbench.metrics.run import write_metrics
from reidbench.pairs import pairset_hash
from reidbench.tables import SCORES_SCHEMA, write_table
from tests.run_builders import labelled_pairs, score_row

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"


def _images(root: Path, names: list[str], rng: np.random.Generator, skip: set[str]) -> None:
    for name in names:
        if name in skip:
            continue
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        im = Image.new("RGB", (64, 128), colour)
        im.paste((250, 250, 250), (20, 10, 44, 40))  # a "head", so thumbnails are not flat
        im.save(path, quality=90)


def lvlm_info(name: str, *, both_orders: bool, repeats: int) -> dict[str, Any]:
    prompt = load_prompt("similarity-0-100")
    return {
        "name": name,
        "type": "lvlm",
        "provider": "openai",
        "client": "openai",
        "model": "gpt-4o-2024-08-06",
        "endpoint_host": "api.openai.com",
        "api_key_env": "OPENAI_API_KEY",
        "prompt_id": prompt.id,
        "prompt_version": prompt.version,
        "prompt_sha256": prompt.sha256,
        "params": {"temperature": 0.0, "max_tokens": 512, "image_mode": "pair"},
        "prices": {
            "in_per_mtok": 2.5,
            "out_per_mtok": 10.0,
            "as_of": "2025-01-30",
            "source": "preset",
        },
        "scale": 100.0,
        "threshold": 50.0,
        "both_orders": both_orders,
        "repeats": repeats,
    }


def make_run(
    root: Path,
    *,
    n: int = 48,
    synthetic: bool = True,
    missing_images: bool = True,
    seed: int = 7,
    bootstrap: int = 60,
    decision_only: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """Write a run directory under `root` and its metrics.json; return (run dir, metrics)."""
    rng = np.random.default_rng(seed)
    run = root / "run"
    data = root / "data"
    run.mkdir(parents=True)
    labels = (np.arange(n) % 2).astype(np.int64)
    rng.shuffle(labels)
    ids = np.arange(n, dtype=np.int64) * 5 + 3
    path_a = [f"query/{i:04d}_c1s1_000001_00.jpg" for i in range(n)]
    path_b = [f"bounding_box_test/{i:04d}_c2s1_000002_00.jpg" for i in range(n)]
    skip = {path_b[i] for i in range(n)} if missing_images else set()
    _images(data, path_a + path_b, rng, skip)
    pairs = labelled_pairs(labels, ids, path_a=path_a, path_b=path_b, cams=(0, 1))
    triplets = [[int(ids[3 * k]), int(ids[3 * k + 1]), int(ids[3 * k + 2])] for k in range(6)]
    meta = {
        "format": "reidbench-pairs/1",
        "seed": 0,
        "split": "query-gallery",
        "content_hash": pairset_hash(pairs),
        "rules": {"positives": "same pid, different cameras", "orientation": "a query, b gallery"},
        "requested": {"positives": n // 2, "negatives": n // 2, "triplets": 6},
        "camera_pairs": {"positives": {"0-1": n // 2}, "negatives": {"0-1": n // 2}},
        "triplets": triplets,
    }
    write_table(run / "pairs.parquet", pairs, meta)

    lv = np.clip(np.round(50 + 40 * (labels - 0.5) + rng.normal(0, 22, n)), 0, 100)
    status = ["ok"] * n
    for i, s in enumerate(["refusal", "refusal", "safety_block", "parse_error", "api_error"]):
        status[2 + 3 * i] = s
    status[n - 1] = "budget_exceeded"
    emb = np.clip(0.8 + 0.08 * (labels - 0.5) + rng.normal(0, 0.05, n), 0, 1)
    rows = []
    for i, pid in enumerate(ids.tolist()):
        ok = status[i] == "ok"
        hostile = f"I think {SCRIPT} and {IMG} then {{score: {int(lv[i])}}}"
        raw = hostile if i % 2 else json.dumps({"reasons": IMG, "score": int(lv[i])})
        if status[i] == "refusal":
            raw = f"I can't help with identifying people. {SCRIPT}"
        rows.append(
            score_row(
                pid,
                "gpt-4o",
                score=float(lv[i]) if ok else None,
                decision=("same" if lv[i] >= 50 else "different") if ok else "unknown",
                status=status[i],
                raw="" if status[i] in ("api_error", "budget_exceeded") else raw,
                reasons=f"similar jacket {IMG}" if ok else None,
                error=None if ok else f"{status[i]}: {SCRIPT}",
                latency_s=1.0 + (i % 5) * 0.5 if status[i] != "budget_exceeded" else None,
                tokens_in=900 if status[i] != "budget_exceeded" else 0,
                tokens_out=40 if status[i] != "budget_exceeded" else 0,
                cost_usd=0.00265 if status[i] != "budget_exceeded" else 0.0,
                cached=i % 4 == 0,
                attempts=0 if i % 4 == 0 else 1,
            )
        )
        if ok:
            flip = 30 if i % 7 == 0 else 0
            rows.append(
                score_row(
                    pid,
                    "gpt-4o",
                    score=float(np.clip(lv[i] - flip, 0, 100)),
                    order="ba",
                    decision="unknown",
                    raw="{}",
                    tokens_in=900,
                    tokens_out=40,
                    cost_usd=0.00265,
                    latency_s=1.2,
                    attempts=1,
                )
            )
            rows.append(
                score_row(
                    pid,
                    "gpt-4o",
                    score=float(np.clip(lv[i] + (i % 3) * 5, 0, 100)),
                    repeat=1,
                    raw="{}",
                    tokens_in=900,
                    tokens_out=40,
                    cost_usd=0.00265,
                    latency_s=1.1,
                    attempts=1,
                )
            )
        rows.append(score_row(pid, "handcrafted", score=float(emb[i])))
        if decision_only:  # a same/different prompt: decisions, no scores; right 80% of the time
            same = bool(labels[i]) == (i % 5 != 0)
            rows.append(
                score_row(pid, "yesno", decision="same" if same else "different", raw="yes")
            )
    systems = [
        lvlm_info("gpt-4o", both_orders=True, repeats=2),
        {
            "name": "handcrafted",
            "type": "reid",
            "model": "handcrafted",
            "weights": None,
            "fingerprint": "handcrafted-0123456789abcdef",
            "scale": 1.0,
            "threshold": None,
        },
    ]
    if decision_only:
        systems.append({"name": "yesno", "type": "lvlm", "scale": 100.0, "threshold": 50.0})
    write_table(run / "scores.parquet", pa.Table.from_pylist(rows, schema=SCORES_SCHEMA))
    manifest = {
        "reidbench_version": "0.1.0",
        "created": "2026-11-28T15:00:00Z",
        "config": {
            "name": "report-test",
            "bootstrap": bootstrap,
            "seed": 0,
            "systems": [{"name": "gpt-4o", "type": "lvlm", "prompt": "similarity-0-100"}],
        },
        "dataset": {
            "dataset": "market1501",
            "root": str(data),
            "synthetic": synthetic,
            "query_ids": n,
            "query_images": n,
            "gallery_ids": n,
            "gallery_images": n,
            "cameras": 2,
        },
        "pairs": meta,
        "systems": systems,
    }
    (run / "run.json").write_text(json.dumps(manifest))
    cmc = np.minimum(1.0, 0.4 + 0.03 * np.arange(20)).tolist()
    retrieval = {
        "handcrafted": {
            "rank1": cmc[0],
            "rank5": cmc[4],
            "rank10": cmc[9],
            "mAP": 0.31,
            "mINP": 0.12,
            "cmc": cmc,
            "num_query": n,
            "num_gallery": n,
        }
    }
    (run / "retrieval.json").write_text(json.dumps(retrieval))
    return run, write_metrics(run)
