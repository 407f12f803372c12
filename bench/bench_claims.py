"""Benchmark: judge throughput with in-flight claims against the same runner without them.

    .venv/bin/python bench/bench_claims.py [--pairs 1600] [--rounds 5]

The setting of bench_judges.py (fake server in its own process, 200 ms latency,
160 calls/s allowed; concurrency 32, rpm 9600). After one untimed warm-up run,
each round runs new pairs twice on fresh caches, alternating which goes first:
once as shipped (each request claimed, leases renewed, claims dropped) and once
with the claims bypassed (`Claims.ask_once` calls straight through, no renewal
task; `put` still runs its claim DELETE, a no-op on an empty table inside the
transaction it already had). Target: throughput with claims within 5% of
throughput without (median of rounds).
Then two writers (threads, one cache, same pairs) check the point of it all:
requests paid = distinct requests.

Results are recorded in docs/benchmarks.md (section "In-flight claims").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from bench.bench_judges import KEY, Server, make_crops, make_pairs, system
from reidbench.judges import judge_pairs
from reidbench.judges.claims import Claims


@contextlib.contextmanager
def claims_bypassed() -> Iterator[None]:
    """The runner as it was before claims: every call goes straight out."""
    ask_once, renewing = Claims.ask_once, Claims.renewing

    async def direct(self: Claims, key: str, call):  # type: ignore[no-untyped-def]
        return await call()

    @contextlib.asynccontextmanager
    async def idle(self: Claims):  # type: ignore[no-untyped-def]
        yield self

    Claims.ask_once, Claims.renewing = direct, idle  # type: ignore[method-assign]
    try:
        yield
    finally:
        Claims.ask_once, Claims.renewing = ask_once, renewing  # type: ignore[method-assign]


def one_run(
    port: int, root: Path, pairs, cache: Path, claims: bool, concurrency: int = 32
) -> dict[str, float]:
    cfg = system(port, concurrency=concurrency, rpm=9600, timeout_s=30)
    env = {"BENCH_KEY": KEY}
    guard = contextlib.nullcontext() if claims else claims_bypassed()
    with guard:
        cpu0, t0 = time.process_time(), time.perf_counter()
        table = judge_pairs(cfg, pairs, root, cache_path=cache, environ=env)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    calls = int(sum(table.column("attempts").to_pylist()))
    return {
        "claims": claims,
        "calls": calls,
        "wall_s": round(wall, 2),
        "calls_per_s": round(calls / wall, 1),
        "cpu_ms_per_call": round(1000 * cpu / calls, 2),
    }


def sqlite_cost(tmp_path: Path, n: int = 5000) -> dict[str, float]:
    """Per request, the SQLite work claims add: claim (read + upsert), and put with vs without.

    The runner's own store (`put`) is timed on a fresh cache with and without a claim
    taken first; the difference is what a claimed request costs the event loop.
    """
    from reidbench.judges.cache import ResponseCache
    from reidbench.judges.result import JudgeResult

    answer = JudgeResult(
        score=50.0,
        decision="same",
        status="ok",
        provider="p",
        model="m",
        prompt_id="x",
        prompt_version="1",
        attempts=1,
    )
    out: dict[str, float] = {}
    for claims in (False, True):
        with ResponseCache(tmp_path / f"cost-{claims}.sqlite") as cache:
            t0 = time.perf_counter()
            for i in range(n):
                key = f"{i:064x}"
                if claims:
                    cache.claim(key, "bench", 30.0)
                cache.put(
                    key,
                    answer,
                    system="s",
                    endpoint_host="h",
                    images=["a", "b"],
                    order="ab",
                    repeat=0,
                )
            out["with" if claims else "without"] = (time.perf_counter() - t0) / n * 1e6
    return {
        "requests": n,
        "store_us_without_claims": round(out["without"], 1),
        "claim_and_store_us": round(out["with"], 1),
        "added_us_per_request": round(out["with"] - out["without"], 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pairs", type=int, default=1600)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument(
        "--concurrency", type=int, default=32, help="32: CPU-bound here; 8: latency-bound"
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        root = tmp_path / "crops"
        root.mkdir()
        names = make_crops(root, args.images)
        cost = sqlite_cost(tmp_path)
        print(json.dumps(cost), flush=True)
        import reidbench.judges.providers.openai_compat  # noqa: F401  (SDK import, not timed)

        srv = Server(latency=0.2, rate_limit=160)
        runs: list[dict[str, float]] = []
        try:
            # Warm-up (not counted): page cache, the server process, first-use costs.
            warm = make_pairs(names, min(args.pairs, 400), seed=5)
            one_run(srv.port, root, warm, tmp_path / "warm.sqlite", True)
            for r in range(args.rounds):
                order = (True, False) if r % 2 == 0 else (False, True)
                for claims in order:
                    pairs = make_pairs(names, args.pairs, seed=10 + len(runs))
                    cache = tmp_path / f"run{len(runs)}.sqlite"
                    runs.append(one_run(srv.port, root, pairs, cache, claims, args.concurrency))
                    print(json.dumps(runs[-1]), flush=True)
            # Two writers on one cache, same pairs, started together.
            pairs = make_pairs(names, args.pairs // 2, seed=99)
            cache = tmp_path / "shared.sqlite"
            before = srv.stats()["requests"]
            barrier = threading.Barrier(2)
            tables = []

            def writer() -> None:
                barrier.wait()
                cfg = system(srv.port, concurrency=32, rpm=9600, timeout_s=30)
                env = {"BENCH_KEY": KEY}
                tables.append(judge_pairs(cfg, pairs, root, cache_path=cache, environ=env))

            t0 = time.perf_counter()
            threads = [threading.Thread(target=writer) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
            paid = srv.stats()["requests"] - before
        finally:
            srv.close()
    with_c = [x["calls_per_s"] for x in runs if x["claims"]]
    without = [x["calls_per_s"] for x in runs if not x["claims"]]
    # Paired by round (the two runs of a round are back to back): load drifts less within one.
    paired = [w / wo for w, wo in zip(with_c, without, strict=True)]
    summary = {
        "pairs": args.pairs,
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "median_paired_ratio": round(statistics.median(paired), 3),
        "with_claims_calls_per_s": with_c,
        "without_claims_calls_per_s": without,
        "median_with": statistics.median(with_c),
        "median_without": statistics.median(without),
        "ratio_with_over_without": round(statistics.median(with_c) / statistics.median(without), 3),
        "cpu_ms_per_call_with": statistics.median(
            x["cpu_ms_per_call"] for x in runs if x["claims"]
        ),
        "cpu_ms_per_call_without": statistics.median(
            x["cpu_ms_per_call"] for x in runs if not x["claims"]
        ),
        "sqlite_cost": cost,
        "two_writers": {
            "distinct_requests": args.pairs // 2,
            "server_requests": paid,
            "paid_by_each": [sum(not c for c in t.column("cached").to_pylist()) for t in tables],
            "wall_s": round(wall, 2),
        },
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
