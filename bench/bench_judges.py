"""Benchmark the LVLM judge runner against the loopback fake server (run by hand).

    .venv/bin/python bench/bench_judges.py [--pairs 1600] [--cached-pairs 10000]

1. Throughput: the fake server (its own process) answers after 200 ms and
   allows 160 calls/s (429 beyond); the runner uses concurrency 32 and
   rpm 9600, so 160 calls/s is the ceiling. Target: >= 90% of it.
2. Harness CPU time per call: this process's CPU time (image preparation,
   SDK, asyncio, parsing, SQLite commits) divided by the calls made.
3. A fully cached re-run of 10,000 pairs: target under 5 s.

Results are recorded in docs/benchmarks.md (section "LVLM judges").
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image

from reidbench.config import LVLMSystemConfig
from reidbench.judges import judge_pairs

HERE = Path(__file__).resolve().parent
SERVER = HERE.parent / "tests" / "fake_llm_server.py"  # test fixture; the benchmark borrows it
KEY = "bench-key-not-secret"


def make_crops(root: Path, n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    names = []
    for i in range(n):
        arr = rng.integers(0, 255, (128, 64, 3), dtype=np.uint8)
        name = f"{i:05d}.jpg"
        Image.fromarray(arr).save(root / name, quality=90)
        names.append(name)
    return names


def make_pairs(names: list[str], n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    seen: set[tuple[int, int]] = set()
    a, b = [], []
    while len(a) < n:
        i, j = (int(x) for x in rng.integers(0, len(names), 2))
        if i != j and (i, j) not in seen:
            seen.add((i, j))
            a.append(names[i])
            b.append(names[j])
    return pa.table({"pair_id": list(range(n)), "path_a": a, "path_b": b})


class Server:
    def __init__(self, latency: float, rate_limit: float | None) -> None:
        args = [sys.executable, str(SERVER), "--latency", str(latency)]
        if rate_limit:
            args += ["--rate-limit", str(rate_limit)]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def stats(self) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def control_raw_client(port: int, root: Path, names: list[str], n: int) -> dict[str, float]:
    """The floor this machine allows: a bare httpx2 client posting one prepared body, 32-way.

    No SDK, no image preparation, no parsing, no cache: what is left of the 160 calls/s
    is the cost of HTTP in Python plus the fake server, not of the harness.
    """
    import asyncio

    import httpx2

    from reidbench.judges.images import ImageSpec, prepare
    from reidbench.judges.prompts import load_prompt
    from reidbench.judges.providers.base import ProviderRequest
    from reidbench.judges.providers.openai_compat import OpenAICompatProvider

    prompt = load_prompt("similarity-0-100")
    req = ProviderRequest(
        system=prompt.system,
        text=prompt.user_text("pair"),
        images=prepare(root / names[0], root / names[1], ImageSpec()),
        schema=prompt.json_schema(),
        structured="json_schema",
        max_tokens=512,
        temperature=0.0,
        seed=0,
        timeout_s=30,
    )
    provider = OpenAICompatProvider(
        base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, model="gpt-4o", timeout_s=30
    )
    body = json.dumps(provider._kwargs(req)).encode()
    headers = {"content-type": "application/json", "authorization": f"Bearer {KEY}"}

    async def go() -> tuple[float, float]:
        limits = httpx2.Limits(max_connections=64)
        async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}/v1", limits=limits) as c:
            gate = asyncio.Semaphore(32)

            async def one() -> None:
                async with gate:
                    (await c.post("/chat/completions", content=body, headers=headers)).json()

            cpu0, t0 = time.process_time(), time.perf_counter()
            await asyncio.gather(*(one() for _ in range(n)))
            return time.perf_counter() - t0, time.process_time() - cpu0

    wall, cpu = asyncio.run(go())
    return {
        "calls": n,
        "calls_per_s": round(n / wall, 1),
        "cpu_ms_per_call": round(1000 * cpu / n, 2),
    }


def system(port: int, **kw: object) -> LVLMSystemConfig:
    return LVLMSystemConfig.model_validate(
        {
            "name": "bench",
            "type": "lvlm",
            "provider": "openai",
            "model": "gpt-4o",
            "base_url": f"http://127.0.0.1:{port}/v1",
            "api_key_env": "BENCH_KEY",
            **kw,
        }
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pairs", type=int, default=1600, help="pairs for the throughput run")
    ap.add_argument("--cached-pairs", type=int, default=10000, help="pairs for the cached re-run")
    ap.add_argument("--images", type=int, default=2000, help="distinct crops")
    args = ap.parse_args()
    env = {"BENCH_KEY": KEY}
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        root = tmp_path / "crops"
        root.mkdir()
        names = make_crops(root, args.images)

        # The SDK import (~1-2 s, once per process) is not per-call harness work: do it first.
        import reidbench.judges.providers.openai_compat  # noqa: F401

        # 1 + 2: throughput and harness CPU per call, 200 ms latency, 160 calls/s limit.
        srv = Server(latency=0.2, rate_limit=160)
        try:
            cfg = system(srv.port, concurrency=32, rpm=9600, timeout_s=30)
            pairs = make_pairs(names, args.pairs, seed=1)
            cpu0, t0 = time.process_time(), time.perf_counter()
            table = judge_pairs(cfg, pairs, root, cache_path=tmp_path / "t.sqlite", environ=env)
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            stats = srv.stats()
            control = control_raw_client(srv.port, root, names, args.pairs)
        finally:
            srv.close()
        calls = int(sum(table.column("attempts").to_pylist()))
        ok = table.column("status").to_pylist().count("ok")
        results["throughput"] = {
            "pairs": args.pairs,
            "ok": ok,
            "calls": calls,
            "server_requests": stats["requests"],
            "server_429": stats["rate_limited"],
            "wall_s": round(wall, 2),
            "calls_per_s": round(calls / wall, 1),
            "fraction_of_160": round(calls / wall / 160, 3),
            "harness_cpu_ms_per_call": round(1000 * cpu / calls, 2),
            "control_raw_httpx2": control,
        }
        print(json.dumps(results["throughput"]), flush=True)

        # 3: a fully cached re-run of many pairs (the cache is filled at full speed first).
        srv = Server(latency=0.0, rate_limit=None)
        try:
            cfg = system(srv.port, concurrency=32)
            pairs = make_pairs(names, args.cached_pairs, seed=2)
            cache = tmp_path / "big.sqlite"
            t0 = time.perf_counter()
            judge_pairs(cfg, pairs, root, cache_path=cache, environ=env)
            fill = time.perf_counter() - t0
            before = srv.stats()["requests"]
            t0 = time.perf_counter()
            again = judge_pairs(cfg, pairs, root, cache_path=cache, environ=env)
            rerun = time.perf_counter() - t0
            after = srv.stats()["requests"]
        finally:
            srv.close()
        results["cached_rerun"] = {
            "pairs": args.cached_pairs,
            "distinct_images": args.images,
            "fill_s": round(fill, 1),
            "rerun_s": round(rerun, 2),
            "calls_during_rerun": after - before,
            "all_cached": all(again.column("cached").to_pylist()),
        }
        print(json.dumps(results["cached_rerun"]), flush=True)


if __name__ == "__main__":
    main()
