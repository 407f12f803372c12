"""Concurrent `reidbench run` processes, as users start them, with every paid answer counted.

Each test starts real processes (`python -m reidbench run ...`) against the loopback
fake server, whose answers are held at a gate so the processes provably overlap:
- two runs on one run directory: the second is refused (exit 2, naming the holder);
- two run directories sharing one response cache (`[cache] responses`): each answer is
  paid once, by one of them, although leases are shorter than the overlap (renewed);
- a run SIGKILLed while holding claims: the next run takes over its run lock and its
  lapsed claims, and pays again only for what was in flight.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from reidbench.datasets.synthetic import generate
from tests.fake_llm_server import FakeLLMServer

KEY = "sk-concurrent-runs-key-5a5a5a"
PAIRS = 30  # positives = negatives = PAIRS


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic") / "data"
    generate(root, train_ids=2, test_ids=16, seed=4)
    return root


class Gate:
    """Counts requests as they reach the server; holds the answers after `hold_after` of them."""

    def __init__(self, srv: FakeLLMServer, hold_after: int = 0) -> None:
        self.arrived = 0
        self.hold_after = hold_after
        self.opened = threading.Event()
        self._cond = threading.Condition()
        inner = srv.score_fn

        def score(images: list[bytes]) -> int:
            with self._cond:
                self.arrived += 1
                n = self.arrived
                self._cond.notify_all()
            if n > self.hold_after:
                assert self.opened.wait(timeout=240), "the gate was never opened"
            return inner(images)

        srv.score_fn = score

    def wait_for(self, n: int, alive: list[subprocess.Popen[str]], timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.arrived < n:
                for p in alive:
                    assert p.poll() is None, p.communicate()
                assert time.monotonic() < deadline, f"only {self.arrived} of {n} requests came"
                self._cond.wait(0.1)

    def open(self) -> None:
        self.opened.set()


def write_config(path: Path, data: Path, srv: FakeLLMServer, **extra: object) -> Path:
    cache = extra.pop("cache", None)
    fields = {
        "name": "fake-gpt",
        "type": "lvlm",
        "provider": "openai",
        "model": "fake-model",
        "base_url": srv.openai_base,
        "api_key_env": "REIDBENCH_TEST_KEY",
        "concurrency": 4,
        "retry_base_s": 0.01,
        "image_size": 48,
        "price_in_per_mtok": 2.5,
        "price_out_per_mtok": 10.0,
        **extra,
    }
    text = (
        f'name = "concurrent"\nbootstrap = 20\n\n[dataset]\nroot = "{data}"\n\n'
        f"[pairs]\npositives = {PAIRS}\nnegatives = {PAIRS}\nseed = 2\n\n[[systems]]\n"
        + "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items())
    )
    if cache:
        text += "\n[cache]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in cache.items())
    path.write_text(text)
    return path


def start(cfg: Path, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "reidbench", "run", str(cfg), "--out", str(out)],
        env={**os.environ, "REIDBENCH_TEST_KEY": KEY},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(p: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        _, err = p.communicate(timeout=300)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return p.returncode, err


def lvlm_rows(out: Path) -> list[dict]:
    return pq.read_table(out / "systems" / "fake-gpt.parquet").to_pylist()


def query(cache: Path, sql: str, params: tuple = ()) -> list[tuple]:
    db = sqlite3.connect(f"file:{cache}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute(sql, params).fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []
    finally:
        db.close()


def wait_until(cond: Callable[[], bool], p: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 240
    while not cond():
        assert p.poll() is None, p.communicate()
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.slow
def test_second_run_on_the_same_directory_is_refused_naming_the_holder(
    data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    with FakeLLMServer(require_key=KEY) as srv:
        gate = Gate(srv)
        cfg = write_config(tmp_path / "exp.toml", data, srv)
        first = start(cfg, out)
        try:
            gate.wait_for(1, [first])  # the first run is asking: it holds the directory
            second = start(cfg, out)
            code2, err2 = finish(second)
        finally:
            gate.open()
        code1, err1 = finish(first)
        calls = srv.calls_by_images()
    assert code1 == 0, err1
    assert code2 == 2, err2
    lines = [line for line in err2.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err2
    assert f"run directory in use by PID {first.pid} on host" in lines[0]
    assert str(out) in lines[0] and "--out" in lines[0]
    n = pq.read_table(out / "pairs.parquet").num_rows
    assert n == 2 * PAIRS
    assert len(calls) == n and set(calls.values()) == {1}  # n paid answers for n pairs
    assert len(lvlm_rows(out)) == n
    assert not (out / "run.lock.json").exists()  # released by its holder


@pytest.mark.slow
def test_two_run_directories_sharing_a_cache_pay_once_per_request(
    data: Path, tmp_path: Path
) -> None:
    shared = tmp_path / "shared" / "responses.sqlite"
    # Leases far shorter than the time the first run's calls are held at the gate: only
    # renewal keeps them claimed while the second run starts and waits.
    cache = {"responses": str(shared), "claim_lease_s": 1.0}
    out_a, out_b = tmp_path / "a", tmp_path / "b"
    with FakeLLMServer(require_key=KEY) as srv:
        gate = Gate(srv)
        a = start(write_config(tmp_path / "a.toml", data, srv, cache=cache), out_a)
        b = None
        try:
            gate.wait_for(4, [a])  # A holds 4 claims, its calls in flight
            b = start(
                write_config(tmp_path / "b.toml", data, srv, cache=cache, concurrency=8), out_b
            )
            gate.wait_for(8, [a, b])  # B waits on A's 4 and asks 4 others: both in flight
        finally:
            gate.open()
        code_a, err_a = finish(a)
        assert b is not None
        code_b, err_b = finish(b)
        calls = srv.calls_by_images()
    assert (code_a, code_b) == (0, 0), err_a + err_b
    n = 2 * PAIRS
    assert len(calls) == n and set(calls.values()) == {1}  # 0 answers paid twice
    rows_a, rows_b = lvlm_rows(out_a), lvlm_rows(out_b)
    paid_a = sum(not r["cached"] for r in rows_a)
    paid_b = sum(not r["cached"] for r in rows_b)
    assert paid_a + paid_b == n  # each answer paid by exactly one of the two runs
    assert paid_a >= 4 and paid_b >= 4  # both asked while the other was asking
    assert n - paid_b >= 4 and n - paid_a >= 4  # and each used answers the other paid for
    assert [r["score"] for r in rows_a] == [r["score"] for r in rows_b]
    assert query(shared, "SELECT COUNT(*) FROM responses") == [(n,)]
    assert query(shared, "SELECT COUNT(*) FROM claims") == [(0,)]
    for out in (out_a, out_b):
        assert not (out / "cache" / "responses.sqlite").exists()  # the shared one was used
        config = json.loads((out / "run.json").read_text())["config"]
        assert config["cache"] == {"responses": str(shared), "claim_lease_s": 1.0}


@pytest.mark.slow
def test_sigkilled_writer_holding_claims_is_taken_over_after_the_lease(
    data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    answered = 6
    with FakeLLMServer(require_key=KEY) as srv:
        gate = Gate(srv, hold_after=answered)
        cfg = write_config(tmp_path / "exp.toml", data, srv, cache={"claim_lease_s": 1.5})
        cache = out / "cache" / "responses.sqlite"
        first = start(cfg, out)
        try:
            gate.wait_for(answered + 4, [first])  # 6 answered, 4 in flight and held
            wait_until(
                lambda: query(cache, "SELECT COUNT(*) FROM responses") == [(answered,)],
                first,
                "the first run never committed its answers",
            )
            claims = query(cache, "SELECT key, owner FROM claims")
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
        finally:
            gate.open()  # the 4 requests in flight are answered to nobody: paid, and lost
            if first.poll() is None:
                first.kill()
                first.wait()
        assert first.returncode == -signal.SIGKILL
        assert len(claims) == 4  # what was in flight, claimed...
        assert all(owner.split(":")[1] == str(first.pid) for _, owner in claims)
        assert query(cache, "SELECT COUNT(*) FROM claims") == [(4,)]  # ...and left behind

        second = start(cfg, out)
        code, err = finish(second)
        calls = srv.calls_by_images()
        records = len(srv.records)
    assert code == 0, err
    assert f"taking over the run lock of PID {first.pid}" in err
    assert err.count("took over request") == 4  # each lapsed claim, said aloud
    n = 2 * PAIRS
    assert records == n + 4  # paid again: only the 4 calls in flight at the kill
    keys = tuple(k for k, _ in claims)
    sql = f"SELECT images FROM responses WHERE key IN ({','.join('?' * len(keys))})"
    in_flight = {tuple(json.loads(images)) for (images,) in query(cache, sql, keys)}
    assert len(in_flight) == 4
    assert {k for k, c in calls.items() if c == 2} == in_flight
    assert all(c == 1 for k, c in calls.items() if k not in in_flight)
    rows = lvlm_rows(out)
    assert sum(r["cached"] for r in rows) == answered  # the 6 answers before the kill
    assert sum(not r["cached"] for r in rows) == n - answered
    assert all(r["status"] == "ok" for r in rows)
    assert query(cache, "SELECT COUNT(*) FROM claims") == [(0,)]
