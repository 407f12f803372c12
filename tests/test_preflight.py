"""The pre-flight: every problem found before any work or payment, one line each, exit 2;
and a system stopped mid-run by its breaker: exit 3, answers kept and reused."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from reidbench.config import LVLMSystemConfig, ReIDSystemConfig
from reidbench.datasets.synthetic import generate
from reidbench.preflight import CHECKS, Preflight, register_check, run_preflight
from tests.fake_llm_server import FakeLLMServer

KEY = "sk-preflight-test-key-0123456789"
ENV = "REIDBENCH_PREFLIGHT_KEY"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic") / "data"
    generate(root, train_ids=2, test_ids=6, seed=5)
    return root


@pytest.fixture
def server():
    with FakeLLMServer(require_key=KEY) as srv:
        yield srv


@pytest.fixture(autouse=True)
def key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, KEY)


def closed_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def lvlm(base_url: str, name: str = "judge", **extra: object) -> str:
    fields = {
        "name": name,
        "type": "lvlm",
        "provider": "openai",
        "model": "fake-model",
        "base_url": base_url,
        "api_key_env": ENV,
        "concurrency": 1,
        "retry_base_s": 0.01,
        "retry_max_s": 0.02,
        "image_size": 32,
        "price_in_per_mtok": 1.0,
        "price_out_per_mtok": 1.0,
        **extra,
    }
    return "[[systems]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items())


def config(path: Path, data: Path, *systems: str, name: str = "pf") -> Path:
    path.write_text(
        f'name = "{name}"\nbootstrap = 20\n\n[dataset]\nroot = "{data}"\n\n'
        "[pairs]\npositives = 5\nnegatives = 5\nseed = 1\n\n"
        '[[systems]]\nname = "handcrafted"\ntype = "reid"\nmodel = "handcrafted"\n\n'
        + "\n".join(systems)
    )
    return path


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


@pytest.mark.slow
def test_every_problem_is_listed_before_any_work(run_cli, data, server, tmp_path) -> None:
    dead = closed_url()
    cfg = config(
        tmp_path / "c.toml",
        data,
        lvlm(dead, "dead"),
        lvlm(server.openai_base, "nokey", api_key_env="REIDBENCH_UNSET_KEY_VAR"),
        lvlm(server.openai_base, "typo", model="fake-modle"),
        lvlm(server.openai_base, "badprompt", prompt="/no/such/prompt.toml"),
        '[[systems]]\nname = "vit"\ntype = "reid"\nmodel = "personvit-s"\n'
        'weights = "/no/such/weights.pth"\n',
    )
    out = tmp_path / "run"
    result = run_cli("run", cfg, "--out", out)
    assert result.code == 2, result.err
    lines = error_lines(result.err)
    assert len(lines) == 5, lines
    text = "\n".join(lines)
    assert f"'dead': cannot reach {dead}" in text
    assert "REIDBENCH_UNSET_KEY_VAR" in text
    assert "'typo': model 'fake-modle' is not served" in text and "fake-model" in text
    assert "/no/such/prompt.toml" in text
    assert "/no/such/weights.pth" in text
    assert "Traceback" not in result.err
    assert not out.exists()  # nothing made: no pairs, no empty folder
    assert server.records == []  # no paid call
    assert server.probes == ["/v1/models"]  # one listing for the live endpoint


@pytest.mark.slow
def test_rejected_key_is_refused_in_the_preflight(run_cli, data, server, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, "sk-wrong-key-000000")
    cfg = config(tmp_path / "c.toml", data, lvlm(server.openai_base))
    result = run_cli("run", cfg, "--out", tmp_path / "run")
    assert result.code == 2
    [line] = error_lines(result.err)
    assert "rejected the API key" in line and ENV in line and server.openai_base in line
    assert "sk-wrong" not in result.err
    assert server.records == []


@pytest.mark.slow
def test_preflight_requests_are_counted_and_said(run_cli, data, server, tmp_path) -> None:
    cfg = config(
        tmp_path / "c.toml",
        data,
        lvlm(server.openai_base, "a"),
        lvlm(server.openai_base, "b", prompt="same-or-different"),
    )
    result = run_cli("run", cfg, "--out", tmp_path / "run")
    assert result.code == 0, result.err
    assert server.probes == ["/v1/models"]  # one request for the shared endpoint
    assert "pre-flight: 1 endpoint request(s) made" in result.err


@pytest.mark.slow
def test_complete_systems_need_no_key_or_endpoint(run_cli, data, server, tmp_path, monkeypatch):
    cfg = config(tmp_path / "c.toml", data, lvlm(server.openai_base))
    out = tmp_path / "run"
    assert run_cli("run", cfg, "--out", out).code == 0
    monkeypatch.delenv(ENV)
    server.stop()  # the endpoint is gone too
    again = run_cli("run", cfg, "--out", out)
    assert again.code == 0, again.err


@pytest.mark.slow
def test_stopped_system_exits_3_keeps_answers_and_resumes(run_cli, data, server, tmp_path):
    server.faults.extend(["ok", "ok", "ok", "401-echo"])
    cfg = config(tmp_path / "c.toml", data, lvlm(server.openai_base))
    out = tmp_path / "run"
    result = run_cli("run", cfg, "--out", out)
    assert result.code == 3, result.err
    stops = [line for line in result.err.splitlines() if line.startswith("stopped:")]
    assert len(stops) == 1 and "HTTP 401" in stops[0] and server.openai_base in stops[0]
    assert "Traceback" not in result.err
    assert (out / "report.html").is_file() and (out / "metrics.json").is_file()
    assert len(server.records) == 4  # three answers, then the 401 stopped it
    rows = [r for r in pq.read_table(out / "scores.parquet").to_pylist() if r["system"] == "judge"]
    assert [r["status"] for r in rows].count("ok") == 3
    n = len(rows)

    again = run_cli("run", cfg, "--out", out)
    assert again.code == 0, again.err
    assert len(server.records) == 4 + n - 3  # the three paid answers came from the cache
    assert "(3 from the cache)" in again.err


def test_demo_checks_lvlms_before_making_data(run_cli, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    out = tmp_path / "demo"
    result = run_cli("demo", "--out", out, "--lvlm", "openai:gpt-4o")
    assert result.code == 2
    [line] = error_lines(result.err)
    assert "OPENAI_API_KEY" in line
    assert not (out / "data").exists()
    result = run_cli("demo", "--out", out, "--lvlm", "foo:bar")
    assert result.code == 2 and "unknown provider 'foo'" in result.err
    assert not out.exists()


def test_register_check_adds_a_line() -> None:
    def no_gpus(ctx: Preflight) -> list[str]:
        return [f"{len(ctx.systems)} systems and no GPU; run with device = 'cpu'"]

    register_check(no_gpus)
    try:
        ctx = Preflight([ReIDSystemConfig(name="h", type="reid", model="handcrafted")], {})
        with pytest.raises(Exception, match="1 systems and no GPU"):
            run_preflight(ctx)
    finally:
        CHECKS.remove(no_gpus)
    ok = Preflight([LVLMSystemConfig(name="x", type="lvlm", preset="vllm:m")], {}, endpoints=False)
    assert run_preflight(ok).requests == 0
