"""SIGKILL in the middle of a run, then resume: nothing answered is lost or paid for twice."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from reidbench.config import LVLMSystemConfig
from reidbench.judges import judge_pairs
from reidbench.tables import write_table
from tests.fake_llm_server import FakeLLMServer

KEY = "sk-resume-test-key-000111"
N_PAIRS = 40
CONCURRENCY = 4

CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from reidbench.config import LVLMSystemConfig
    from reidbench.judges import judge_pairs
    from reidbench.tables import read_table

    cfg, pairs, root, cache = sys.argv[1:5]
    system = LVLMSystemConfig.model_validate(json.loads(Path(cfg).read_text()))
    # Short leases: the resume below waits for the killed child's claims to lapse.
    judge_pairs(system, read_table(pairs), Path(root), cache_path=Path(cache), claim_lease_s=1.0)
    print("finished")
    """
)


def _committed(cache: Path) -> list[tuple[str, ...]]:
    if not cache.exists():
        return []
    db = sqlite3.connect(f"file:{cache}?mode=ro", uri=True, timeout=5)
    try:
        return [tuple(json.loads(r[0])) for r in db.execute("SELECT images FROM responses")]
    except sqlite3.OperationalError:  # the child has not created the table yet
        return []
    finally:
        db.close()


@pytest.mark.slow
def test_sigkill_then_resume_loses_nothing_and_repeats_only_calls_in_flight(
    tmp_path: Path,
) -> None:
    root = tmp_path / "crops"
    root.mkdir()
    rng = np.random.default_rng(3)
    for i in range(N_PAIRS * 2):
        Image.fromarray(rng.integers(0, 255, (64, 32, 3), dtype=np.uint8)).save(root / f"{i}.png")
    pairs = pa.table(
        {
            "pair_id": list(range(N_PAIRS)),
            "path_a": [f"{2 * i}.png" for i in range(N_PAIRS)],
            "path_b": [f"{2 * i + 1}.png" for i in range(N_PAIRS)],
        }
    )
    write_table(tmp_path / "pairs.parquet", pairs)
    cache = tmp_path / "cache" / "responses.sqlite"

    with FakeLLMServer(latency_s=0.1, require_key=KEY) as srv:
        cfg = {
            "name": "resume",
            "type": "lvlm",
            "provider": "openai",
            "model": "fake",
            "base_url": srv.openai_base,
            "api_key_env": "RESUME_KEY",
            "image_size": 32,
            "concurrency": CONCURRENCY,
            "retry_base_s": 0.01,
            "price_in_per_mtok": 1.0,
            "price_out_per_mtok": 1.0,
        }
        (tmp_path / "cfg.json").write_text(json.dumps(cfg))
        env = {**os.environ, "RESUME_KEY": KEY}
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                CHILD,
                str(tmp_path / "cfg.json"),
                str(tmp_path / "pairs.parquet"),
                str(root),
                str(cache),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 120
            while len(_committed(cache)) < 12:
                assert child.poll() is None, child.communicate()
                assert time.monotonic() < deadline, "the child never committed answers"
                time.sleep(0.02)
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        assert child.returncode == -signal.SIGKILL
        committed = set(_committed(cache))
        assert 12 <= len(committed) < N_PAIRS  # killed mid-run, with answers on disk
        before = srv.calls_by_images()
        assert all(before[k] == 1 for k in committed)

        system = LVLMSystemConfig.model_validate(cfg)
        table = judge_pairs(system, pairs, root, cache_path=cache, environ={"RESUME_KEY": KEY})
        after = srv.calls_by_images()

    rows = table.to_pylist()
    assert [r["status"] for r in rows] == ["ok"] * N_PAIRS  # every pair answered
    assert sum(r["cached"] for r in rows) >= len(committed)
    assert len(after) == N_PAIRS
    # Answers committed before the kill were never asked again...
    assert all(after[k] == 1 for k in committed)
    # ...and only calls that were in flight at the kill were asked twice.
    repeated = [k for k, n in after.items() if n > 1]
    assert all(n <= 2 for n in after.values())
    assert len(repeated) <= CONCURRENCY
    assert sum(after.values()) <= N_PAIRS + CONCURRENCY
    server_scores = {rec.images: rec.score for rec in srv.records}  # one per pair
    assert sorted(r["score"] for r in rows) == sorted(server_scores.values())


@pytest.mark.slow
def test_local_server_reruns_make_zero_calls(tmp_path: Path) -> None:
    root = tmp_path / "crops"
    root.mkdir()
    for i in range(4):
        Image.new("RGB", (32, 64), (i * 40, 10, 10)).save(root / f"{i}.png")
    pairs = pa.table(
        {"pair_id": [0, 1], "path_a": ["0.png", "1.png"], "path_b": ["2.png", "3.png"]}
    )
    with FakeLLMServer() as srv:
        system = LVLMSystemConfig.model_validate(
            {"name": "z", "type": "lvlm", "preset": "vllm:fake", "base_url": srv.openai_base}
        )
        cache = tmp_path / "c.sqlite"
        judge_pairs(system, pairs, root, cache_path=cache, environ={})
        n = len(srv.records)
        for _ in range(2):
            again = judge_pairs(system, pairs, root, cache_path=cache, environ={})
            assert again.column("cached").to_pylist() == [True, True]
        assert len(srv.records) == n == 2
    # local servers cost nothing, and say so
    assert again.column("cost_usd").to_pylist() == [0.0, 0.0]
