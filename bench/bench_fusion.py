"""Fusion measurements on synthetic data (run by hand; results in docs/fusion.md).

    .venv/bin/python bench/bench_fusion.py --out /tmp/bench-fusion            # 1,000 + 1,000 pairs
    .venv/bin/python bench/bench_fusion.py --out /tmp/bf --positives 300 --negatives 300

1. A synthetic Market-1501-layout set; handcrafted + efficientnet-lite0 on the pairs;
   logistic fusion (`[fusion]`, input selection on): the cross-validated AUC of each
   candidate input set on calibration pairs and the inputs kept; held-out AUC of each single
   system and of the fused one, the difference to the best single with its paired-bootstrap
   CI.
2. The cascade with the loopback fake LVLM (tests/fake_llm_server.py, a TEST FIXTURE: a
   scripted judge that knows the identities, with noise and refusals; never a product
   backend): offline curve (the judge answered every pair), then a live run that asks only
   the band: calls made vs pairs in the band, USD reported vs tokens x prices.
Timings are wall-clock on this machine; the numbers that matter are the AUCs and counts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from reidbench.config import (  # noqa: E402
    CascadeConfig,
    DatasetConfig,
    ExperimentConfig,
    FusionConfig,
    LVLMSystemConfig,
    PairsConfig,
    ReIDSystemConfig,
)
from reidbench.datasets import load_dataset  # noqa: E402
from reidbench.experiment import run_experiment  # noqa: E402
from reidbench.fusion import fuse_run  # noqa: E402
from reidbench.judges.images import ImageSpec  # noqa: E402
from reidbench.metrics.run import compute_metrics  # noqa: E402
from tests.fake_llm_server import FakeLLMServer  # noqa: E402  (test fixture, on purpose)
from tests.fusion_fixtures import image_identities  # noqa: E402

KEY = "sk-bench-0123456789"
P_IN, P_OUT = 2.5, 10.0  # gpt-4o's list prices (USD per million tokens), for scale


def noisy_judge(identities: dict[str, int], seed: int):
    """Same person: 68, different: 32, +-40 uniform noise (deterministic per image pair)."""

    def score(images: list[bytes]) -> int:
        shas = [hashlib.sha256(b).hexdigest() for b in images]
        same = identities.get(shas[0], -1) == identities.get(shas[1], -2)
        h = hashlib.sha256(b"".join(images) + str(seed).encode()).digest()
        jitter = int.from_bytes(h[:4], "little") % 81 - 40
        return int(np.clip((68 if same else 32) + jitter, 0, 100))

    return score


def lvlm(srv: FakeLLMServer) -> LVLMSystemConfig:
    return LVLMSystemConfig(
        name="fake-judge",
        type="lvlm",
        provider="openai",
        model="fake-model",
        base_url=srv.openai_base,
        api_key_env="BENCH_KEY",
        concurrency=16,
        retry_base_s=0.01,
        retry_max_s=0.05,
        image_size=64,
        price_in_per_mtok=P_IN,
        price_out_per_mtok=P_OUT,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--test-ids", type=int, default=400)
    ap.add_argument("--positives", type=int, default=1000)
    ap.add_argument("--negatives", type=int, default=1000)
    ap.add_argument("--fraction", type=float, default=0.2)
    ap.add_argument("--refusals", type=float, default=0.05)
    args = ap.parse_args()
    from reidbench.datasets.synthetic import generate

    data = args.out / "data"
    t0 = time.perf_counter()
    generate(data, train_ids=2, test_ids=args.test_ids, seed=0)
    print(f"dataset: {time.perf_counter() - t0:.1f} s")
    ds = load_dataset(data)
    identities = image_identities(data, [r.path for r in ds.query + ds.gallery], ImageSpec(size=64))
    reid = [
        ReIDSystemConfig(name="handcrafted", type="reid", model="handcrafted"),
        ReIDSystemConfig(name="efficientnet-lite0", type="reid", model="efficientnet-lite0"),
    ]
    pairs = PairsConfig(positives=args.positives, negatives=args.negatives, seed=0)
    with FakeLLMServer() as srv:
        srv.score_fn = noisy_judge(identities, 0)
        rng = np.random.default_rng(0)
        for sha in list(identities):
            if rng.random() < args.refusals:
                srv.faults_by_image[sha] = __import__("collections").deque(["refusal"] * 10_000)
        env = {"BENCH_KEY": KEY}
        offline = args.out / "offline"
        # The judge is re-asked every time (the fake server is free): drop earlier answers.
        for old in [offline / "systems" / "fake-judge.parquet", *offline.glob("cache/resp*")]:
            old.unlink(missing_ok=True)
        cfg = ExperimentConfig(
            name="bench-fusion",
            dataset=DatasetConfig(root=data),
            pairs=pairs,
            systems=[*reid, lvlm(srv)],
            fusion=FusionConfig(systems=["handcrafted", "efficientnet-lite0"]),
            cascade=CascadeConfig(reid="handcrafted", lvlm="fake-judge"),
        )
        t0 = time.perf_counter()
        run_experiment(cfg, offline, environ=env, write_outputs=False)
        print(
            f"offline run (features + {len(srv.records)} judge calls): "
            f"{time.perf_counter() - t0:.1f} s"
        )
        t0 = time.perf_counter()
        fuse_run(offline, ["handcrafted", "efficientnet-lite0"])
        t_fuse = time.perf_counter() - t0
        fuse_run(offline, ["handcrafted", "fake-judge"])  # an LVLM with refusals, fused
        t0 = time.perf_counter()
        fuse_run(offline, ["handcrafted", "fake-judge"], method="cascade", budget_usd_per_1k=1.0)
        t_cascade = time.perf_counter() - t0
        t0 = time.perf_counter()
        m = compute_metrics(offline)
        t_metrics = time.perf_counter() - t0
        print(
            f"fuse (logistic): {t_fuse:.2f} s; fuse (cascade): {t_cascade:.2f} s; "
            f"compute_metrics with fused systems: {t_metrics:.2f} s"
        )
        report(m)

        # Live: a copy of the run without the judge's answers; only the band is asked.
        live = args.out / "live"
        shutil.rmtree(live, ignore_errors=True)
        shutil.copytree(offline, live, ignore=shutil.ignore_patterns("fusion", "responses*"))
        (live / "systems" / "fake-judge.parquet").unlink()
        calls_before = len(srv.records)
        live_cfg = cfg.model_copy(
            update={
                "cascade": CascadeConfig(
                    reid="handcrafted", lvlm="fake-judge", live=True, fraction=args.fraction
                )
            }
        )
        t0 = time.perf_counter()
        run_experiment(live_cfg, live, environ=env, write_outputs=False)
        calls = len(srv.records) - calls_before
        ok_calls = sum(1 for r in srv.records[calls_before:] if r.status == 200)
        lm = compute_metrics(live)
        block = lm["cascade"]["cascade(handcrafted>fake-judge)"]
        op, acc = block["operating_point"], block["accounting"]
        print(f"\nlive cascade (fraction {args.fraction}): {time.perf_counter() - t0:.1f} s")
        print(
            f"  held-out pairs {op['n']}, in band {op['n_in_band']}, sent {op['n_sent']}, "
            f"server calls {calls} (200 OK: {ok_calls}); calls reported "
            f"{acc['lvlm_calls_this_run']}"
        )
        per_call = (srv.tokens_in * P_IN + srv.tokens_out * P_OUT) / 1e6
        print(
            f"  USD reported {acc['lvlm_usd_this_run']:.6f}, tokens x prices "
            f"{ok_calls * per_call:.6f}; F1 {op['f1']:.4f} AUC {op['auc']:.4f} "
            f"USD/1k {op['usd_per_1000_pairs']:.4f}"
        )
        # Re-ranking handcrafted's top-10 with the same judge, 100 seeded queries.
        from reidbench.config import RerankConfig, RerankSettings
        from reidbench.fusion.rerank_run import rerank_markdown, run_rerank

        for method in ("fuse", "confirm"):
            rcfg = RerankConfig(
                name="bench-rerank",
                dataset=DatasetConfig(root=data),
                reid=reid[0],
                lvlm=lvlm(srv),
                rerank=RerankSettings(top_k=10, queries=100, method=method, seed=0),
            )
            calls_before = len(srv.records)
            t0 = time.perf_counter()
            rr = run_rerank(rcfg, args.out / f"rerank-{method}", environ=env)
            print(
                f"\nre-ranking ({method}): {time.perf_counter() - t0:.1f} s, "
                f"server calls {len(srv.records) - calls_before}"
            )
            print(rerank_markdown(rr))
        (args.out / "summary.json").write_text(
            json.dumps(
                {"offline": {k: m.get(k) for k in ("fusion", "cascade")}, "live": block}, indent=1
            )
        )


def report(m: dict) -> None:
    for name in ("logistic(handcrafted+efficientnet-lite0)", "logistic(handcrafted+fake-judge)"):
        report_fusion(m["fusion"][name])
    report_cascade(m)


def report_fusion(f: dict) -> None:
    print(
        f"\nheld-out pairs: {f['split']['n_held_out']} (calibration {f['split']['n_calibration']})"
    )
    for name, s in f["singles"].items():
        ci = s["ci"]["auc"]
        print(
            f"  {name:20s} AUC {s['auc']:.4f} [{ci['low']:.4f}, {ci['high']:.4f}]  F1 {s['f1']:.4f}"
        )
    ci = f["fused"]["ci"]["auc"]
    print(
        f"  {'fused (logistic)':20s} AUC {f['fused']['auc']:.4f} [{ci['low']:.4f}, "
        f"{ci['high']:.4f}]  F1 {f['fused']['f1']:.4f}"
    )
    d = f["vs_best"]["auc_diff"]
    print(
        f"  fused - {f['best_single']}: {d['diff']:+.4f} [{d['ci']['low']:+.4f}, "
        f"{d['ci']['high']:+.4f}], McNemar p {f['vs_best']['mcnemar']['p_value']:.3f}"
    )
    sel = f.get("selection") or {}
    for c in sel.get("candidates") or []:
        mark = "  <- chosen" if c["inputs"] == sel["chosen"] else ""
        print(
            f"  CV on calibration: {'+'.join(c['inputs']):36s} AUC {c['cv_auc_mean']:.4f} "
            f"+- {c['cv_auc_std']:.4f} (pooled {c['cv_auc_pooled']:.4f}){mark}"
        )
    if sel:
        print(f"  selection: {sel['note']}")
    fitted = f["model"]["model"]
    print(f"  features {fitted['features']}")
    print(f"  coefficients (standardised) {fitted['coef_standardised']}, C {fitted['C']:.3g}")
    failed = f["model"]["failed_pairs"]
    print(f"  failed pairs (calibration / held-out): {failed}")


def report_cascade(m: dict) -> None:
    c = m["cascade"]["cascade(handcrafted>fake-judge)"]
    print("\ncascade curve (held-out): fraction sent, F1, AUC, USD per 1,000 pairs")
    for p in c["curve"]:
        print(
            f"  {p['fraction_target']:.2f} -> {p['fraction_sent']:.3f}  F1 {p['f1']:.4f}  "
            f"AUC {p['auc']:.4f}  USD/1k {p['usd_per_1000_pairs']:.4f}  "
            f"failed {p['n_lvlm_failed']}"
        )
    op = c["operating_point"]
    print(
        f"  operating point ({op['rule']}): fraction {op['fraction_target']}, F1 {op['f1']:.4f}, "
        f"AUC {op['auc']:.4f}, USD/1k {op['usd_per_1000_pairs']:.4f}"
    )


if __name__ == "__main__":
    main()
