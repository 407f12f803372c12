"""A `base_url` list: several OpenAI-compatible servers of one model, load-balanced, with one
cache key for the whole pool (so a resume against other nodes pays nothing again)."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from reidbench.config import LVLMSystemConfig
from reidbench.datasets.synthetic import generate
from reidbench.errors import UserError
from reidbench.judges import judge_pairs, system_manifest
from reidbench.judges.providers.base import ProviderReply, ProviderRequest, RetryableError
from reidbench.judges.providers.pool import PoolProvider, never_sent
from reidbench.judges.runner import request_key
from reidbench.judges.settings import POOL_HOST, resolve_system
from tests.fake_llm_server import FakeLLMServer

KEY = "sk-pool-test-0123456789"
N = 24


@pytest.fixture(scope="module")
def crops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("crops")
    rng = np.random.default_rng(3)
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (64, 32, 3), dtype=np.uint8)).save(
            root / f"img{i:02d}.png"
        )
    return root


@pytest.fixture
def servers():
    with (
        FakeLLMServer(require_key=KEY) as a,
        FakeLLMServer(require_key=KEY) as b,
        FakeLLMServer(require_key=KEY) as c,
    ):
        yield a, b, c


def pairs(n: int = N) -> pa.Table:
    return pa.table(
        {
            "pair_id": list(range(n)),
            "path_a": [f"img{i % 12:02d}.png" for i in range(n)],
            "path_b": [f"img{(i + 1 + i // 12) % 12:02d}.png" for i in range(n)],  # all distinct
        }
    )


def closed_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"  # closed on exit: refused


def system(base_url: str | list[str], **kw: object) -> LVLMSystemConfig:
    return LVLMSystemConfig.model_validate(
        {
            "name": "pooled",
            "type": "lvlm",
            "provider": "vllm",
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


def judge(cfg: LVLMSystemConfig, crops: Path, cache: Path, stopped: list[str] | None = None):
    table = judge_pairs(
        cfg, pairs(), crops, cache_path=cache, environ={"FAKE_KEY": KEY}, stopped=stopped
    )
    return table.to_pylist()


def same_fields(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "latency_s"} for r in rows]


# -- settings ------------------------------------------------------------------------------


def test_a_list_resolves_to_a_pool_and_a_string_keeps_its_host() -> None:
    urls = ["http://node1:8000/v1", "http://node2:8000/v1"]
    pooled = resolve_system(system(urls, concurrency=3))
    assert pooled.pooled and pooled.endpoint_host == POOL_HOST
    assert pooled.base_urls == tuple(urls) and pooled.workers == 6  # concurrency per endpoint
    assert system_manifest(pooled)["endpoints"] == ["node1:8000", "node2:8000"]
    single = resolve_system(system(urls[0], concurrency=3))
    assert not single.pooled and single.endpoint_host == "node1:8000" and single.workers == 3
    assert "endpoints" not in system_manifest(single)
    # the pool's key names no node: other nodes, same key; a single URL's key is as before
    other = resolve_system(system(["http://node9:9000/v1"], concurrency=3))
    assert request_key(pooled, ["x"], "ab", 0) == request_key(other, ["x"], "ab", 0)
    assert request_key(pooled, ["x"], "ab", 0) != request_key(single, ["x"], "ab", 0)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"base_url": []}, "is empty"),
        ({"base_url": ["http://a:1/v1", "http://a:1/v1"]}, "twice"),
        ({"base_url": ["http://a:1/v1", "not a url"]}, "has no host"),
        ({"base_url": ["http://a:1/v1"], "provider": "anthropic"}, "OpenAI-compatible"),
    ],
)
def test_bad_lists_are_one_clear_error(fields: dict, words: str) -> None:
    with pytest.raises(UserError, match=words):
        resolve_system(system(**fields))


# -- the pool provider on its own ----------------------------------------------------------


class Gate:
    """A provider whose calls wait until released; it records how many run at once."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0
        self.release = asyncio.Event()

    async def complete(self, request: ProviderRequest) -> ProviderReply:
        self.now += 1
        self.most = max(self.most, self.now)
        await self.release.wait()
        self.now -= 1
        return ProviderReply(text="{}")

    async def aclose(self) -> None:
        pass


def test_no_endpoint_gets_more_than_its_concurrency() -> None:
    request = ProviderRequest("s", "t", [], None, "off", 8, 0.0, 0, 5.0)

    async def scenario() -> tuple[list[int], list[int]]:
        gates = [Gate(), Gate()]
        pool = PoolProvider([("http://a/v1", gates[0]), ("http://b/v1", gates[1])], per_endpoint=2)
        tasks = [asyncio.create_task(pool.complete(request)) for _ in range(7)]
        for _ in range(20):
            await asyncio.sleep(0)
        held = [g.now for g in gates]  # 2 + 2 in flight, 3 waiting for a slot
        for g in gates:
            g.release.set()
        await asyncio.gather(*tasks)
        return held, [g.most for g in gates]

    held, most = asyncio.run(scenario())
    assert held == [2, 2] and most == [2, 2]


