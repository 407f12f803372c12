"""Retrieval metrics benchmark: speed against argsort-based evaluators, chunked memory, re-ranking.

Run by hand (results go to docs/benchmarks.md):

    .venv/bin/python bench/bench_retrieval.py                      # everything
    .venv/bin/python bench/bench_retrieval.py --only metrics --repeat 7
    .venv/bin/python bench/bench_retrieval.py --only chunked --dim 384
    .venv/bin/python bench/bench_retrieval.py --only rerank

Inputs are Market-1501 / MSMT17 sized (3,368 x 15,913 and 11,659 x 82,161)
with their identity, distractor and camera structure, and distances from
clustered random embeddings whose noise gives a strong model (mAP ~0.87), a
weak one (mAP ~0.4), plus a uniform random matrix (the worst case: every
gallery item is a candidate). Every evaluation is checked against the
torchreid-style reference below (1e-6).

torchreid's Cython evaluator is timed too when it can be imported: either
`torchreid` with its compiled `rank_cy`, or a directory holding a `rank_cy`
module built from torchreid's rank_cy.pyx, passed as --torchreid-cython DIR.
Memory figures come from a fresh child process per measurement (peak RSS,
VmHWM, minus the RSS once the inputs exist).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from reidbench.metrics import (  # noqa: E402
    evaluate_features,
    evaluate_retrieval,
    k_reciprocal_distance,
    rerank_memory_bytes,
)
from tests.test_retrieval import reference_eval  # noqa: E402  (the tested stable-argsort port)

MARKET = {"num_q": 3368, "num_g": 15913, "ids": 750, "distractors": 2793, "cams": 6}
MSMT = {"num_q": 11659, "num_g": 82161, "ids": 3060, "distractors": 0, "cams": 15}
KINDS = {"strong": 1.0, "weak": 1.3}  # embedding noise; "uniform" = random matrix


# --------------------------------------------------------------------------- reference


def load_cython(path: str | None):
    if path:  # a torchreid build folder holding the compiled rank_cy extension
        import importlib.util

        built = sorted(Path(path).glob("rank_cy*.so")) + sorted(Path(path).glob("rank_cy*.pyd"))
        if not built:
            raise SystemExit(f"no rank_cy extension (rank_cy*.so) in {path}")
        spec = importlib.util.spec_from_file_location("rank_cy", built[0])
        rank_cy = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(rank_cy)
        return rank_cy.evaluate_cy
    try:
        from torchreid.metrics.rank_cylib.rank_cy import evaluate_cy  # type: ignore

        return evaluate_cy
    except ImportError:
        return None


# --------------------------------------------------------------------------- inputs


def labels(spec: dict, rng: np.random.Generator):
    ids = spec["ids"]
    q_pids = rng.integers(1, ids + 1, spec["num_q"])
    real = spec["num_g"] - spec["distractors"]
    g_pids = np.concatenate(
        [rng.integers(1, ids + 1, real), rng.choice([0, -1], spec["distractors"])]
    )
    g_pids = rng.permutation(g_pids)
    return (
        q_pids,
        g_pids,
        rng.integers(0, spec["cams"], spec["num_q"]),
        rng.integers(0, spec["cams"], spec["num_g"]),
    )


def scaled(spec: dict, num_q: int | None, num_g: int | None) -> dict:
    """A smaller dataset with the same images per identity and distractor share."""
    if not num_q and not num_g:
        return spec
    frac = (num_g or spec["num_g"]) / spec["num_g"]
    return dict(
        spec,
        num_q=num_q or spec["num_q"],
        num_g=num_g or spec["num_g"],
        ids=max(1, round(spec["ids"] * frac)),
        distractors=round(spec["distractors"] * frac),
    )


def embeddings(spec: dict, sigma: float, dim: int, seed: int, base_dim: int = 64):
    """Identity clusters in 64-d (noise sigma sets the difficulty), mapped isometrically
    to `dim` dimensions so the task is equally hard at any feature size."""
    rng = np.random.default_rng(seed)
    q_pids, g_pids, q_cams, g_cams = labels(spec, rng)
    centers = rng.standard_normal((spec["ids"] + 1, base_dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    lift = np.linalg.qr(rng.standard_normal((dim, base_dim)))[0].T.astype(np.float32)

    def draw(pids):
        out = np.empty((len(pids), dim), np.float32)
        for start in range(0, len(pids), 8192):
            p = pids[start : start + 8192]
            # Distractors (pid <= 0) are random images: no identity centre.
            base = np.where((p > 0)[:, None], centers[np.maximum(p, 0)], 0)
            noise = rng.standard_normal((len(p), base_dim)).astype(np.float32)
            x = base + sigma / np.sqrt(base_dim) * noise
            out[start : start + len(p)] = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ lift
        return out

    return draw(q_pids), draw(g_pids), q_pids, g_pids, q_cams, g_cams


def market_matrix(kind: str, seed: int = 0):
    if kind == "uniform":
        rng = np.random.default_rng(seed)
        dist = rng.random((MARKET["num_q"], MARKET["num_g"]), dtype=np.float32)
        return (dist, *labels(MARKET, rng))
    qf, gf, *rest = embeddings(MARKET, KINDS[kind], 64, seed)
    return (1 - qf @ gf.T, *rest)


# --------------------------------------------------------------------------- timing


def timed(fn, repeat: int):
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return out, {
        "wall_best_s": min(walls),
        "wall_median_s": float(np.median(walls)),
        "cpu_best_s": min(cpus),
        "cpu_median_s": float(np.median(cpus)),
    }


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def rss_mib() -> float:
    return _status_mib("VmRSS")


def peak_rss_mib() -> float:
    # VmHWM, not ru_maxrss: after fork+exec, ru_maxrss still counts the parent's RSS.
    return _status_mib("VmHWM")


def bench_metrics(args) -> dict:
    cython = load_cython(args.torchreid_cython)
    results = {}
    for kind in args.kinds:
        results[kind] = row = metrics_row(args, cython, *market_matrix(kind))
        print(f"[metrics] {kind}: {json.dumps(row)}", flush=True)
    return results


def metrics_row(args, cython, dist, qp, gp, qc, gc) -> dict:
    ours, t_ours = timed(lambda: evaluate_retrieval(dist, qp, gp, qc, gc), args.repeat)
    row = {"ours": t_ours, "mAP": ours.mAP, "mINP": ours.mINP, "rank1": ours.rank(1)}
    _, row["argsort"] = timed(lambda: np.argsort(dist, axis=1), max(1, args.repeat // 3))
    if not args.skip_reference:
        (cmc, m_ap, m_inp), row["reference_stable"] = timed(
            lambda: reference_eval(dist, qp, gp, qc, gc), 1
        )
        row["max_abs_diff"] = float(
            max(np.abs(cmc - ours.cmc).max(), abs(m_ap - ours.mAP), abs(m_inp - ours.mINP))
        )
        assert row["max_abs_diff"] <= 1e-6, row
    if cython is not None:
        _, row["torchreid_cython"] = timed(
            lambda: cython(dist, qp, gp, qc, gc, 50), max(1, args.repeat // 2)
        )
    return row


def child(args) -> dict:
    """One memory measurement in this (fresh) process."""
    if args.child == "chunked":
        spec = scaled(MSMT, args.num_q, args.num_g)
        qf, gf, qp, gp, qc, gc = embeddings(spec, KINDS[args.kind], args.dim, 0)
        base = rss_mib()
        res, t = timed(lambda: evaluate_features(qf, gf, qp, gp, qc, gc), 1)
        return {
            "shape": [spec["num_q"], spec["num_g"], args.dim],
            "features_mib": (qf.nbytes + gf.nbytes) / 2**20,
            "time": t,
            "peak_beyond_inputs_mib": peak_rss_mib() - base,
            "mAP": res.mAP,
            "mINP": res.mINP,
            "rank1": res.rank(1),
        }
    if args.child == "rerank":
        spec = scaled(MARKET, args.num_q, args.num_g)
        qf, gf, qp, gp, qc, gc = embeddings(spec, KINDS[args.kind], args.dim, 0)
        import torch  # imported before the baseline: its libraries alone are ~300 MiB of RSS

        torch.zeros(2, 2).addmm_(torch.ones(2, 2), torch.ones(2, 2))  # load BLAS too
        base = rss_mib()
        if args.reference:
            from tests.test_rerank import fastreid_re_ranking  # the tested reference port

            dist, t = timed(
                lambda: fastreid_re_ranking(torch.from_numpy(qf), torch.from_numpy(gf)), 1
            )
        else:
            dist, t = timed(lambda: k_reciprocal_distance(qf, gf, max_memory_gib=64), 1)
        res = evaluate_retrieval(dist, qp, gp, qc, gc)
        return {
            "shape": [spec["num_q"], spec["num_g"], args.dim],
            "reference": args.reference,
            "time": t,
            "peak_beyond_inputs_mib": peak_rss_mib() - base,
            "estimate_mib": rerank_memory_bytes(spec["num_q"], spec["num_g"]) / 2**20,
            "mAP": res.mAP,
            "rank1": res.rank(1),
            "checksum": float(np.float64(dist).sum()),
        }
    raise SystemExit(f"unknown child {args.child}")


def run_child(*extra: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, *extra], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def bench_chunked(args) -> dict:
    results = {}
    for kind in ("strong", "weak"):
        row = run_child("--child", "chunked", "--kind", kind, "--dim", str(args.dim))
        results[kind] = row
        print(f"[chunked] MSMT17-size {kind}: {json.dumps(row)}", flush=True)
    return results


def bench_rerank(args) -> dict:
    results = {}
    small = ["--num-q", "500", "--num-g", "2500"]
    for ref in (False, True):
        flag = ["--reference"] if ref else []
        row = run_child("--child", "rerank", "--kind", "weak", "--dim", "64", *small, *flag)
        results["small_reference" if ref else "small_ours"] = row
        print(f"[rerank] 500 x 2500 {'reference' if ref else 'ours'}: {json.dumps(row)}")
    assert results["small_ours"]["checksum"] == results["small_reference"]["checksum"]
    row = run_child("--child", "rerank", "--kind", "weak", "--dim", "64")
    results["market"] = row
    print(f"[rerank] Market-size ours: {json.dumps(row)}", flush=True)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["metrics", "chunked", "rerank"], action="append")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per evaluator (best/median)")
    ap.add_argument("--kinds", nargs="+", default=["strong", "weak", "uniform"])
    ap.add_argument("--skip-reference", action="store_true", help="skip the slow stable reference")
    ap.add_argument("--torchreid-cython", metavar="DIR", help="directory with a built rank_cy")
    ap.add_argument("--dim", type=int, default=384, help="feature dimension for chunked")
    ap.add_argument("--json", metavar="FILE", help="also write all results as JSON")
    # Internal: one measurement in a fresh process.
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--kind", default="strong", help=argparse.SUPPRESS)
    ap.add_argument("--num-q", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--num-g", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--reference", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    print(
        f"# cpus={os.cpu_count()} threads={os.environ.get('REIDBENCH_NUM_THREADS', 'default')} "
        f"numpy={np.__version__} load={os.getloadavg()}",
        flush=True,
    )
    todo = args.only or ["metrics", "chunked", "rerank"]
    results = {}
    if "metrics" in todo:
        results["metrics"] = bench_metrics(args)
    if "chunked" in todo:
        results["chunked"] = bench_chunked(args)
    if "rerank" in todo:
        results["rerank"] = bench_rerank(args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
