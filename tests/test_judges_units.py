"""Judges, piece by piece: prompts, presets, settings, images, cache, rate limits and budgets."""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reidbench.config import LVLMSystemConfig
from reidbench.errors import UserError
from reidbench.judges import (
    PRICES,
    STUDY_PRESETS,
    JudgeResult,
    bundled_prompt_ids,
    load_prompt,
    resolve_system,
    system_manifest,
)
from reidbench.judges.cache import ResponseCache
from reidbench.judges.images import COMPOSITE_GAP, LABEL_BAND, ImageSpec, prepare, upscale
from reidbench.judges.limits import Budget, RateLimiter, TokenBucket
from reidbench.judges.providers.base import (
    PermanentError,
    RetryableError,
    closed_schema,
    retry_after_seconds,
    status_error,
)
from reidbench.judges.runner import Runner, estimate_tokens_in


def lvlm(**kw: object) -> LVLMSystemConfig:
    return LVLMSystemConfig.model_validate({"name": "j", "type": "lvlm", **kw})


# -- prompts -------------------------------------------------------------------------------


def test_bundled_prompts_are_versioned_data() -> None:
    assert bundled_prompt_ids() == [
        "attributes",
        "attributes-then-score",
        "choice",
        "same-or-different",
        "similarity-0-100",
        "yes-no-probability",
    ]
    for pid in bundled_prompt_ids():
        p = load_prompt(pid)
        assert (p.id, p.version) == (pid, "1")
        assert len(p.sha256) == 64
        text = p.user_text("pair") + p.system
        assert "public" in p.system and "re-identification" in p.system
        assert "Do not try to identify who anyone is" in p.system
        assert ("JSON" in text) == (p.answer != "probability")  # one word, no JSON
        assert "left" in p.user_text("composite")


def test_user_prompt_files_and_bad_ones(tmp_path: Path) -> None:
    src = load_prompt("similarity-0-100")
    good = tmp_path / "mine.toml"
    text = (
        Path(__file__).parents[1] / "src/reidbench/judges/prompts/similarity-0-100.toml"
    ).read_text()
    good.write_text(text.replace('version = "1"', 'version = "2-local"'))
    mine = load_prompt(str(good))
    assert (mine.id, mine.version) == ("similarity-0-100", "2-local")
    assert mine.sha256 != src.sha256  # the version is content too: the cache key changes
    bad = tmp_path / "bad.toml"
    bad.write_text('id = "x"\nversion = "1"\n')
    with pytest.raises(UserError, match="lacks"):
        load_prompt(str(bad))
    with pytest.raises(UserError, match="unknown prompt"):
        load_prompt("no-such-prompt")
    with pytest.raises(UserError, match="not found"):
        load_prompt(str(tmp_path / "missing.toml"))


# -- presets, settings, manifest ---------------------------------------------------------


def test_study_presets_have_dated_prices() -> None:
    for name in STUDY_PRESETS:
        price = PRICES[name]
        assert price.in_per_mtok > 0 and price.out_per_mtok > 0
        assert len(price.as_of) == 10 and price.as_of.startswith("202")
        r = resolve_system(lvlm(preset=name))
        assert r.price == price and r.price_source == "preset"
        assert r.api_key_env


def test_issue_example_resolves_to_the_gpt4o_preset() -> None:
    r = resolve_system(
        lvlm(provider="openai", model="gpt-4o", api_key_env="OPENAI_API_KEY", concurrency=16)
    )
    assert (r.client, r.family, r.endpoint_host, r.structured) == (
        "openai",
        "openai",
        "api.openai.com",
        "json_schema",
    )
    assert r.price is not None and r.price.in_per_mtok == 2.5


