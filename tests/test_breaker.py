"""The circuit breaker: a dead endpoint, a rejected key, an unknown model or a timing-out
server stops that system after a bounded number of requests (counted, never timed)."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from reidbench.config import LVLMSystemConfig
from reidbench.judges import judge_pairs
from reidbench.judges.breaker import Breaker, BreakerRules, safe_url, stop_cause
from reidbench.judges.providers.base import PermanentError, RetryableError
from tests.fake_llm_server import FakeLLMServer
from tests.optional import SDKS

KEY = "sk-breaker-test-0123456789"


@pytest.fixture(scope="module")
def crops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("crops")
    rng = np.random.default_rng(11)
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (64, 32, 3), dtype=np.uint8)).save(
            root / f"img{i:02d}.png"
        )
    return root


def pairs(n: int) -> pa.Table:
    return pa.table(
        {
            "pair_id": list(range(n)),
            "path_a": [f"img{i % 12:02d}.png" for i in range(n)],
            "path_b": [f"img{(i + 5) % 12:02d}.png" for i in range(n)],
        }
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed on exit: connections are refused


def system(base_url: str, provider: str = "openai", **kw: object) -> LVLMSystemConfig:
    return LVLMSystemConfig.model_validate(
        {
            "name": "s",
            "type": "lvlm",
            "provider": provider,
            "model": "fake-model",
            "base_url": base_url,
            "api_key_env": "FAKE_KEY",
            "concurrency": 2,
            "retry_base_s": 0.01,
            "retry_max_s": 0.02,
            "max_retries": 3,
            "timeout_s": 10.0,
            "image_size": 32,
            "price_in_per_mtok": 1.0,
            "price_out_per_mtok": 1.0,
            **kw,
        }
    )


def judge(cfg, n, crops, cache, key=KEY):
    stopped: list[str] = []
    table = judge_pairs(
        cfg, pairs(n), crops, cache_path=cache, environ={"FAKE_KEY": key}, stopped=stopped
    )
    return table.to_pylist(), stopped


# -- the rules, unit by unit -------------------------------------------------------------


def test_rules() -> None:
    b = Breaker(BreakerRules(connection_errors=3, timeout_rate=0.5, min_calls=4), "s", None)
    conn = RetryableError("connection error: refused", kind="connection")
    assert not b.failed(conn) and not b.failed(conn)
    b.answered()  # an answer resets the streak
    assert not b.failed(conn) and not b.failed(conn)
    assert b.failed(conn) and "3 attempts in a row" in b.reason
    # 429 and 5xx are transient: they never stop a system
    t = Breaker(BreakerRules(connection_errors=1, min_calls=1), "s", "http://h:1/v1")
    for status in (429, 500, 502, 503):
        assert not t.failed(RetryableError(f"HTTP {status}", status=status))
    assert stop_cause(PermanentError("HTTP 400: bad param", status=400)) is None
    assert stop_cause(PermanentError("HTTP 400: model `x` does not exist", status=400))
    assert stop_cause(PermanentError("HTTP 403: forbidden", status=403))
    assert safe_url("https://user:pw@h.example:8443/v1?key=sec") == "https://h.example:8443/v1"


# -- against endpoints ---------------------------------------------------------------------


@pytest.mark.slow
def test_closed_port_stops_after_a_bounded_number_of_attempts(crops, tmp_path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    cfg = system(url, stop_after_connection_errors=4, concurrency=2)
    rows, stopped = judge(cfg, 40, crops, tmp_path / "c.sqlite")
    assert sum(r["attempts"] for r in rows) <= 4 + 2 - 1  # the streak, plus one in flight
    assert {r["status"] for r in rows} == {"api_error"}
    assert len(stopped) == 1 and url in stopped[0] and "in a row" in stopped[0]
    assert all(url in r["error"] for r in rows)  # every stored error names the URL
    assert all("stopped" in r["error"] for r in rows)  # not asked, or asked when it tripped


@pytest.mark.slow
@pytest.mark.parametrize("provider", SDKS)
def test_rejected_key_stops_at_the_first_401(provider, crops, tmp_path) -> None:
    with FakeLLMServer(require_key=KEY) as srv:
        base = srv.openai_base if provider == "openai" else srv.url
        rows, stopped = judge(system(base, provider), 20, crops, tmp_path / "c.sqlite", "sk-bad")
        assert 1 <= len(srv.records) <= 2  # concurrency 2: at most one more was in flight
    assert {r["status"] for r in rows} == {"api_error"}
    assert len(stopped) == 1 and "HTTP 401" in stopped[0] and "api_key_env" in stopped[0]


def test_an_echoed_key_never_reaches_the_stop_reason(crops, tmp_path) -> None:
    with FakeLLMServer(require_key=KEY) as srv:
        srv.faults.append("401-echo")  # "Incorrect API key provided: <the key>"
        rows, stopped = judge(system(srv.openai_base, concurrency=1), 3, crops, tmp_path / "c")
    assert len(stopped) == 1 and "Incorrect API key" in stopped[0]
    assert KEY not in stopped[0] and "[redacted]" in stopped[0]
    assert all(KEY not in r["error"] for r in rows)


@pytest.mark.parametrize("provider", SDKS)
def test_unknown_model_404_stops_the_system(provider, crops, tmp_path) -> None:
    with FakeLLMServer(require_key=KEY) as srv:
        srv.models = {"other-model"}
        base = srv.openai_base if provider == "openai" else srv.url
        rows, stopped = judge(system(base, provider), 20, crops, tmp_path / "c.sqlite")
        assert 1 <= len(srv.records) <= 2
        assert all(rec.status == 404 for rec in srv.records)
    assert len(stopped) == 1 and "HTTP 404" in stopped[0] and "model" in stopped[0]
    assert all(r["status"] == "api_error" for r in rows)


@pytest.mark.slow
def test_timeout_rate_stops_the_system(crops, tmp_path) -> None:
    with FakeLLMServer(require_key=KEY, timeout_sleep_s=3.0) as srv:
        srv.faults.extend(["timeout", "ok", "timeout", "timeout"] + ["timeout"] * 20)
        cfg = system(
            srv.openai_base,
            concurrency=1,
            max_retries=0,
            timeout_s=0.3,
            stop_after_connection_errors=100,
            stop_timeout_rate=0.5,
            stop_min_calls=4,
        )
        rows, stopped = judge(cfg, 20, crops, tmp_path / "c.sqlite")
        assert len(srv.records) == 4  # 3 of 4 timed out: 75 % > 50 %
    assert len(stopped) == 1 and "3 of 4 attempts timed out" in stopped[0]
    assert [r["status"] for r in rows[:2]] == ["api_error", "ok"]


@pytest.mark.slow
def test_transient_errors_keep_retrying(crops, tmp_path) -> None:
    with FakeLLMServer(require_key=KEY) as srv:
        srv.faults.extend(["500", "429", "500"])
        cfg = system(srv.openai_base, concurrency=1, stop_after_connection_errors=1)
        rows, stopped = judge(cfg, 2, crops, tmp_path / "c.sqlite")
    assert stopped == [] and [r["status"] for r in rows] == ["ok", "ok"]
    assert rows[0]["attempts"] == 4


def test_answers_paid_before_the_stop_are_reused(crops, tmp_path) -> None:
    cache = tmp_path / "c.sqlite"
    with FakeLLMServer(require_key=KEY) as srv:
        srv.faults.extend(["ok", "ok", "ok", "401-echo"])
        cfg = system(srv.openai_base, concurrency=1)
        rows, stopped = judge(cfg, 10, crops, cache)
        assert len(srv.records) == 4 and len(stopped) == 1
        assert [r["status"] for r in rows].count("ok") == 3
        rows2, stopped2 = judge(cfg, 10, crops, cache)
        assert stopped2 == []
        assert len(srv.records) == 4 + 7  # only the 7 unanswered pairs were asked
    assert [r["cached"] for r in rows2] == [True] * 3 + [False] * 7
    assert [r["score"] for r in rows2[:3]] == [r["score"] for r in rows[:3]]