class Scripted:
    """A provider that raises the given errors in turn, then answers."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def complete(self, request: ProviderRequest) -> ProviderReply:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return ProviderReply(text="{}")

    async def aclose(self) -> None:
        pass


def refused() -> RetryableError:
    error = RetryableError("connection error: refused", kind="connection")
    error.__context__ = ConnectionRefusedError(111, "Connection refused")
    return error


def test_only_a_connection_never_made_is_resent_elsewhere() -> None:
    request = ProviderRequest("s", "t", [], None, "off", 8, 0.0, 0, 5.0)
    assert never_sent(refused())
    reset = RetryableError("connection error: reset by peer", kind="connection")
    assert not never_sent(reset)

    dead, alive = Scripted(refused()), Scripted()
    pool = PoolProvider([("http://a/v1", dead), ("http://b/v1", alive)], per_endpoint=1)
    assert asyncio.run(pool.complete(request)).text == "{}"  # resent to b at once
    assert (dead.calls, alive.calls) == (1, 1)

    cut, other = Scripted(reset), Scripted()
    pool = PoolProvider([("http://a/v1", cut), ("http://b/v1", other)], per_endpoint=1)
    with pytest.raises(RetryableError, match="reset"):  # may have been billed: the runner's
        asyncio.run(pool.complete(request))
    assert (cut.calls, other.calls) == (1, 0)


# -- against loopback servers --------------------------------------------------------------


@pytest.mark.slow
def test_requests_spread_over_every_endpoint_with_the_single_url_rows(
    servers, crops, tmp_path
) -> None:
    a, b, c = servers
    pooled = judge(system([a.openai_base, b.openai_base, c.openai_base]), crops, tmp_path / "p")
    counts = [len(s.records) for s in servers]
    assert all(n > 0 for n in counts) and sum(counts) == N, counts
    with FakeLLMServer(require_key=KEY) as alone:
        single = judge(system(alone.openai_base), crops, tmp_path / "s")
        assert len(alone.records) == N
    assert same_fields(pooled) == same_fields(single)
    assert {r["status"] for r in pooled} == {"ok"} and all(r["attempts"] == 1 for r in pooled)


def test_a_resume_against_other_endpoints_pays_nothing(servers, crops, tmp_path) -> None:
    a, b, c = servers
    cache = tmp_path / "c.sqlite"
    first = judge(system([a.openai_base, b.openai_base]), crops, cache)
    assert len(a.records) + len(b.records) == N
    again = judge(system([c.openai_base]), crops, cache)  # a node list of other machines
    assert c.records == []  # no new call
    assert all(r["cached"] for r in again)
    assert [r["score"] for r in again] == [r["score"] for r in first]


@pytest.mark.slow
def test_a_dead_endpoint_leaves_the_rotation_and_the_others_answer(
    servers, crops, tmp_path, caplog
) -> None:
    a, b, _ = servers
    dead = closed_url()
    stopped: list[str] = []
    with caplog.at_level(logging.WARNING, logger="reidbench.judges.providers.pool"):
        rows = judge(system([dead, a.openai_base, b.openai_base]), crops, tmp_path / "c", stopped)
    assert stopped == []
    assert {r["status"] for r in rows} == {"ok"}
    assert all(r["attempts"] == 1 for r in rows)  # the refusals were resent, not retried
    assert len(a.records) + len(b.records) == N
    assert any("out of rotation" in m and dead in m for m in caplog.messages)


def test_all_endpoints_dead_stops_the_system_by_its_breaker(crops, tmp_path) -> None:
    urls = [closed_url(), closed_url()]
    cfg = system(urls, stop_after_connection_errors=3)
    stopped: list[str] = []
    rows = judge(cfg, crops, tmp_path / "c", stopped)
    assert len(stopped) == 1 and "in a row" in stopped[0]
    assert f"at pool {urls[0]}, {urls[1]};" in stopped[0]  # names every endpoint
    assert all(f"pool {urls[0]}, {urls[1]}" in r["error"] for r in rows)
    assert {r["status"] for r in rows} == {"api_error"}
    assert sum(r["attempts"] for r in rows) <= 3 + cfg.concurrency * 2  # streak + in flight


# -- the pre-flight ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic") / "data"
    generate(root, train_ids=2, test_ids=6, seed=5)
    return root


def config_file(path: Path, data: Path, urls: list[str]) -> Path:
    fields = system(urls, concurrency=1).model_dump(exclude_defaults=True)
    fields["type"] = "lvlm"
    body = "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items())
    path.write_text(
        f'name = "pool"\nbootstrap = 20\n\n[dataset]\nroot = "{data}"\n\n'
        "[pairs]\npositives = 3\nnegatives = 3\nseed = 1\n\n[[systems]]\n" + body
    )
    return path


@pytest.mark.slow
def test_preflight_probes_every_endpoint(run_cli, data, servers, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_KEY", KEY)
    a, b, _ = servers
    cfg = config_file(tmp_path / "c.toml", data, [a.openai_base, b.openai_base])
    result = run_cli("run", cfg, "--out", tmp_path / "run")
    assert result.code == 0, result.err
    assert a.probes == ["/v1/models"] and b.probes == ["/v1/models"]
    assert "pre-flight: 2 endpoint request(s) made" in result.err
    assert len(a.records) > 0 and len(b.records) > 0


@pytest.mark.slow
def test_preflight_refuses_a_list_with_a_dead_endpoint(
    run_cli, data, servers, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("FAKE_KEY", KEY)
    a, _, _ = servers
    dead = closed_url()
    cfg = config_file(tmp_path / "c.toml", data, [a.openai_base, dead])
    out = tmp_path / "run"
    result = run_cli("run", cfg, "--out", out)
    assert result.code == 2, result.err
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"cannot reach {dead}" in errors[0]
    assert a.probes == ["/v1/models"] and a.records == []
    assert not out.exists()