@pytest.mark.parametrize(
    ("preset", "client", "host", "structured"),
    [
        ("dashscope:qwen-vl-max", "openai", "dashscope-intl.aliyuncs.com", "off"),
        (
            "gemini-openai:gemini-2.0-flash",
            "openai",
            "generativelanguage.googleapis.com",
            "json_schema",
        ),
        (
            "gemini:gemini-2.0-flash",
            "gemini",
            "generativelanguage.googleapis.com",
            "response_schema",
        ),
        ("anthropic:claude-3-5-sonnet-latest", "anthropic", "api.anthropic.com", "tool"),
        ("vllm:Qwen/Qwen2.5-VL-7B-Instruct", "openai", "localhost:8000", "json_schema"),
        ("ollama:qwen2.5vl:7b", "openai", "localhost:11434", "json_schema"),
        ("lmstudio:qwen2.5-vl-7b", "openai", "localhost:1234", "json_schema"),
        ("sglang:Qwen/Qwen2.5-VL-7B-Instruct", "openai", "localhost:30000", "json_schema"),
    ],
)
def test_presets_fill_client_endpoint_and_mode(
    preset: str, client: str, host: str, structured: str
) -> None:
    r = resolve_system(lvlm(preset=preset))
    assert (r.client, r.endpoint_host, r.structured) == (client, host, structured)


def test_local_servers_need_no_key_and_cost_nothing() -> None:
    r = resolve_system(lvlm(preset="ollama:qwen2.5vl:7b"))
    assert r.model == "qwen2.5vl:7b"  # Ollama tags keep their colon
    assert r.api_key({}) == "no-key-needed"
    assert r.cost(1000, 100) == 0.0


def test_config_overrides_preset() -> None:
    r = resolve_system(
        lvlm(
            preset="openai:gpt-4o",
            base_url="https://proxy.example:8443/v1?token=abc",
            price_in_per_mtok=1.0,
            structured="off",
        )
    )
    assert r.endpoint_host == "proxy.example:8443"  # host only: no path or query
    assert r.structured == "off"
    assert r.price is not None and (r.price.in_per_mtok, r.price.out_per_mtok) == (1.0, 10.0)
    assert r.cost(1_000_000, 100_000) == pytest.approx(1.0 + 1.0)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({}, "set preset"),
        ({"provider": "openia", "model": "x"}, "unknown provider"),
        ({"provider": "openai"}, "no model"),
        ({"provider": "openai", "model": "gpt-9", "max_cost_usd": 1.0}, "needs prices"),
        ({"provider": "openai", "model": "gpt-9", "price_in_per_mtok": 1.0}, "set both"),
        ({"preset": "hf:tiny", "structured": "on"}, "no structured output"),
        ({"preset": "openai:gpt-4o", "extra": {"structured_mode": "tool"}}, "structured_mode"),
        ({"preset": "openai:gpt-4o", "prompt": "nope"}, "unknown prompt"),
    ],
)
def test_bad_systems_are_user_errors(kw: dict, match: str) -> None:
    with pytest.raises(UserError, match=match):
        resolve_system(lvlm(**kw))


def test_missing_key_names_the_variable() -> None:
    r = resolve_system(lvlm(preset="anthropic:claude-3-5-sonnet-latest"))
    with pytest.raises(UserError, match="ANTHROPIC_API_KEY"):
        r.api_key({"OTHER": "x"})
    assert r.api_key({"ANTHROPIC_API_KEY": " sk-ant-1 "}) == "sk-ant-1"


def test_manifest_records_what_a_reviewer_needs_and_no_secret() -> None:
    m = system_manifest(lvlm(preset="openai:gpt-4o", api_key_env="MY_KEY"))
    assert m["provider"] == "openai" and m["model"] == "gpt-4o"
    assert m["endpoint_host"] == "api.openai.com"
    assert (m["prompt_id"], m["prompt_version"]) == ("similarity-0-100", "1")
    assert m["prices"] == {
        "in_per_mtok": 2.5,
        "out_per_mtok": 10.0,
        "as_of": "2025-01-30",
        "source": "preset",
    }
    assert m["scale"] == 100.0 and m["threshold"] == 50.0
    assert m["api_key_env"] == "MY_KEY"
    json.dumps(m)  # JSON-able


# -- images --------------------------------------------------------------------------------


def _crop(path: Path, h: int = 128, w: int = 64, seed: int = 0) -> Path:
    arr = np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return path


def test_small_crops_are_upscaled_large_ones_kept(tmp_path: Path) -> None:
    small = Image.new("RGB", (64, 128))
    assert upscale(small, 256).size == (128, 256)
    assert upscale(Image.new("RGB", (200, 400)), 256).size == (200, 400)


