"""judge_pairs end to end: the official SDKs against the loopback fake server, fault by fault."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from reidbench.config import LVLMSystemConfig
from reidbench.errors import UserError
from reidbench.judges import judge_pairs, system_manifest
from reidbench.judges.images import ImageSpec, prepare
from reidbench.tables import SCORES_SCHEMA, write_table
from tests.fake_llm_server import FakeLLMServer, default_score
from tests.optional import SDKS, requires, sdk

KEY = "sk-test-0123456789abcdef"


@pytest.fixture(scope="module")
def crops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("crops")
    rng = np.random.default_rng(7)
    for i in range(12):
        arr = rng.integers(0, 255, (128, 64, 3), dtype=np.uint8)
        Image.fromarray(arr).save(root / f"img{i:02d}.png")
    return root


def make_pairs(n: int) -> pa.Table:
    return pa.table(
        {
            "pair_id": list(range(100, 100 + n)),
            "path_a": [f"img{i:02d}.png" for i in range(n)],
            "path_b": [f"img{(i + 6) % 12:02d}.png" for i in range(n)],
        }
    )


@pytest.fixture
def server() -> FakeLLMServer:
    with FakeLLMServer(require_key=KEY) as srv:
        yield srv


def system(srv: FakeLLMServer, provider: str = "openai", **kw: object) -> LVLMSystemConfig:
    base = {"openai": srv.openai_base, "anthropic": srv.url, "gemini": srv.url}[provider]
    fields = {
        "name": f"fake-{provider}",
        "type": "lvlm",
        "provider": provider,
        "model": "fake-model",
        "base_url": base,
        "api_key_env": "FAKE_KEY",
        "concurrency": 1,
        "retry_base_s": 0.01,
        "retry_max_s": 0.05,
        "timeout_s": 5.0,
        "max_retries": 3,
        "image_size": 64,
        "price_in_per_mtok": 1.0,
        "price_out_per_mtok": 2.0,
        **kw,
    }
    return LVLMSystemConfig.model_validate(fields)


def run(cfg: LVLMSystemConfig, pairs: pa.Table, root: Path, cache: Path) -> list[dict]:
    table = judge_pairs(cfg, pairs, root, cache_path=cache, environ={"FAKE_KEY": KEY})
    assert table.schema == SCORES_SCHEMA
    return table.to_pylist()


def expected_score(root: Path, a: str, b: str, spec: ImageSpec) -> int:
    return default_score([img.data for img in prepare(root / a, root / b, spec)])


def first_sha(root: Path, a: str, b: str, spec: ImageSpec) -> str:
    return prepare(root / a, root / b, spec)[0].sha256


COST = (1000 * 1.0 + 20 * 2.0) / 1e6  # the fake server's usage at the configured prices


# -- the happy path and the cache ----------------------------------------------------------


@pytest.mark.parametrize("provider", SDKS)
def test_each_sdk_scores_every_pair_then_reruns_from_cache(
    provider: str, server: FakeLLMServer, crops: Path, tmp_path: Path
) -> None:
    pairs = make_pairs(4)
    cfg = system(server, provider, concurrency=3)
    rows = run(cfg, pairs, crops, tmp_path / "c.sqlite")
    spec = ImageSpec(size=64)
    assert [r["pair_id"] for r in rows] == [100, 101, 102, 103]
    for r, a, b in zip(rows, pairs["path_a"].to_pylist(), pairs["path_b"].to_pylist(), strict=True):
        score = expected_score(crops, a, b, spec)
        assert (r["status"], r["score"], r["cached"], r["attempts"]) == ("ok", score, False, 1)
        assert r["decision"] == ("same" if score >= 50 else "different")
        assert (r["tokens_in"], r["tokens_out"]) == (1000, 20)
        assert r["cost_usd"] == pytest.approx(COST)
        assert r["system"] == f"fake-{provider}" and r["order"] == "ab" and r["repeat"] == 0
        assert r["latency_s"] > 0
    assert len(server.records) == 4
    assert all(rec.api == provider and rec.structured for rec in server.records)
    assert all(len(rec.images) == 2 for rec in server.records)

    again = run(cfg, pairs, crops, tmp_path / "c.sqlite")
    assert len(server.records) == 4  # a re-run of a finished run makes zero calls
    for first, second in zip(rows, again, strict=True):
        assert second["cached"] and second["attempts"] == 0
        for k in ("score", "decision", "status", "raw", "cost_usd", "latency_s", "tokens_in"):
            assert second[k] == first[k]


@pytest.mark.slow
@requires("google.genai")  # one of the SDKs it goes through is Gemini
def test_structured_requests_carry_each_providers_schema(
    server: FakeLLMServer, crops: Path, tmp_path: Path
) -> None:
    pairs = make_pairs(1)
    run(system(server, "openai"), pairs, crops, tmp_path / "o.sqlite")
    run(system(server, "anthropic"), pairs, crops, tmp_path / "a.sqlite")
    run(system(server, "gemini"), pairs, crops, tmp_path / "g.sqlite")
    run(system(server, "openai", structured="off"), pairs, crops, tmp_path / "off.sqlite")
    o, a, g, off = (rec.body for rec in server.records)
    fmt = o["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"]["additionalProperties"] is False
    assert (o["temperature"], o["seed"], o["max_tokens"]) == (0.0, 0, 512)
    assert o["messages"][1]["content"][0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert a["tool_choice"] == {"type": "tool", "name": "record_judgement"}
    assert a["tools"][0]["input_schema"]["properties"]["score"]["maximum"] == 100
    assert a["temperature"] == 0.0 and a["system"].startswith("You are assisting")
    gen = g["generationConfig"]
    assert gen["responseMimeType"] == "application/json" and "responseSchema" in gen
    assert "response_format" not in off


def test_order_repeats_and_duplicates(server: FakeLLMServer, crops: Path, tmp_path: Path) -> None:
    pairs = pa.table(
        {
            "pair_id": [1, 2],
            "path_a": ["img00.png", "img00.png"],
            "path_b": ["img01.png", "img01.png"],
        }
    )  # pair 2 repeats pair 1
    cfg = system(server, both_orders=True, repeats=2, concurrency=4)
    rows = run(cfg, pairs, crops, tmp_path / "c.sqlite")
    assert [(r["pair_id"], r["order"], r["repeat"]) for r in rows] == [
        (p, o, k) for p in (1, 2) for o in ("ab", "ba") for k in (0, 1)
    ]
    assert len(server.records) == 4  # ab/ba x 2 repeats; the duplicate pair asks nothing
    spec = ImageSpec(size=64)
    a_sha = first_sha(crops, "img00.png", "img01.png", spec)
    b_sha = first_sha(crops, "img01.png", "img00.png", spec)
    firsts = sorted(rec.images[0] for rec in server.records)
    assert firsts == sorted([a_sha, a_sha, b_sha, b_sha])  # "ba" sends b first
    assert [r["cached"] for r in rows[4:]] == [True] * 4
    assert rows[4]["score"] == rows[0]["score"]


def test_composite_mode_sends_one_image(server: FakeLLMServer, crops: Path, tmp_path: Path) -> None:
    rows = run(system(server, image_mode="composite"), make_pairs(2), crops, tmp_path / "c.sqlite")
    assert all(r["status"] == "ok" for r in rows)
    assert all(len(rec.images) == 1 for rec in server.records)
    spec = ImageSpec(mode="composite", size=64)
    assert rows[0]["score"] == expected_score(crops, "img00.png", "img06.png", spec)


def test_threshold_changes_decisions_of_cached_scores(
    server: FakeLLMServer, crops: Path, tmp_path: Path
) -> None:
    pairs = make_pairs(6)
    low = run(system(server, threshold=0.0), pairs, crops, tmp_path / "c.sqlite")
    high = run(system(server, threshold=101.0), pairs, crops, tmp_path / "c.sqlite")
    assert len(server.records) == 6
    assert {r["decision"] for r in low} == {"same"} and {r["decision"] for r in high} == {
        "different"
    }


def test_binary_prompt(server: FakeLLMServer, crops: Path, tmp_path: Path) -> None:
    rows = run(
        system(server, prompt="same-or-different"), make_pairs(3), crops, tmp_path / "c.sqlite"
    )
    for r in rows:
        answer = json.loads(r["raw"])
        assert r["decision"] == answer["decision"]
        expected = (
            answer["confidence"] if answer["decision"] == "same" else 100 - answer["confidence"]
        )
        assert r["score"] == expected


# -- faults --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "faults", "attempts"),
    [
        ("openai", ["429"], 2),
        ("openai", ["500", "500"], 3),
        ("openai", ["truncated"], 2),
        ("openai", ["html-body"], 2),
        ("openai", ["timeout"], 2),
        ("anthropic", ["429", "truncated"], 3),
        sdk("gemini", ["500", "truncated"], 3),
    ],
)
@pytest.mark.slow
def test_transient_faults_are_retried(
    provider: str,
    faults: list[str],
    attempts: int,
    server: FakeLLMServer,
    crops: Path,
    tmp_path: Path,
) -> None:
    server.faults.extend(faults)
    # Only the timeout fault needs a short client timeout; elsewhere a generous one keeps a
    # slow, loaded CI machine from turning a normal answer into an extra (timed-out) attempt.
    server.timeout_sleep_s = 5.0
    cfg = system(server, provider, timeout_s=1.5 if "timeout" in faults else 30.0)
    [row] = run(cfg, make_pairs(1), crops, tmp_path / "c.sqlite")
    assert (row["status"], row["attempts"], row["error"]) == ("ok", attempts, None)
    assert row["score"] == expected_score(crops, "img00.png", "img06.png", ImageSpec(size=64))
    assert [rec.fault for rec in server.records] == [*faults, "ok"]


@pytest.mark.slow
def test_retry_after_pauses_the_whole_run(
    server: FakeLLMServer, crops: Path, tmp_path: Path
) -> None:
    server.retry_after = "0.3"
    server.faults.append("429")
    rows = run(system(server, concurrency=4), make_pairs(4), crops, tmp_path / "c.sqlite")
    assert [r["status"] for r in rows] == ["ok"] * 4
    assert len(server.records) == 5


def test_retries_give_up_as_api_error_and_are_not_cached(
    server: FakeLLMServer, crops: Path, tmp_path: Path
) -> None:
    server.faults.extend(["500"] * 4)
    [row] = run(system(server, max_retries=3), make_pairs(1), crops, tmp_path / "c.sqlite")
    assert (row["status"], row["attempts"], row["score"]) == ("api_error", 4, None)
    assert "HTTP 500" in row["error"] and "gave up after 4 attempts" in row["error"]
    assert row["cost_usd"] is None
    [again] = run(system(server, max_retries=3), make_pairs(1), crops, tmp_path / "c.sqlite")
    assert (again["status"], again["cached"]) == ("ok", False)  # errors are asked again


def test_other_4xx_is_not_retried(server: FakeLLMServer, crops: Path, tmp_path: Path) -> None:
    server.faults.append("400")
    [row] = run(system(server), make_pairs(1), crops, tmp_path / "c.sqlite")
    assert (row["status"], row["attempts"]) == ("api_error", 1)
    assert "HTTP 400" in row["error"]
    assert len(server.records) == 1


@pytest.mark.parametrize(
    ("provider", "fault", "status"),
    [
        ("openai", "refusal", "refusal"),  # message.refusal
        ("openai", "refusal-text", "refusal"),  # refusal phrasing
        ("openai", "safety", "safety_block"),  # DashScope DataInspectionFailed
        ("openai", "safety-finish", "safety_block"),  # finish_reason content_filter
        ("anthropic", "refusal", "refusal"),  # stop_reason refusal
        sdk("gemini", "safety", "safety_block"),  # prompt_feedback.block_reason
        sdk("gemini", "safety-finish", "safety_block"),  # finish_reason SAFETY
        sdk("gemini", "refusal-text", "refusal"),
        ("openai", "garbage", "parse_error"),
    ],
)
def test_refusals_and_blocks_are_answers_without_scores(
    provider: str, fault: str, status: str, server: FakeLLMServer, crops: Path, tmp_path: Path
) -> None:
    server.faults.append(fault)
    cfg = system(server, provider)
    [row] = run(cfg, make_pairs(1), crops, tmp_path / "c.sqlite")
    assert (row["status"], row["score"], row["decision"], row["attempts"]) == (
        status,
        None,
        "unknown",
        1,
    )
    assert row["error"]
    [again] = run(cfg, make_pairs(1), crops, tmp_path / "c.sqlite")
    if status == "parse_error":  # only answers are cached: a parse error is asked again
        assert (again["cached"], again["status"], len(server.records)) == (False, "ok", 2)
    else:  # refusals and safety blocks are cached, never retried
        assert (again["cached"], again["status"], len(server.records)) == (True, status, 1)


def test_html_and_prose_in_model_text(server: FakeLLMServer, crops: Path, tmp_path: Path) -> None:
    server.faults.extend(["html-text", "prose"])
    rows = run(system(server), make_pairs(2), crops, tmp_path / "c.sqlite")
    spec = ImageSpec(size=64)
    html, prose = rows
    assert html["status"] == "ok" and "<script>" in html["raw"]  # stored as-is, untrusted
    assert html["reasons"].startswith("<img src=x")
    assert html["score"] == expected_score(crops, "img00.png", "img06.png", spec)
    assert prose["status"] == "ok"
    assert prose["score"] == expected_score(crops, "img01.png", "img07.png", spec)


# -- budgets ---------------------------------------------------------------------------------


def test_max_calls_leaves_the_rest_budget_exceeded(
    server: FakeLLMServer, crops: Path, tmp_path: Path
) -> None:
    rows = run(system(server, max_calls=3), make_pairs(6), crops, tmp_path / "c.sqlite")
    assert [r["status"] for r in rows] == ["ok"] * 3 + ["budget_exceeded"] * 3
    assert all("max_calls=3" in r["error"] for r in rows[3:])
    assert len(server.records) == 3
    rest = run(system(server), make_pairs(6), crops, tmp_path / "c.sqlite")  # cap lifted: resume
    assert [r["cached"] for r in rest] == [True] * 3 + [False] * 3
    assert len(server.records) == 6


@pytest.mark.slow
def test_caps_cover_the_whole_run_resumes_included(
    server: FakeLLMServer, crops: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "c.sqlite"
    run(system(server, max_calls=3), make_pairs(6), crops, cache)
    assert len(server.records) == 3
    # The same capped run again (e.g. after a crash): its 3 answers already used the cap.
    again = run(system(server, max_calls=3), make_pairs(6), crops, cache)
    assert [r["status"] for r in again] == ["ok"] * 3 + ["budget_exceeded"] * 3
    assert "3 answers" in again[3]["error"] and "earlier runs" in again[3]["error"]
    assert len(server.records) == 3
    # Money too: answers already paid for count against max_cost_usd.
    paid = 3 * COST
    capped = run(system(server, max_cost_usd=paid + 1e-9), make_pairs(6), crops, cache)
    assert [r["status"] for r in capped].count("ok") == 3
    assert len(server.records) == 3
    # A larger cap continues from there.
    more = run(system(server, max_calls=5), make_pairs(6), crops, cache)
    assert [r["status"] for r in more] == ["ok"] * 5 + ["budget_exceeded"]
    assert len(server.records) == 5


def test_max_cost_is_never_exceeded(server: FakeLLMServer, crops: Path, tmp_path: Path) -> None:
    cap = 0.0035  # worst case per call: (1000 in + 512 max out) -> ~$0.00202; real: $0.00104
    rows = run(
        system(server, max_cost_usd=cap, concurrency=3), make_pairs(8), crops, tmp_path / "c.sqlite"
    )
    ok = [r for r in rows if r["status"] == "ok"]
    assert sum(r["cost_usd"] for r in ok) <= cap
    assert len(ok) == 2 and len(server.records) == 2
    statuses = [r["status"] for r in rows]
    assert statuses.count("budget_exceeded") == 6  # which two got through depends on timing
    assert all("max_cost_usd" in r["error"] for r in rows if r["status"] != "ok")


def test_retries_count_against_max_calls(
    server: FakeLLMServer, crops: Path, tmp_path: Path
) -> None:
    server.faults.extend(["500", "500"])
    [row] = run(system(server, max_calls=2), make_pairs(1), crops, tmp_path / "c.sqlite")
    assert (row["status"], row["attempts"]) == ("budget_exceeded", 2)


# -- keys and secrets ------------------------------------------------------------------------


def test_missing_key_stops_before_any_call(
    server: FakeLLMServer, crops: Path, tmp_path: Path
) -> None:
    cfg = system(server)
    with pytest.raises(UserError, match="FAKE_KEY"):
        judge_pairs(cfg, make_pairs(2), crops, cache_path=tmp_path / "c.sqlite", environ={})
    assert server.records == []


def test_cached_run_needs_no_key(server: FakeLLMServer, crops: Path, tmp_path: Path) -> None:
    run(system(server), make_pairs(2), crops, tmp_path / "c.sqlite")
    table = judge_pairs(
        system(server), make_pairs(2), crops, cache_path=tmp_path / "c.sqlite", environ={}
    )
    assert table.column("cached").to_pylist() == [True, True]


def test_wrong_key_is_a_permanent_error(server: FakeLLMServer, crops: Path, tmp_path: Path) -> None:
    table = judge_pairs(
        system(server),
        make_pairs(1),
        crops,
        cache_path=tmp_path / "c.sqlite",
        environ={"FAKE_KEY": "sk-wrong"},
    )
    row = table.to_pylist()[0]
    assert (row["status"], row["attempts"]) == ("api_error", 1)
    assert "HTTP 401" in row["error"]


@pytest.mark.slow
@requires("google.genai")  # one of the SDKs it goes through is Gemini
def test_no_key_reaches_disk_logs_or_output(
    server: FakeLLMServer,
    crops: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    spec = ImageSpec(size=64)
    echo_pair = first_sha(crops, "img01.png", "img07.png", spec)
    from collections import deque

    server.faults_by_image[echo_pair] = deque(["401-echo"])  # the server echoes the key back
    server.faults.extend(["refusal"])
    cache = tmp_path / "run" / "responses.sqlite"
    tables = {}
    for provider in ("openai", "anthropic", "gemini"):
        cfg = system(server, provider, name=f"s-{provider}")
        tables[provider] = judge_pairs(
            cfg, make_pairs(4), crops, cache_path=cache, environ={"FAKE_KEY": KEY}
        )
        write_table(
            tmp_path / "run" / f"scores-{provider}.parquet",
            tables[provider],
            meta={"system": system_manifest(cfg)},
        )
        write_table(tmp_path / "run" / f"scores-{provider}.csv", tables[provider])
    echoed = tables["openai"].to_pylist()[1]
    assert echoed["status"] == "api_error" and "[redacted]" in echoed["error"]
    assert tables["openai"].to_pylist()[0]["status"] == "refusal"
    assert tables["gemini"].column("status").to_pylist() == ["ok"] * 4
    assert cache.is_file()
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    for path in files:
        assert KEY.encode() not in path.read_bytes(), path
    out = capsys.readouterr()
    assert KEY not in out.out + out.err
    assert KEY not in caplog.text
    assert any(rec.fault == "401-echo" for rec in server.records)


# -- progress and edge cases -----------------------------------------------------------------


class RecordingProgress:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def start(self, description: str, total: int | None) -> None:
        self.events.append(("start", description, total))

    def advance(self, n: int = 1, **fields: object) -> None:
        self.events.append(("advance", n, fields))

    def finish(self) -> None:
        self.events.append(("finish",))


def test_progress_reports_done_calls_and_cost(
    server: FakeLLMServer, crops: Path, tmp_path: Path
) -> None:
    progress = RecordingProgress()
    cfg = system(server)
    judge_pairs(
        cfg,
        make_pairs(3),
        crops,
        cache_path=tmp_path / "c.sqlite",
        progress=progress,
        environ={"FAKE_KEY": KEY},
    )
    assert progress.events[0] == ("start", "judge fake-openai", 3)
    assert progress.events[-1] == ("finish",)
    steps = [e for e in progress.events if e[0] == "advance"]
    assert sum(e[1] for e in steps) == 3
    assert steps[-1][2] == {"calls": 3, "cost": f"${3 * COST:.4f}"}
    again = RecordingProgress()  # a cached re-run completes the bar in one step, at no cost
    judge_pairs(
        cfg, make_pairs(3), crops, cache_path=tmp_path / "c.sqlite", progress=again, environ={}
    )
    assert [e for e in again.events if e[0] == "advance"] == [
        ("advance", 3, {"calls": 0, "cost": "$0.0000"})
    ]


def test_empty_and_malformed_pairs_tables(
    server: FakeLLMServer, crops: Path, tmp_path: Path
) -> None:
    empty = make_pairs(0)
    assert run(system(server), empty, crops, tmp_path / "c.sqlite") == []
    with pytest.raises(UserError, match="lacks columns"):
        run(system(server), pa.table({"pair_id": [1]}), crops, tmp_path / "c.sqlite")
    missing = pa.table({"pair_id": [1], "path_a": ["img00.png"], "path_b": ["nope.png"]})
    with pytest.raises(UserError, match=r"nope\.png: image not found"):
        run(system(server), missing, crops, tmp_path / "c.sqlite")
    assert server.records == []
