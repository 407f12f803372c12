"""In-flight claims in the response cache: states, leases, takeover, writers sharing a cache."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from reidbench.config import CacheConfig, LVLMSystemConfig
from reidbench.judges import judge_pairs
from reidbench.judges.cache import DEFAULT_CLAIM_LEASE_S, ResponseCache
from reidbench.judges.claims import Claims
from reidbench.judges.result import JudgeResult
from tests.fake_llm_server import FakeLLMServer

KEY = "sk-claims-test-key-424242"


def answer(score: float = 70.0, status: str = "ok") -> JudgeResult:
    return JudgeResult(
        score=score if status == "ok" else None,
        decision="same" if status == "ok" else "unknown",
        status=status,
        provider="openai",
        model="m",
        prompt_id="p",
        prompt_version="1",
        attempts=1,
    )


def store(cache: ResponseCache, key: str, result: JudgeResult) -> None:
    cache.put(key, result, system="s", endpoint_host="h", images=["x"], order="ab", repeat=0)


def test_claim_states_leases_and_takeover(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with ResponseCache(path) as a, ResponseCache(path) as b:
        got = a.claim("k", "A", lease_s=10, now=100.0)
        assert (got.state, got.took_over) == ("claimed", None)
        assert a.claims() == {"k": ("A", 110.0)}
        # Another writer (and the owner itself) finds it busy while the lease lives.
        assert b.claim("k", "B", lease_s=10, now=109.9).holder == "A"
        assert a.claim("k", "A", lease_s=10, now=105.0).state == "busy"
        # Renewal moves the expiry; only the owner's claims move.
        b.claim("other", "B", lease_s=10, now=100.0)
        assert a.renew("A", lease_s=10, now=108.0) == 1
        assert b.claims() == {"k": ("A", 118.0), "other": ("B", 110.0)}
        assert b.claim("k", "B", lease_s=10, now=117.0).state == "busy"
        # A lapsed lease is taken over, and the taker learns whose it was.
        got = b.claim("k", "B", lease_s=5, now=118.5)
        assert (got.state, got.took_over) == ("claimed", "A")
        assert b.claims()["k"] == ("B", 123.5)
        # Once answered, nobody claims it: the answer comes back as a cache hit.
        store(b, "k", answer(81.0))
        b.release("k", "B")
        got = a.claim("k", "A", lease_s=10, now=200.0)
        assert got.state == "answered" and got.answer is not None
        assert (got.answer.score, got.answer.cached, got.answer.attempts) == (81.0, True, 0)
        # Release is by owner: A cannot drop B's claim.
        a.release("other", "A")
        assert "other" in a.claims()
        b.release_all("B")
        assert a.claims() == {}


def test_config_default_lease_matches_the_cache() -> None:
    assert CacheConfig().claim_lease_s == DEFAULT_CLAIM_LEASE_S
    assert CacheConfig().responses is None


@pytest.mark.slow
def test_a_waiter_takes_the_owners_answer_and_makes_no_call(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    calls: list[str] = []

    async def go() -> tuple[JudgeResult, JudgeResult]:
        with ResponseCache(path) as ca, ResponseCache(path) as cb:
            first, second = Claims(ca, lease_s=5, owner="A"), Claims(cb, lease_s=5, owner="B")
            started = asyncio.Event()

            async def slow_call() -> JudgeResult:
                calls.append("A")
                started.set()
                await asyncio.sleep(0.3)
                result = answer(64.0)
                store(ca, "k", result)  # the runner stores before the claim goes
                return result

            async def second_call() -> JudgeResult:
                calls.append("B")
                return answer(1.0)

            async def later() -> JudgeResult:
                await started.wait()
                return await second.ask_once("k", second_call)

            async with first.renewing(), second.renewing():
                got = await asyncio.gather(first.ask_once("k", slow_call), later())
            assert second.answered_elsewhere == 1
            assert ca.claims() == {}
            return got[0], got[1]

    mine, theirs = asyncio.run(go())
    assert calls == ["A"]  # paid once
    assert (mine.score, mine.cached) == (64.0, False)
    assert (theirs.score, theirs.cached, theirs.attempts) == (64.0, True, 0)


@pytest.mark.slow
def test_an_error_is_not_an_answer_the_waiter_asks_itself(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    calls: list[str] = []

    async def go() -> JudgeResult:
        with ResponseCache(path) as ca, ResponseCache(path) as cb:
            first, second = Claims(ca, lease_s=5, owner="A"), Claims(cb, lease_s=5, owner="B")
            started = asyncio.Event()

            async def failing() -> JudgeResult:
                calls.append("A")
                started.set()
                await asyncio.sleep(0.2)
                return answer(status="api_error")  # never stored

            async def good() -> JudgeResult:
                calls.append("B")
                result = answer(33.0)
                store(cb, "k", result)
                return result

            async def later() -> JudgeResult:
                await started.wait()
                return await second.ask_once("k", good)

            _, got = await asyncio.gather(first.ask_once("k", failing), later())
            return got

    got = asyncio.run(go())
    assert calls == ["A", "B"]
    assert (got.score, got.cached) == (33.0, False)


@pytest.mark.slow
def test_renewal_keeps_a_long_call_claimed_past_its_lease(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"

    async def go() -> list[str]:
        with ResponseCache(path) as ca, ResponseCache(path) as cb:
            owner = Claims(ca, lease_s=0.3, owner="A")
            seen: list[str] = []

            async def long_call() -> JudgeResult:
                for _ in range(6):  # 1.2 s: four leases long
                    await asyncio.sleep(0.2)
                    seen.append(cb.claim("k", "B", lease_s=0.3).state)
                return answer(status="api_error")

            async with owner.renewing():
                await owner.ask_once("k", long_call)
            return seen

    assert asyncio.run(go()) == ["busy"] * 6  # never lapsed while its owner was alive


@pytest.mark.slow
def test_a_lapsed_claim_of_a_dead_owner_is_taken_over(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "c.sqlite"
    with ResponseCache(path) as dead:
        dead.claim("k", "dead-owner", lease_s=0.2)  # and nobody renews it

    async def go() -> JudgeResult:
        with ResponseCache(path) as cache:
            claims = Claims(cache, lease_s=5, owner="B")

            async def call() -> JudgeResult:
                result = answer(12.0)
                store(cache, "k", result)
                return result

            got = await claims.ask_once("k", call)
            assert claims.taken_over == 1
            return got

    got = asyncio.run(go())
    assert (got.score, got.cached) == (12.0, False)
    assert "took over request" in caplog.text and "dead-owner" in caplog.text


# -- two judges on one cache, in one process (threads), against the loopback server ------------


def _crops(root: Path, n: int) -> pa.Table:
    rng = np.random.default_rng(5)
    for i in range(2 * n):
        Image.fromarray(rng.integers(0, 255, (64, 32, 3), dtype=np.uint8)).save(root / f"{i}.png")
    return pa.table(
        {
            "pair_id": list(range(n)),
            "path_a": [f"{2 * i}.png" for i in range(n)],
            "path_b": [f"{2 * i + 1}.png" for i in range(n)],
        }
    )


@pytest.mark.slow
def test_two_judges_sharing_a_cache_pay_once_per_request(tmp_path: Path) -> None:
    n = 24
    root = tmp_path / "crops"
    root.mkdir()
    pairs = _crops(root, n)
    cache = tmp_path / "shared.sqlite"
    with FakeLLMServer(latency_s=0.1, require_key=KEY) as srv:
        system = LVLMSystemConfig.model_validate(
            {
                "name": "shared",
                "type": "lvlm",
                "provider": "openai",
                "model": "fake",
                "base_url": srv.openai_base,
                "api_key_env": "CLAIMS_KEY",
                "image_size": 32,
                "concurrency": 4,
            }
        )
        tables: list[pa.Table] = []
        barrier = threading.Barrier(2)

        def judge() -> None:
            barrier.wait()
            tables.append(
                judge_pairs(system, pairs, root, cache_path=cache, environ={"CLAIMS_KEY": KEY})
            )

        threads = [threading.Thread(target=judge) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        calls = srv.calls_by_images()
    assert len(tables) == 2
    assert len(calls) == n and set(calls.values()) == {1}  # every request paid exactly once
    paid = [sum(not c for c in t.column("cached").to_pylist()) for t in tables]
    assert sum(paid) == n  # each answer was paid by exactly one of the two
    scores = [t.column("score").to_pylist() for t in tables]
    assert scores[0] == scores[1]
    with ResponseCache(cache) as c:
        assert c.count() == n and c.claims() == {}


def test_writers_creating_one_new_cache_at_once_all_open_it(tmp_path: Path) -> None:
    """Two runs sharing a cache may create it at the same moment (WAL switch, schema row)."""
    errors: list[str] = []
    for rep in range(10):
        path = tmp_path / f"c{rep}.sqlite"
        barrier = threading.Barrier(6)

        def open_it(path: Path = path, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                with ResponseCache(path) as cache:
                    cache.claim("k", f"owner-{threading.get_ident()}", lease_s=5)
            except Exception as exc:
                errors.append(repr(exc))

        threads = [threading.Thread(target=open_it) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with ResponseCache(path) as cache:
            assert len(cache.claims()) == 1  # exactly one of the six claimed it
    assert errors == []