@pytest.mark.parametrize(
    ("fmt", "magic"), [("jpeg", b"\xff\xd8"), ("png", b"\x89PNG"), ("webp", b"RIFF")]
)
def test_pair_mode_encodes_each_crop(tmp_path: Path, fmt: str, magic: bytes) -> None:
    a, b = _crop(tmp_path / "a.png", seed=1), _crop(tmp_path / "b.png", seed=2)
    spec = ImageSpec(mode="pair", size=192, fmt=fmt, quality=80)
    imgs = prepare(a, b, spec)
    assert len(imgs) == 2
    for img in imgs:
        assert img.data.startswith(magic)
        assert (img.width, img.height) == (96, 192)
        assert Image.open(io.BytesIO(img.data)).size == (96, 192)
    assert prepare(a, b, spec) == imgs  # deterministic bytes: the cache key depends on them
    assert imgs[0].sha256 != imgs[1].sha256


def test_composite_places_a_left_b_right_with_labels(tmp_path: Path) -> None:
    a = tmp_path / "a.png"
    Image.new("RGB", (64, 128), (255, 0, 0)).save(a)
    b = tmp_path / "b.png"
    Image.new("RGB", (64, 128), (0, 0, 255)).save(b)
    [img] = prepare(a, b, ImageSpec(mode="composite", size=128, fmt="png"))
    pic = np.asarray(Image.open(io.BytesIO(img.data)))
    assert pic.shape == (128 + LABEL_BAND, 64 + COMPOSITE_GAP + 64, 3)
    assert tuple(pic[LABEL_BAND + 60, 30]) == (255, 0, 0)  # A on the left
    assert tuple(pic[LABEL_BAND + 60, 64 + COMPOSITE_GAP + 30]) == (0, 0, 255)  # B on the right
    assert tuple(pic[LABEL_BAND + 60, 64 + COMPOSITE_GAP // 2]) == (255, 255, 255)  # the gap
    band = pic[:LABEL_BAND]
    assert (band < 128).any()  # the labels are drawn in black on the white band


def test_broken_images_are_user_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    good = _crop(tmp_path / "g.png")
    with pytest.raises(UserError, match="not a readable image"):
        prepare(bad, good, ImageSpec())
    with pytest.raises(UserError, match="not found"):
        prepare(tmp_path / "none.png", good, ImageSpec())


def test_token_estimate_is_generous() -> None:
    from reidbench.judges.images import EncodedImage

    img = EncodedImage.of(b"x", "image/jpeg", 128, 256)
    assert estimate_tokens_in("x" * 300, [img, img]) == 100 + 2 * 258


# -- cache ---------------------------------------------------------------------------------


def _result(status: str = "ok", score: float | None = 70.0) -> JudgeResult:
    return JudgeResult(
        score=score,
        decision="same" if score else "unknown",
        status=status,
        raw="{}",
        tokens_in=10,
        tokens_out=2,
        cost_usd=0.5,
        provider="openai",
        model="m",
        prompt_id="p",
        prompt_version="1",
        attempts=2,
        latency_s=1.5,
    )


def test_cache_roundtrip_wal_and_no_errors(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with ResponseCache(path) as cache:
        cache.put(
            "k1",
            _result(),
            system="s",
            endpoint_host="h",
            images=["a", "b"],
            order="ab",
            repeat=0,
            raw={"id": 1},
            derivations={"d1": ["a"], "d2": ["b"]},
        )
        cache.put(
            "k2",
            _result("refusal", None),
            system="s",
            endpoint_host="h",
            images=["a"],
            order="ab",
            repeat=0,
        )
        with pytest.raises(ValueError, match="never cached"):
            cache.put(
                "k3",
                _result("api_error", None),
                system="s",
                endpoint_host="h",
                images=[],
                order="ab",
                repeat=0,
            )
        got = cache.get_many(["k1", "k2", "k3"])
        assert set(got) == {"k1", "k2"}
        assert got["k1"].cached and got["k1"].attempts == 0
        assert (got["k1"].score, got["k1"].cost_usd, got["k1"].latency_s) == (70.0, 0.5, 1.5)
        assert cache.sent_shas(["d1", "d2", "dx"]) == {"d1": ["a"], "d2": ["b"]}
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    row = db.execute("SELECT status, raw, images, created FROM responses WHERE key='k1'").fetchone()
    assert row[0] == "ok" and json.loads(row[1]) == {"id": 1} and json.loads(row[2]) == ["a", "b"]
    assert row[3].endswith("Z")


def test_cache_file_that_is_not_a_cache(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"definitely not sqlite" * 100)
    with pytest.raises(UserError, match="not a usable response cache"):
        ResponseCache(path)


def test_many_keys_are_looked_up_in_chunks(tmp_path: Path) -> None:
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        for i in range(1200):
            cache.put(
                f"k{i}", _result(), system="s", endpoint_host="h", images=[], order="ab", repeat=0
            )
        assert len(cache.get_many(f"k{i}" for i in range(0, 2400, 2))) == 600
        assert cache.count() == 1200


# -- provider error helpers ---------------------------------------------------------------


def test_retry_after_header_forms() -> None:
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds(None) is None


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (429, RetryableError),
        (500, RetryableError),
        (503, RetryableError),
        (408, RetryableError),
        (400, PermanentError),
        (401, PermanentError),
        (404, PermanentError),
        (422, PermanentError),
    ],
)
def test_which_statuses_are_retried(status: int, kind: type) -> None:
    assert type(status_error(status, "x", {})) is kind


def test_closed_schema_for_strict_modes() -> None:
    schema = closed_schema(load_prompt("attributes-then-score").json_schema())
    assert schema["additionalProperties"] is False
    assert schema["properties"]["attributes"]["additionalProperties"] is False
    assert "minimum" not in json.dumps(schema)
    assert schema["required"] == ["attributes", "reasons", "score"]


# -- rate limits and budgets (virtual clock: no timing in tests) ---------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_token_bucket_paces_to_its_rate() -> None:
    clock = _Clock()

    async def go() -> None:
        bucket = TokenBucket(rate=5.0, capacity=5.0, clock=clock.monotonic, sleep=clock.sleep)
        for _ in range(25):
            await bucket.acquire(1.0)

    asyncio.run(go())
    # 5 from the initial burst, then 20 more at 5 per second.
    assert clock.now == pytest.approx(4.0)


def test_rate_limiter_pause_holds_new_calls() -> None:
    clock = _Clock()

    async def go() -> None:
        limiter = RateLimiter(rpm=None, tpm=600.0, clock=clock.monotonic, sleep=clock.sleep)
        limiter.pause(2.5)
        await limiter.acquire(100)
        assert clock.now == pytest.approx(2.5)
        await limiter.acquire(600)  # 500 left: waits 10 s for 100 more tokens at 10/s
        assert clock.now == pytest.approx(12.5)
        limiter.settle(600, 50)  # the call used only 50 tokens: 550 come back

    asyncio.run(go())


def test_budget_caps_calls_and_reserves_worst_case_cost() -> None:
    async def go() -> None:
        calls = Budget(max_calls=2, max_cost_usd=None)
        assert await calls.start(0) and await calls.start(0)
        assert not await calls.start(0) and calls.exhausted

        money = Budget(max_calls=None, max_cost_usd=1.0)
        assert await money.start(0.4) and await money.start(0.4)
        third = asyncio.create_task(money.start(0.4))  # would exceed if both cost 0.4: waits
        await asyncio.sleep(0)
        assert not third.done()
        await money.finish(0.4, 0.1)  # one call cost less than reserved
        assert await third
        await money.finish(0.4, 0.4)
        await money.finish(0.4, 0.3)
        assert money.spent == pytest.approx(0.8)
        assert not await money.start(0.4)  # 0.8 + 0.4 > 1.0 with nothing in flight

    asyncio.run(go())


def test_backoff_grows_and_honours_retry_after() -> None:
    r = resolve_system(lvlm(preset="openai:gpt-4o", retry_base_s=1.0, retry_max_s=8.0))
    runner = Runner.__new__(Runner)
    runner.system = r
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        for _ in range(20):
            assert ceiling / 2 <= runner._backoff(attempt, None) <= ceiling
    assert runner._backoff(1, 30.0) >= 30.0
