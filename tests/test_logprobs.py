"""Probability scores (issue #13 item 1): the yes/no rule, the wire formats, caching, preflight."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from reidbench.config import LVLMSystemConfig
from reidbench.errors import UserError
from reidbench.judges import judge_pairs
from reidbench.judges.logprobs import probability_score, yes_no, yes_no_logprobs
from reidbench.judges.prompts import load_prompt
from reidbench.judges.settings import resolve_system, system_manifest
from tests.fake_llm_server import FakeLLMServer, default_yes_probability

KEY = "sk-test-0123456789abcdef"
ENV = {"FAKE_KEY": KEY}


# -- the rule --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "word"),
    [
        ("Yes", "yes"),
        (" yes", "yes"),
        ("YES", "yes"),
        ("yes.", "yes"),
        ("**Yes", "yes"),
        ("\u0120Yes", "yes"),  # byte-level BPE's space marker, as some servers return it
        ("\u2581no", "no"),  # SentencePiece's
        ("No", "no"),
        (" NO!", "no"),
        ("yesterday", None),
        ("not", None),
        ("nope", None),
        ("", None),
        ("The", None),
    ],
)
def test_yes_no_spellings(token: str, word: str | None) -> None:
    assert yes_no(token) == word


def _brute(alts: list[tuple[str, float]]) -> float | None:
    p_yes = sum(math.exp(lp) for t, lp in alts if t.strip(" .!*").lower() == "yes")
    p_no = sum(math.exp(lp) for t, lp in alts if t.strip(" .!*").lower() == "no")
    if p_yes + p_no == 0:
        return None
    return 100 * p_yes / (p_yes + p_no)


_TOKENS = st.sampled_from(
    ["Yes", " yes", "YES", "yes.", "No", " no", "NO", "no!", "The", "I", "Maybe", "nope", "yess"]
)


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_TOKENS, st.floats(-30.0, 0.0)), max_size=20))
def test_score_is_yes_over_yes_plus_no_by_brute_force(alts: list[tuple[str, float]]) -> None:
    got, want = probability_score(alts), _brute(alts)
    if want is None:
        assert got is None
    else:
        assert got is not None and got == pytest.approx(want, rel=1e-9, abs=1e-9)
        assert 0.0 <= got <= 100.0
        # Other tokens never move the score; order does not matter.
        assert probability_score([*alts, ("The", -0.01)]) == pytest.approx(got, abs=1e-9)
        assert probability_score(alts[::-1]) == pytest.approx(got, abs=1e-9)


def test_extremes_are_stable_and_one_sided_alternatives_saturate() -> None:
    assert probability_score([("Yes", 0.0), ("No", -800.0)]) == pytest.approx(100.0)
    assert probability_score([("Yes", -800.0), ("No", 0.0)]) == pytest.approx(0.0)
    assert probability_score([("Yes", -2.0)]) == 100.0  # "no" not among the top: P(no) = 0
    assert yes_no_logprobs([("Yes", math.log(0.3)), (" yes", math.log(0.2))])[0] == (
        pytest.approx(math.log(0.5))
    )


def test_probability_prompt_has_no_schema(tmp_path: Path) -> None:
    p = load_prompt("yes-no-probability")
    assert p.answer == "probability" and p.schema == {}
    assert "one word" in p.user_text("pair")
    bad = tmp_path / "bad.toml"
    text = (
        Path(__file__).parents[1] / "src/reidbench/judges/prompts/yes-no-probability.toml"
    ).read_text()
    bad.write_text(text + '\n[schema]\ntype = "object"\n')
    with pytest.raises(UserError, match="no \\[schema\\]"):
        load_prompt(str(bad))


# -- through the real SDKs and the fake server -------------------------------------------------


@pytest.fixture(scope="module")
def crops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("crops")
    rng = np.random.default_rng(3)
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (96, 48, 3), dtype=np.uint8)).save(
            root / f"img{i:02d}.png"
        )
    return root


def _pairs(n: int) -> pa.Table:
    return pa.table(
        {
            "pair_id": list(range(n)),
            "path_a": [f"img{i % 12:02d}.png" for i in range(n)],
            "path_b": [f"img{(i + 1 + i // 12) % 12:02d}.png" for i in range(n)],  # all distinct
        }
    )


@pytest.fixture
def server() -> FakeLLMServer:
    with FakeLLMServer(require_key=KEY) as srv:
        yield srv


def _system(srv: FakeLLMServer, provider: str, **kw: object) -> LVLMSystemConfig:
    base = {"openai": srv.openai_base, "anthropic": srv.url, "gemini": srv.url}[provider]
    return LVLMSystemConfig.model_validate(
        {
            "name": f"p-{provider}",
            "type": "lvlm",
            "provider": provider,
            "model": "fake-model",
            "base_url": base,
            "api_key_env": "FAKE_KEY",
            "prompt": "yes-no-probability",
            "concurrency": 2,
            "retry_base_s": 0.01,
            "retry_max_s": 0.05,
            "image_size": 48,
            "max_tokens": 5,
            **kw,
        }
    )


def _seen(srv: FakeLLMServer) -> dict[tuple[str, ...], float]:
    """Wrap the fake's P(yes) to record it by the sha256 of the images as received."""
    seen: dict[tuple[str, ...], float] = {}

    def yes(images: list[bytes]) -> float:
        p = default_yes_probability(images)
        seen[tuple(hashlib.sha256(b).hexdigest() for b in images)] = p
        return p

    srv.yes_fn = yes
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_scores_are_the_servers_probabilities(
    provider: str, server: FakeLLMServer, crops: Path, tmp_path: Path
) -> None:
    if provider == "gemini":
        pytest.importorskip("google.genai")
    seen = _seen(server)
    rows = judge_pairs(
        _system(server, provider), _pairs(24), crops, cache_path=tmp_path / "c.db", environ=ENV
    ).to_pylist()
    assert [r["status"] for r in rows] == ["ok"] * 24
    scores = sorted(r["score"] for r in rows)
    assert scores == pytest.approx(sorted(100 * p for p in seen.values()), abs=1e-9)
    assert len(set(scores)) == 24  # continuous, not a handful of round numbers
    for r in rows:
        assert r["decision"] == ("same" if r["score"] >= 50 else "different")
        assert r["raw"] in ("Yes", "No") and "P(yes)=" in r["reasons"]
    body = server.records[0].body
    if provider == "openai":
        assert body["logprobs"] is True and body["top_logprobs"] == 20
        assert "response_format" not in body  # one word, no structured output
    else:
        cfg = body["generationConfig"]
        assert cfg["responseLogprobs"] is True and cfg["logprobs"] == 20
        assert "responseSchema" not in cfg
    # A re-run is answered from the cache.
    n = len(server.records)
    again = judge_pairs(
        _system(server, provider), _pairs(24), crops, cache_path=tmp_path / "c.db", environ=ENV
    ).to_pylist()
    assert len(server.records) == n and all(r["cached"] for r in again)
    assert [r["score"] for r in again] == [r["score"] for r in rows]


