"""Test data for the fusion tests: hand-built run directories and a scripted LVLM oracle.

TEST FIXTURES ONLY. The oracle tells the loopback fake server (tests/fake_llm_server.py)
the identity behind each image it receives, so it can answer like a noisy judge that
knows the truth. It is test data, never a product backend.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from reidbench.pairs import pairset_hash
from reidbench.tables import SCORES_SCHEMA, write_table
from tests.run_builders import labelled_pairs, score_row

LVLM_COST = (1000 * 2.5 + 20 * 10.0) / 1e6  # one answer: 1000 tokens in, 20 out


def pair_ids(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.int64) * 7 + 11  # unrelated to row numbers


def write_run(
    root: Path,
    labels: np.ndarray,
    systems: dict[str, dict[str, Any]],
    *,
    seed: int = 0,
    bootstrap: int = 50,
) -> Path:
    """A run directory: `systems` maps name -> {"type", "score", optional "status",
    "cost", "threshold", "has_row"} with arrays aligned to `labels`."""
    root.mkdir(parents=True, exist_ok=True)
    n = labels.size
    ids = pair_ids(n)
    pairs = labelled_pairs(labels, ids)
    write_table(root / "pairs.parquet", pairs, {"content_hash": pairset_hash(pairs), "seed": seed})
    rows, entries = [], []
    for name, spec in systems.items():
        kind = spec["type"]
        scale = 100.0 if kind == "lvlm" else 1.0
        score = np.asarray(spec["score"], dtype=np.float64)
        status = np.asarray(spec.get("status", ["ok"] * n), dtype=object)
        cost = np.asarray(spec.get("cost", np.zeros(n)), dtype=np.float64)
        has_row = np.asarray(spec.get("has_row", np.ones(n, bool)), dtype=bool)
        thr = spec.get("threshold", 50.0 if kind == "lvlm" else None)
        for i in np.flatnonzero(has_row):
            ok = status[i] == "ok"
            decision = "unknown"
            if kind == "lvlm" and ok:
                decision = "same" if score[i] >= (thr if thr is not None else 50) else "different"
            rows.append(
                score_row(
                    ids[i],
                    name,
                    score=float(score[i]) if ok else None,
                    decision=decision,
                    status=str(status[i]),
                    tokens_in=1000 if kind == "lvlm" else 0,
                    tokens_out=20 if kind == "lvlm" else 0,
                    cost_usd=float(cost[i]),
                    attempts=1 if kind == "lvlm" else 0,
                )
            )
        entries.append({"name": name, "type": kind, "scale": scale, "threshold": thr})
    write_table(root / "scores.parquet", pa.Table.from_pylist(rows, schema=SCORES_SCHEMA))
    manifest = {
        "reidbench_version": "0.1.0",
        "created": "2026-01-01T00:00:00Z",
        "config": {"name": "fusion-test", "bootstrap": bootstrap, "seed": seed},
        "dataset": {"dataset": "market1501", "root": "/data", "synthetic": True},
        "pairs": {"content_hash": pairset_hash(pairs)},
        "systems": entries,
    }
    (root / "run.json").write_text(json.dumps(manifest))
    return root


def two_embedders_and_lvlm(n: int = 400, seed: int = 0, refusals: float = 0.1):
    """Labels and three systems with independent noise: two embedders and a failing LVLM."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.5).astype(np.int64)
    emb_a = np.clip(0.70 + 0.08 * y + rng.normal(0, 0.06, n), 0, 1)
    emb_b = np.clip(0.55 + 0.08 * y + rng.normal(0, 0.06, n), 0, 1)
    lv = np.clip(np.round(50 + 36 * (y - 0.5) + rng.normal(0, 22, n)), 0, 100)
    status = np.where(rng.random(n) < refusals, "refusal", "ok").astype(object)
    systems = {
        "emb-a": {"type": "reid", "score": emb_a},
        "emb-b": {"type": "reid", "score": emb_b},
        "judge": {
            "type": "lvlm",
            "score": lv,
            "status": status,
            "cost": np.full(n, LVLM_COST),
        },
    }
    return y, systems


# -- the scripted LVLM ------------------------------------------------------------------


def image_identities(root: Path, paths: list[str], spec: Any) -> dict[str, int]:
    """sha256 of the bytes a judge is sent for each image -> the pid in its file name."""
    from reidbench.judges.images import prepare

    out = {}
    for rel in paths:
        img = prepare(root / rel, root / rel, spec)[0]
        out[img.sha256] = int(Path(rel).name.split("_")[0])
    return out


def oracle_score_fn(identities: dict[str, int], noise: int = 30):
    """A judge that knows who is who: 80 for the same person, 20 otherwise, +- noise
    (deterministic from the image bytes, so re-runs and tests can predict it)."""

    def score(images: list[bytes]) -> int:
        shas = [hashlib.sha256(b).hexdigest() for b in images]
        same = identities.get(shas[0], -1) == identities.get(shas[1], -2)
        jitter = int(hashlib.sha256(b"".join(images)).hexdigest()[:8], 16) % (2 * noise + 1)
        return int(np.clip((80 if same else 20) + jitter - noise, 0, 100))

    return score


def with_noise(n: int = 400, seed: int = 1):
    """Two informative embedders and `noise`, a uniform random score that knows nothing.

    Whether cross-validation drops a useless input depends on the draw: on 8 of 30 draws
    of this size chance lets the noise look useful on half A (bench/bench_fusion_select.py).
    Seed 1 is a draw where it is dropped, and the tests pin that outcome.
    """
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.5).astype(np.int64)
    a = np.clip(0.70 + 0.08 * y + rng.normal(0, 0.06, n), 0, 1)
    noise = rng.random(n)
    b = np.clip(0.55 + 0.08 * y + rng.normal(0, 0.06, n), 0, 1)
    systems = {
        "emb-a": {"type": "reid", "score": a},
        "noise": {"type": "reid", "score": noise},
        "emb-b": {"type": "reid", "score": b},
    }
    return y, systems
