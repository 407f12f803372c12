"""Model lifecycle and capabilities in the presets, the pre-flight that refuses retired models,
`reidbench presets`, and the model version each provider reports, recorded and shown."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from reidbench.config import LVLMSystemConfig, load_config
from reidbench.datasets.synthetic import generate
from reidbench.demo import AUTO_LVLM_PRESETS
from reidbench.judges import judge_pairs, resolve_system
from reidbench.judges.lifecycle import lifecycle_problems, lifecycle_warnings
from reidbench.judges.presets import (
    PRESETS,
    STATUSES,
    STUDY_PRESETS,
    preset_for,
    price_for,
    successor_chain,
)
from reidbench.judges.served import reported_version, served_meta, served_summary
from tests.fake_llm_server import FakeLLMServer
from tests.optional import SDKS

KEY = "sk-presets-test-0123456789"
CONFIGS = Path(__file__).resolve().parents[1] / "configs"
DATE = re.compile(r"^20\d\d-\d\d-\d\d$")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic") / "data"
    generate(root, train_ids=2, test_ids=10, seed=5)
    return root


@pytest.fixture
def server():
    with FakeLLMServer(require_key=KEY) as srv:
        # The pre-flight asks which models the endpoint serves: every preset's model here.
        srv.models = {"fake-model", "alias", *(name.split(":", 1)[1] for name in PRESETS)}
        yield srv


@pytest.fixture
def key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRESETS_TEST_KEY", KEY)


def lvlm_block(srv: FakeLLMServer, name: str, preset: str, **extra: object) -> str:
    family = preset.split(":", 1)[0]
    fields = {
        "name": name,
        "type": "lvlm",
        "preset": preset,
        "base_url": srv.openai_base if family in ("openai", "dashscope") else srv.url,
        "api_key_env": "PRESETS_TEST_KEY",
        "concurrency": 2,
        "retry_base_s": 0.01,
        "retry_max_s": 0.05,
        "image_size": 64,
        **extra,
    }
    return "[[systems]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items())


def write_config(path: Path, data: Path, *systems: str) -> Path:
    path.write_text(
        f'name = "presets-test"\nbootstrap = 20\n\n[dataset]\nroot = "{data}"\n\n'
        "[pairs]\npositives = 6\nnegatives = 6\nseed = 2\n\n"
        '[[systems]]\nname = "handcrafted"\ntype = "reid"\nmodel = "handcrafted"\n\n'
        + "\n".join(systems)
    )
    return path


# -- the preset table ----------------------------------------------------------------------


def test_every_preset_is_dated_sourced_and_leads_to_an_active_model() -> None:
    for name, p in PRESETS.items():
        life = p.lifecycle
        assert life.status in STATUSES, name
        assert life.source.startswith("https://"), name
        if life.status != "active":
            assert DATE.match(life.date or ""), name
            chain = successor_chain(name)
            assert chain and chain[-1].lifecycle.status == "active", name
            assert all(q.lifecycle.status == "retired" for q in chain[:-1]), name
        if p.price is not None:
            assert DATE.match(p.price.as_of) and p.price.source.startswith("https://"), name
            assert p.price.in_per_mtok > 0 and p.price.out_per_mtok > 0, name
            assert p.price.verified or p.price.note, f"{name}: an unverified price says why"
        assert life.verified or life.note, f"{name}: an unverified status says why"


def test_successor_is_followed_past_a_retired_successor() -> None:
    chain = [p.name for p in successor_chain("gemini:gemini-2.0-flash")]
    assert chain == ["gemini:gemini-2.5-flash", "gemini:gemini-3.5-flash-lite"]
    assert [p.name for p in successor_chain("openai:gpt-4o")] == ["openai:gpt-6-luna"]
    assert successor_chain("anthropic:claude-sonnet-5-5") == []


def test_study_models_keep_their_names_and_gemini_openai_shares_the_gemini_entry() -> None:
    status = {n: PRESETS[n].lifecycle.status for n in STUDY_PRESETS}
    assert status == {
        "openai:gpt-4o": "deprecated",
        "gemini:gemini-2.0-flash": "retired",
        "anthropic:claude-3-5-sonnet-latest": "retired",
        "dashscope:qwen-vl-max": "active",
    }
    assert preset_for("gemini-openai", "gemini-2.0-flash") is PRESETS["gemini:gemini-2.0-flash"]
    assert (
        price_for("gemini-openai", "gemini-2.0-flash") == PRESETS["gemini:gemini-2.0-flash"].price
    )
    assert price_for("vllm", "anything").in_per_mtok == 0.0  # local servers cost nothing


def test_demo_adds_only_active_priced_presets() -> None:
    for preset in AUTO_LVLM_PRESETS.values():
        p = PRESETS[preset]
        assert p.lifecycle.status == "active" and p.price is not None, preset


def test_capabilities_shape_what_is_sent() -> None:
    luna = resolve_system(LVLMSystemConfig(name="l", type="lvlm", preset="openai:gpt-6-luna"))
    assert luna.params()["temperature"] is None and luna.params()["seed"] is None
    assert luna.params()["extra"] == {"max_tokens_param": "max_completion_tokens"}
    sonnet = resolve_system(
        LVLMSystemConfig(name="s", type="lvlm", preset="anthropic:claude-sonnet-5-5")
    )
    assert sonnet.structured == "output_config" and sonnet.params()["temperature"] is None
    own = resolve_system(
        LVLMSystemConfig(
            name="o", type="lvlm", preset="openai:gpt-6-luna", extra={"max_tokens_param": "x"}
        )
    )
    assert own.params()["extra"] == {"max_tokens_param": "x"}  # the config's choice wins
    gpt4o = resolve_system(LVLMSystemConfig(name="g", type="lvlm", preset="openai:gpt-4o"))
    assert (gpt4o.params()["temperature"], gpt4o.params()["seed"]) == (0.0, 0)  # unchanged


def test_explicit_rejected_temperature_is_a_problem_default_is_not() -> None:
    explicit = LVLMSystemConfig(
        name="s", type="lvlm", preset="anthropic:claude-sonnet-5-5", temperature=0.0
    )
    default = LVLMSystemConfig(name="d", type="lvlm", preset="anthropic:claude-sonnet-5-5")
    (line,) = lifecycle_problems([explicit, default])
    assert line.startswith("system 's': anthropic:claude-sonnet-5-5 rejects a temperature")
    assert lifecycle_warnings([default]) == []


# -- the configs ---------------------------------------------------------------------------


def test_paper_config_problems_name_both_retired_models_and_their_successors() -> None:
    cfg = load_config(CONFIGS / "paper-market1501.toml")
    problems = lifecycle_problems(cfg.systems)
    assert len(problems) == 2
    claude, gemini = sorted(problems)
    assert "anthropic:claude-3-5-sonnet-latest was retired on 2025-10-22" in claude
    assert 'use preset = "anthropic:claude-sonnet-5-5"' in claude
    assert "gemini:gemini-2.0-flash was retired on 2026-06-01" in gemini
    assert 'use preset = "gemini:gemini-3.5-flash-lite"' in gemini
    assert "gemini:gemini-2.5-flash was itself retired on 2026-12-01" in gemini
    (warning,) = lifecycle_warnings(cfg.systems)
    assert "openai:gpt-4o is deprecated and shuts down on 2027-01-14" in warning


def test_study_today_config_validates_on_current_successors() -> None:
    cfg = load_config(CONFIGS / "study-today-market1501.toml")
    assert lifecycle_problems(cfg.systems) == [] and lifecycle_warnings(cfg.systems) == []
    presets = {s.preset for s in cfg.systems if isinstance(s, LVLMSystemConfig)}
    expected = {p.name for n in STUDY_PRESETS for p in successor_chain(n)[-1:]}
    expected |= {n for n in STUDY_PRESETS if PRESETS[n].lifecycle.status == "active"}
    assert presets == expected
    for s in cfg.systems:
        if isinstance(s, LVLMSystemConfig):
            assert PRESETS[s.preset].lifecycle.status == "active"
            resolve_system(s)


# -- the pre-flight, end to end ------------------------------------------------------------


def test_paper_config_is_refused_before_any_work(run_cli, tmp_path) -> None:
    out = tmp_path / "paper"
    result = run_cli("run", CONFIGS / "paper-market1501.toml", "--out", out)
    assert result.code == 2
    lines = [ln for ln in result.err.splitlines() if ln.strip()]
    assert "claude-3-5-sonnet-latest was retired on 2025-10-22" in result.err
    assert "gemini-2.0-flash was retired on 2026-06-01" in result.err
    assert "Traceback" not in result.err
    # The pre-flight lists every problem at once, one line each: the two retired models
    # (named once each, not also asked for keys), the deprecated one's warning, and the
    # keys of the systems that could run.
    assert all(ln.startswith(("pre-flight:", "error: pre-flight:")) for ln in lines), lines
    assert sum("retired" in ln for ln in lines) == 2
    assert not any("ANTHROPIC_API_KEY" in ln or "GEMINI_API_KEY" in ln for ln in lines)
    assert not out.exists()  # nothing made: no pairs, no embeddings


@pytest.mark.slow
def test_retired_preset_makes_no_request(run_cli, data, server, tmp_path, key_env) -> None:
    cfg = write_config(
        tmp_path / "retired.toml",
        data,
        lvlm_block(server, "fine", "openai:gpt-6-luna"),
        lvlm_block(server, "old-claude", "anthropic:claude-3-5-sonnet-latest"),
    )
    out = tmp_path / "run"
    result = run_cli("run", cfg, "--out", out)
    assert result.code == 2
    assert "system 'old-claude'" in result.err and "anthropic:claude-sonnet-5-5" in result.err
    assert server.records == []  # the active system was not asked either
    assert not (out / "pairs.parquet").exists()


# -- what answered -------------------------------------------------------------------------


def test_reported_version_reads_each_providers_field() -> None:
    assert reported_version({"model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_1"}) == (
        "gpt-4o-2024-08-06",
        "fp_1",
    )
    assert reported_version({"model": "claude-sonnet-5-5-20260929"}) == (
        "claude-sonnet-5-5-20260929",
        None,
    )
    assert reported_version({"model_version": "gemini-3.5-flash-001"})[0] == "gemini-3.5-flash-001"
    assert reported_version(None) == (None, None)


@pytest.mark.parametrize("provider", SDKS)
def test_each_answer_keeps_the_version_its_provider_reported(
    provider: str, server: FakeLLMServer, tmp_path: Path
) -> None:
    rng = np.random.default_rng(3)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (64, 32, 3), dtype=np.uint8)).save(
            tmp_path / f"i{i}.png"
        )
    pairs = pa.table(
        {"pair_id": [0, 1, 2], "path_a": ["i0.png"] * 3, "path_b": ["i1.png", "i2.png", "i3.png"]}
    )
    server.served_as.extend(["snapshot-a", "snapshot-b", "snapshot-b"])
    server.system_fingerprint = "fp_abc"
    cfg = LVLMSystemConfig(
        name="x",
        type="lvlm",
        provider=provider,
        model="alias",
        base_url=server.openai_base if provider == "openai" else server.url,
        api_key_env="K",
        concurrency=1,
        image_size=64,
        price_in_per_mtok=1.0,
        price_out_per_mtok=1.0,
    )
    table = judge_pairs(cfg, pairs, tmp_path, cache_path=tmp_path / "c.sqlite", environ={"K": KEY})
    summary = served_meta(table)["served"]
    assert summary["versions"] == {"snapshot-a": 1, "snapshot-b": 2} and summary["mixed"]
    fps = {"fp_abc": 3} if provider == "openai" else {}
    assert summary["fingerprints"] == fps and summary["unreported"] == 0
    # From the cache the versions come back with the answers: no call, same summary.
    again = judge_pairs(cfg, pairs, tmp_path, cache_path=tmp_path / "c.sqlite", environ={"K": KEY})
    assert len(server.records) == 3 and served_meta(again)["served"] == summary


def test_served_summary_counts_only_replies() -> None:
    class R:
        def __init__(self, status: str, model: str | None) -> None:
            self.status, self.served_model, self.served_fingerprint = status, model, None

    s = served_summary([R("ok", "v1"), R("refusal", "v1"), R("api_error", None), R("ok", None)])
    assert s == {"versions": {"v1": 2}, "fingerprints": {}, "unreported": 1, "mixed": False}


@pytest.mark.slow
def test_run_json_and_report_show_what_answered(run_cli, data, server, tmp_path, key_env) -> None:
    server.served_as.extend(["gpt-6-luna-2026-09-22"] * 3)  # then the alias: a moving alias
    server.system_fingerprint = "fp_test42"
    cfg = write_config(tmp_path / "v.toml", data, lvlm_block(server, "luna", "openai:gpt-6-luna"))
    out = tmp_path / "run"
    result = run_cli("run", cfg, "--out", out)
    assert result.code == 0, result.err
    body = server.records[0].body
    assert "max_completion_tokens" in body and "temperature" not in body and "seed" not in body
    n = len(server.records)
    entry = next(
        e for e in json.loads((out / "run.json").read_text())["systems"] if e["name"] == "luna"
    )
    assert entry["served"] == {
        "versions": {"gpt-6-luna": n - 3, "gpt-6-luna-2026-09-22": 3},
        "fingerprints": {"fp_test42": n},
        "unreported": 0,
        "mixed": True,
    }
    html = (out / "report.html").read_text()
    assert "MORE THAN ONE VERSION answered" in html and "gpt-6-luna-2026-09-22 (3 answers)" in html
    # A resumed run reuses the stored system and keeps the record.
    assert run_cli("run", cfg, "--out", out).code == 0 and len(server.records) == n
    entry = next(
        e for e in json.loads((out / "run.json").read_text())["systems"] if e["name"] == "luna"
    )
    assert entry["served"]["versions"]["gpt-6-luna-2026-09-22"] == 3


@pytest.mark.slow
def test_deprecated_preset_warns_and_runs(run_cli, data, server, tmp_path, key_env) -> None:
    cfg = write_config(tmp_path / "d.toml", data, lvlm_block(server, "gpt", "openai:gpt-4o"))
    result = run_cli("run", cfg, "--out", tmp_path / "run")
    assert result.code == 0, result.err
    assert "openai:gpt-4o is deprecated and shuts down on 2027-01-14" in result.err
    assert 'use preset = "openai:gpt-6-luna"' in result.err
    assert server.records


def test_model_not_found_is_a_permanent_error_naming_the_model(
    server: FakeLLMServer, tmp_path: Path
) -> None:
    Image.new("RGB", (32, 64)).save(tmp_path / "a.png")
    pairs = pa.table({"pair_id": [0], "path_a": ["a.png"], "path_b": ["a.png"]})
    server.faults.append("404-model")
    cfg = LVLMSystemConfig(
        name="x",
        type="lvlm",
        provider="openai",
        model="gone-model",
        base_url=server.openai_base,
        api_key_env="K",
        image_size=64,
    )
    (row,) = judge_pairs(
        cfg, pairs, tmp_path, cache_path=tmp_path / "c", environ={"K": KEY}
    ).to_pylist()
    assert row["status"] == "api_error" and row["attempts"] == 1
    assert "HTTP 404" in row["error"] and "gone-model" in row["error"]


# -- `reidbench presets` -------------------------------------------------------------------


def test_presets_command_lists_every_preset(run_cli) -> None:
    result = run_cli("presets", "--json")
    assert result.code == 0, result.err
    records = json.loads(result.out)
    assert [r["name"] for r in records] == list(PRESETS)
    claude = next(r for r in records if r["name"] == "anthropic:claude-3-5-sonnet-latest")
    assert (
        claude["lifecycle"]["status"] == "retired" and claude["lifecycle"]["date"] == "2025-10-22"
    )
    assert claude["active_successor"] == "anthropic:claude-sonnet-5-5"
    assert claude["price"]["as_of"] == "2025-01-30" and claude["price"]["source"].startswith(
        "https"
    )
    assert next(r for r in records if r["family"] == "vllm")["price"] == {"local": True}
    table = run_cli("presets")
    assert table.code == 0 and "retired" in table.out and "2025-10-22" in table.out
    assert "anthropic:claude-3-5-sonnet-latest status: https://platform.claude.com" in table.out


def test_demo_refuses_a_retired_lvlm_before_synthesising(run_cli, tmp_path) -> None:
    out = tmp_path / "demo"
    result = run_cli("demo", "--out", out, "--lvlm", "gemini:gemini-2.0-flash")
    assert result.code == 2 and "gemini:gemini-2.0-flash was retired on 2026-06-01" in result.err
    assert not out.exists()  # no pedestrians synthesised, nothing run