def test_no_yes_no_is_a_parse_error_cached_for_this_prompt(
    server: FakeLLMServer, crops: Path, tmp_path: Path
) -> None:
    server.faults.extend(["no-yes-no", "no-yes-no"])
    cfg = _system(server, "openai", concurrency=1)
    rows = judge_pairs(cfg, _pairs(4), crops, cache_path=tmp_path / "c.db", environ=ENV)
    statuses = rows.column("status").to_pylist()
    assert statuses == ["parse_error", "parse_error", "ok", "ok"]
    assert "no yes/no token" in rows.column("error").to_pylist()[0]
    n = len(server.records)
    again = judge_pairs(cfg, _pairs(4), crops, cache_path=tmp_path / "c.db", environ=ENV)
    assert len(server.records) == n  # not asked again: the same distribution would come back
    assert again.column("status").to_pylist() == statuses
    assert all(again.column("cached").to_pylist())


def test_other_prompts_still_retry_parse_errors(
    server: FakeLLMServer, crops: Path, tmp_path: Path
) -> None:
    server.faults.append("garbage")
    cfg = _system(server, "openai", concurrency=1, prompt="similarity-0-100")
    first = judge_pairs(cfg, _pairs(2), crops, cache_path=tmp_path / "c.db", environ=ENV)
    assert first.column("status").to_pylist() == ["parse_error", "ok"]
    n = len(server.records)
    again = judge_pairs(cfg, _pairs(2), crops, cache_path=tmp_path / "c.db", environ=ENV)
    assert len(server.records) == n + 1 and again.column("status").to_pylist() == ["ok", "ok"]


def test_server_without_logprobs_is_a_parse_error_asked_again(
    server: FakeLLMServer, crops: Path, tmp_path: Path
) -> None:
    # Not asked for (top_logprobs = 0), so none come back, as from a server that ignores them.
    cfg = _system(server, "openai", concurrency=1, extra={"top_logprobs": 0})
    rows = judge_pairs(cfg, _pairs(1), crops, cache_path=tmp_path / "c.db", environ=ENV)
    assert rows.column("status").to_pylist() == ["parse_error"]
    assert "no log-probabilities" in rows.column("error").to_pylist()[0]
    assert "logprobs" not in server.records[0].body
    judge_pairs(cfg, _pairs(1), crops, cache_path=tmp_path / "c.db", environ=ENV)
    assert len(server.records) == 2  # not cached: a fixed server makes it answerable


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"provider": "anthropic"}, "the anthropic provider returns none"),
        ({"provider": None, "model": None, "preset": "openai:gpt-6-luna"}, "does not return"),
        ({"structured": "on"}, "one-word answer"),
    ],
)
def test_preflight_refuses_models_without_logprobs(
    fields: dict[str, object], match: str, server: FakeLLMServer, crops: Path, tmp_path: Path
) -> None:
    data = _system(server, "openai").model_dump(exclude_unset=True)
    data.update({k: v for k, v in fields.items() if v is not None})
    for k, v in fields.items():
        if v is None:
            data.pop(k, None)
    cfg = LVLMSystemConfig.model_validate(data)
    with pytest.raises(UserError, match=match):
        resolve_system(cfg)
    with pytest.raises(UserError, match=match):
        judge_pairs(cfg, _pairs(2), crops, cache_path=tmp_path / "c.db", environ=ENV)
    assert server.records == []


def test_manifest_names_the_answer_kind(server: FakeLLMServer) -> None:
    m = system_manifest(_system(server, "openai"))
    assert m["prompt_answer"] == "probability" and m["params"]["structured"] == "off"
