"""Calibration study of the intervals and paired tests (issue 9, item 8; docs/benchmarks.md).

    .venv/bin/python bench/bench_intervals.py                       # 1,000 replicates x 1,000
    .venv/bin/python bench/bench_intervals.py --replicates 100 --resamples 300   # a quick look
    .venv/bin/python bench/bench_intervals.py --speed     # 5 systems x 1,000 pairs x 1,000

Population: `--population` synthetic identities, each seen by 2-4 of 6 cameras
(one query image, 1-2 gallery images per other camera). Image content is a
latent feature vector, not a rendered picture: rendering and embedding ~8,000
images per population is possible, but scoring by a random-effects model keeps
what the study needs (pairs that share people and images, person-level
difficulty, system-specific person effects) at a cost that lets 1,000
replicates run in minutes. The pairs themselves come from the project's own
`curate_pairs` (query-gallery split, camera rules and strata as in a run).

Per replicate: `--ids` identities are drawn from the population, their pairs
curated (seeded), and four systems scored: two equally good embedders (twins:
the same noise levels, independent noise) and two equally good LVLM-like
integer scorers (0-100 in steps of 5) that refuse ~15 % of pairs, mostly near
their threshold, and fail to parse 2 %. For each system and metric, the 95 %
interval covers the population value or not (population value: the same
metric on a pair set curated from the whole population); for each twin pair,
the paired tests reject at alpha = 0.05 or not (the truth is "equal").
"Before": pairs resampled independently (`clusters=None`); "after": the
two-way identity-cluster method (`clusters=pair_clusters(...)`). LVLM
metrics are the coverage-aware ones (abstentions as coin flips).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reidbench.datasets.base import Dataset, ImageRecord
from reidbench.metrics import stats
from reidbench.metrics.clusters import pair_clusters
from reidbench.metrics.coverage import (
    coverage_aware_ci,
    coverage_aware_paired,
    coverage_from_weights,
)
from reidbench.metrics.stats import cluster_weight_chunks
from reidbench.metrics.verification import TAR_KEY
from reidbench.pairs import curate_pairs

METRICS = ("auc", "accuracy", "eer", TAR_KEY)
DIM = 24


@dataclass
class Population:
    pid: np.ndarray  # per image
    cam: np.ndarray
    query: np.ndarray  # bool
    feat: dict[str, np.ndarray]  # system -> (n_images, DIM) features as that system sees them
    n_ids: int


def _hash_uniform(keys: np.ndarray, salt: int) -> np.ndarray:
    """Deterministic U(0, 1) per integer key (splitmix64): pair-level noise that is a fixed
    property of the pair, so the population value of every metric is well defined."""
    with np.errstate(over="ignore"):
        z = keys.astype(np.uint64) + np.uint64(salt) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return ((z >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)


def make_population(n_ids: int, seed: int) -> Population:
    rng = np.random.default_rng(seed)
    pid, cam, query = [], [], []
    for p in range(1, n_ids + 1):
        cams = rng.choice(6, size=int(rng.integers(2, 5)), replace=False)
        pid.append(p), cam.append(int(cams[0])), query.append(True)
        for c in cams[1:]:
            for _ in range(int(rng.integers(1, 4))):
                pid.append(p), cam.append(int(c)), query.append(False)
    pid_a, cam_a, q = np.array(pid), np.array(cam), np.array(query)
    scale = rng.lognormal(0.0, 0.3, n_ids + 1)  # person difficulty shared by every system
    mu = rng.normal(size=(n_ids + 1, DIM)) * scale[:, None]
    cam_style = rng.normal(size=(6, DIM)) * 0.4
    x = mu[pid_a] + cam_style[cam_a] + rng.normal(size=(pid_a.size, DIM)) * 0.9
    feat = {}
    for name in ("emb-a", "emb-b", "lvlm-a", "lvlm-b"):
        person = rng.normal(size=(n_ids + 1, DIM)) * 0.45  # what this system gets wrong per person
        feat[name] = x + person[pid_a] + rng.normal(size=x.shape) * 0.5
    return Population(pid_a, cam_a, q, feat, n_ids)


def dataset_of(pop: Population, ids: np.ndarray) -> Dataset:
    keep = np.flatnonzero(np.isin(pop.pid, ids))
    recs = {
        True: [
            ImageRecord(f"{i}.jpg", int(pop.pid[i]), int(pop.cam[i])) for i in keep if pop.query[i]
        ],
        False: [
            ImageRecord(f"{i}.jpg", int(pop.pid[i]), int(pop.cam[i]))
            for i in keep
            if not pop.query[i]
        ],
    }
    return Dataset("synthetic", Path("."), [], recs[True], recs[False], num_cameras=6)


def score_pairs(
    pop: Population, ia: np.ndarray, ib: np.ndarray
) -> dict[str, dict[str, np.ndarray]]:
    """Scores, decisions and answered masks of the four systems on image pairs (ia, ib)."""
    out = {}
    key = ia.astype(np.int64) * 1_000_003 + ib
    for k, name in enumerate(pop.feat):
        f = pop.feat[name]
        fa, fb = f[ia], f[ib]
        cos = np.sum(fa * fb, 1) / np.linalg.norm(fa, axis=1) / np.linalg.norm(fb, axis=1)
        if name.startswith("emb"):
            s = (cos + 1) / 2
            out[name] = {"score": s, "answered": np.ones(s.size, bool)}
            continue
        u1, u2 = _hash_uniform(key, 10 * k + 1), _hash_uniform(key, 10 * k + 2)
        noise = np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2) * 0.6
        s = np.clip(np.round(100 / (1 + np.exp(-(7 * (cos - 0.45) + noise))) / 5) * 5, 0, 100)
        u3, u4 = _hash_uniform(key, 10 * k + 3), _hash_uniform(key, 10 * k + 4)
        refuse = ((np.abs(s - 50) <= 15) & (u3 < 0.45)) | (u4 < 0.005)
        out[name] = {"score": s, "answered": ~refuse}
    return out


def _pairs_of(pop: Population, ds: Dataset, pos: int, neg: int, seed: int):
    ps = curate_pairs(ds, positives=pos, negatives=neg, seed=seed)
    t = ps.table
    ia = np.array([int(p[:-4]) for p in t.column("path_a").to_pylist()])
    ib = np.array([int(p[:-4]) for p in t.column("path_b").to_pylist()])
    return t.column("label").to_numpy().astype(np.int64), ia, ib


def _values(y, sc, thr) -> dict[str, float]:
    """Population values of one system: classes weighted to the replicates' 1:1 balance
    (ranking metrics do not depend on it; accuracy does)."""
    fn = _fn(y, sc, thr)
    v = fn(np.where(y == 1, np.sum(y == 0) / np.sum(y == 1), 1.0)[None, :])
    return {m: float(v[m][0]) for m in METRICS}


def _fn(y, sc, thr):
    ans = sc["answered"]
    s = np.where(ans, sc["score"], np.nan)
    return coverage_from_weights(y, s, s >= thr, ans)


_POP: Population | None = None
_TRUTH: dict = {}
_ARGS: argparse.Namespace | None = None


def population_truth(pop: Population, args) -> tuple[dict, dict]:
    """Thresholds and population values from a pair set curated over every identity."""
    ds = dataset_of(pop, np.arange(1, pop.n_ids + 1))
    y, ia, ib = _pairs_of(pop, ds, args.pop_positives, args.pop_negatives, seed=12345)
    sc = score_pairs(pop, ia, ib)
    thr = {}
    for name, v in sc.items():
        if name.startswith("lvlm"):
            thr[name] = 50.0
        else:  # the accuracy-optimal threshold on the population, fixed for every replicate
            cand = np.quantile(v["score"], np.linspace(0.05, 0.95, 181))
            acc = [np.mean((v["score"] >= c) == (y == 1)) for c in cand]
            thr[name] = float(cand[int(np.argmax(acc))])
    truth = {name: _values(y, v, thr[name]) for name, v in sc.items()}
    return thr, truth


def replicate(r: int) -> dict:
    pop, args, (thr, truth) = _POP, _ARGS, _TRUTH["v"]
    rng = np.random.default_rng([args.seed, r])
    ids = rng.choice(np.arange(1, pop.n_ids + 1), size=args.ids, replace=False)
    y, ia, ib = _pairs_of(pop, dataset_of(pop, ids), args.positives, args.negatives, seed=r)
    sc = score_pairs(pop, ia, ib)
    pc = pair_clusters(pop.pid[ia], pop.pid[ib])
    out = {"cover": {}, "reject": {}}
    b, seed, level = args.resamples, r, 0.95
    for name in ("emb-a", "lvlm-a"):
        v = sc[name]
        ans = v["answered"]
        s = np.where(ans, v["score"], np.nan)
        for method, cl in (("before", None), ("after", pc)):
            block = coverage_aware_ci(y, s, s >= thr[name], ans, b, seed, clusters=cl, level=level)
            for m in METRICS:
                ci = block["intervals"][m]
                hit = ci is not None and ci["low"] <= truth[name][m] <= ci["high"]
                out["cover"][(name, m, method)] = hit
        if args.variants:  # the alternatives the method was chosen over (docs/benchmarks.md)
            fn = coverage_from_weights(y, s, s >= thr[name], ans)
            est = fn(np.ones((1, y.size)))
            dc = _draws(fn, cluster_weight_chunks(pc, b, seed))
            dd = _draws(fn, cluster_weight_chunks(pc, b, seed, dyads=True))
            for m in METRICS:
                t_ = truth[name][m]
                lo, hi = np.nanpercentile(dc[m], [2.5, 97.5])
                out["cover"][(name, m, "pigeonhole percentile")] = lo <= t_ <= hi
                vc, vd = np.nanvar(dc[m], ddof=1), np.nanvar(dd[m], ddof=1)
                se = np.sqrt(vc - 2 * vd if vc - 2 * vd > 0 else vc)
                out["cover"][(name, m, "normal, all metrics")] = abs(est[m][0] - t_) <= 1.96 * se
    for a, bb in (("emb-a", "emb-b"), ("lvlm-a", "lvlm-b")):
        va, vb = sc[a], sc[bb]
        sa = np.where(va["answered"], va["score"], np.nan)
        sb = np.where(vb["answered"], vb["score"], np.nan)
        ta = (sa, sa >= thr[a], va["answered"])
        tb = (sb, sb >= thr[bb], vb["answered"])
        for method, cl in (("before", None), ("after", pc)):
            res = coverage_aware_paired(y, ta, tb, b, seed, clusters=cl)
            out["reject"][(a, "accuracy (McNemar)", method)] = res["accuracy"]["p_value"] < 0.05
            out["reject"][(a, "AUC difference", method)] = res["auc"]["p_value"] < 0.05
        if a == "emb-a":  # the exact McNemar of today, on decisions
            ca, cb = (sa >= thr[a]) == (y == 1), (sb >= thr[bb]) == (y == 1)
            out["reject"][(a, "exact McNemar", "before")] = stats.mcnemar(ca, cb)["p_value"] < 0.05
    out["shape"] = (int(y.size), int(pc.n_clusters), int(np.bincount(np.r_[ia, ib]).max()))
    return out


def _draws(fn, chunks) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {}
    for w in chunks:
        for k, v in fn(w).items():
            parts.setdefault(k, []).append(v)
    return {k: np.concatenate(v) for k, v in parts.items()}


def _mc(hits: list[bool]) -> str:
    p = float(np.mean(hits))
    return f"{100 * p:5.1f} ± {100 * np.sqrt(p * (1 - p) / len(hits)):.1f}"


def speed(args: argparse.Namespace) -> None:
    """Time 5 systems x 1,000 pairs x 1,000 resamples (intervals + 10 paired comparisons)."""
    pop = make_population(args.population, args.seed)
    ids = np.random.default_rng(args.seed).choice(np.arange(1, pop.n_ids + 1), 200, replace=False)
    y, ia, ib = _pairs_of(pop, dataset_of(pop, ids), 500, 500, seed=args.seed)
    sc = score_pairs(pop, ia, ib)
    systems = [sc[k]["score"] for k in sc] + [sc["emb-a"]["score"] + 0.01 * np.sin(ia)]
    pc = pair_clusters(pop.pid[ia], pop.pid[ib])
    for method, cl in (("pair bootstrap", None), ("two-way cluster", pc)):
        t0 = time.perf_counter()
        for s in systems:
            stats.bootstrap_ci(y, s, s >= np.median(s), args.resamples, 0, clusters=cl)
        t1 = time.perf_counter()
        for i in range(len(systems)):
            for j in range(i + 1, len(systems)):
                stats.paired_bootstrap_auc(
                    y, systems[i], systems[j], args.resamples, 0, clusters=cl
                )
                ci, cj = systems[i] >= 0.5, systems[j] >= 0.5
                stats.mcnemar(ci == (y == 1), cj == (y == 1), clusters=cl)
        t2 = time.perf_counter()
        print(
            f"{method}: {y.size} pairs, {len(systems)} systems x {args.resamples} resamples: "
            f"intervals {t1 - t0:.2f} s, 10 paired comparisons {t2 - t1:.2f} s"
        )


def main() -> None:
    global _POP, _ARGS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--replicates", type=int, default=1000)
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--population", type=int, default=1200)
    ap.add_argument("--ids", type=int, default=100)
    ap.add_argument("--positives", type=int, default=250)
    ap.add_argument("--negatives", type=int, default=250)
    ap.add_argument("--pop-positives", type=int, default=4500)
    ap.add_argument("--pop-negatives", type=int, default=60000)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--speed", action="store_true", help="time the interval code instead")
    ap.add_argument(
        "--variants",
        action="store_true",
        help="also the pigeonhole percentile and the normal interval for every metric",
    )
    args = ap.parse_args()
    if args.speed:
        speed(args)
        return
    t0 = time.perf_counter()
    _ARGS = args
    _POP = make_population(args.population, args.seed)
    _TRUTH["v"] = population_truth(_POP, args)
    thr, truth = _TRUTH["v"]
    print(f"population: {args.population} ids, {_POP.pid.size} images; thresholds {thr}")
    for name, v in truth.items():
        print(f"  {name}: " + ", ".join(f"{m} {x:.4f}" for m, x in v.items()))
    ctx = mp.get_context("fork")
    results = []
    with ctx.Pool(args.workers) as pool:
        for res in pool.imap(replicate, range(args.replicates), chunksize=4):
            results.append(res)
            if len(results) % 100 == 0:
                print(f"  {len(results)} replicates, {time.perf_counter() - t0:.0f} s", flush=True)
    shapes = np.array([r["shape"] for r in results])
    print(
        f"{args.replicates} replicates x {args.resamples} resamples, {args.ids} ids each: "
        f"{shapes[:, 0].mean():.0f} pairs, {shapes[:, 1].mean():.0f} clusters, "
        f"an image in up to {shapes[:, 2].max()} pairs; {time.perf_counter() - t0:.0f} s"
    )
    print("\ncoverage of 95 % intervals (%, ± Monte Carlo s.e.)")
    kinds = ["before", "after"]
    head = "| system | metric | before (pair bootstrap) | after (two-way cluster) |"
    if args.variants:
        kinds += ["pigeonhole percentile", "normal, all metrics"]
        head += " pigeonhole percentile | normal interval for TAR too |"
    print(head)
    print("|---" * len(head.split("|")[1:-1]) + "|")
    for name in ("emb-a", "lvlm-a"):
        for m in METRICS:
            cells = [_mc([r["cover"][(name, m, k)] for r in results]) for k in kinds]
            label = name + (" (coverage-aware)" if name.startswith("lvlm") else "")
            print(f"| {label} | {m} | " + " | ".join(cells) + " |")
    print("\nfalse-positive rate of paired tests at alpha = 0.05, equally good twins (%)")
    print("| systems | test | before | after |")
    print("|---|---|---|---|")
    keys = sorted({k[:2] for r in results[:1] for k in r["reject"]})
    for a, test in keys:
        cells = []
        for k in ("before", "after"):
            vals = [r["reject"].get((a, test, k)) for r in results]
            cells.append("-" if vals[0] is None else _mc(vals))
        twin = {"emb-a": "emb-a vs emb-b", "lvlm-a": "lvlm-a vs lvlm-b (coverage-aware)"}[a]
        print(f"| {twin} | {test} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
