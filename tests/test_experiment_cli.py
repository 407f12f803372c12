"""`reidbench run` end to end, as a user runs it: synthetic data, an embedder and an LVLM judge
served by the loopback fake server (the real openai SDK talks to it), then resume, extend,
SIGKILL and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from reidbench.datasets.synthetic import generate
from tests.fake_llm_server import FakeLLMServer
from tests.sigkill import cached_answers, kill_when

KEY = "sk-experiment-cli-key-9f8e7d6c5b4a"
POSITIVES = NEGATIVES = 12


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic") / "data"
    generate(root, train_ids=2, test_ids=12, seed=3)
    return root


@pytest.fixture
def server():
    with FakeLLMServer(require_key=KEY) as srv:
        yield srv


def lvlm_block(srv: FakeLLMServer, name: str = "fake-gpt", **extra: object) -> str:
    fields = {
        "name": name,
        "type": "lvlm",
        "provider": "openai",
        "model": "fake-model",
        "base_url": srv.openai_base,
        "api_key_env": "REIDBENCH_TEST_KEY",
        "concurrency": 4,
        "retry_base_s": 0.01,
        "retry_max_s": 0.05,
        "image_size": 64,
        "price_in_per_mtok": 2.5,
        "price_out_per_mtok": 10.0,
        **extra,
    }
    return "[[systems]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items())


def write_config(path: Path, data: Path, *systems: str, positives: int = POSITIVES) -> Path:
    path.write_text(
        f"""name = "cli-test"
bootstrap = 50

[dataset]
root = "{data}"

[pairs]
positives = {positives}
negatives = {NEGATIVES}
seed = 1
triplets = 2

[[systems]]
name = "handcrafted"
type = "reid"
model = "handcrafted"

"""
        + "\n".join(systems)
    )
    return path


@pytest.fixture
def key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REIDBENCH_TEST_KEY", KEY)


@pytest.mark.slow
def test_run_resume_extend_and_report(run_cli, data, server, tmp_path, key_env) -> None:
    # A refusal, and an unparseable answer with HTML in it: counted, shown escaped. With one
    # request at a time they land on pair 0 (a, b) and pair 1 (a, b), the primary answers;
    # a second refusal lands on pair 1 (b, a), a symmetry-check call.
    script = "text:<script>alert(1)</script> they look alike"
    server.faults.extend(["refusal-text", "ok", script, "refusal-text"])
    cfg = write_config(
        tmp_path / "exp.toml", data, lvlm_block(server, both_orders=True, concurrency=1)
    )
    out = tmp_path / "run"

    result = run_cli("run", cfg, "--out", out)
    assert result.code == 0, result.err
    for name in ("run.json", "pairs.parquet", "scores.parquet", "metrics.json", "report.html"):
        assert (out / name).is_file(), name
    for name in ("run.json", "metrics.json"):  # typed records carry their schema version
        assert json.loads((out / name).read_text())["schema_version"] == 1, name
    n_pairs = pq.read_table(out / "pairs.parquet").num_rows
    assert n_pairs >= POSITIVES + NEGATIVES
    assert len(server.records) == 2 * n_pairs  # (a, b) and (b, a), once each
    assert "| handcrafted" in result.out and "| fake-gpt" in result.out  # summary table

    scores = pq.read_table(out / "scores.parquet").to_pylist()
    lvlm = [r for r in scores if r["system"] == "fake-gpt"]
    assert len(lvlm) == 2 * n_pairs
    assert sorted({r["order"] for r in lvlm}) == ["ab", "ba"]
    assert sum(r["status"] == "refusal" for r in lvlm) == 2
    assert sum(r["status"] == "parse_error" for r in lvlm) == 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["systems"]) >= {"handcrafted", "fake-gpt"}
    failures = metrics["systems"]["fake-gpt"]["failures"]
    assert (failures["refusal"], failures["parse_error"]) == (1, 1)  # primary answers
    assert failures["all_calls"]["refusal"] == 2  # the (b, a) refusal is not hidden
    html = (out / "report.html").read_text()
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert "SYNTHETIC" in html

    # Refusals are answers and are cached; errors never are: a re-run asks only the pair
    # whose answer could not be parsed, and now gets a score for it.
    calls = len(server.records)
    again = run_cli("run", cfg, "--out", out)
    assert again.code == 0, again.err
    assert len(server.records) == calls + 1
    statuses = [r["status"] for r in pq.read_table(out / "scores.parquet").to_pylist()]
    assert statuses.count("parse_error") == 0 and statuses.count("refusal") == 2


@pytest.mark.slow
def test_rerun_makes_zero_calls_and_adding_a_system_computes_only_it(
    run_cli, data, server, tmp_path, key_env
) -> None:
    cfg = write_config(tmp_path / "exp.toml", data, lvlm_block(server))
    out = tmp_path / "run"
    assert run_cli("run", cfg, "--out", out).code == 0
    n_pairs = pq.read_table(out / "pairs.parquet").num_rows
    assert len(server.records) == n_pairs
    first_scores = pq.read_table(out / "scores.parquet")

    assert run_cli("run", cfg, "--out", out).code == 0
    assert len(server.records) == n_pairs  # zero calls
    assert pq.read_table(out / "scores.parquet").equals(first_scores)

    extended = write_config(
        tmp_path / "exp2.toml",
        data,
        lvlm_block(server),
        lvlm_block(server, name="fake-binary", prompt="same-or-different"),
    )
    result = run_cli("run", extended, "--out", out)
    assert result.code == 0, result.err
    assert len(server.records) == 2 * n_pairs  # only the new system was asked
    systems = {r["system"] for r in pq.read_table(out / "scores.parquet").to_pylist()}
    assert systems == {"handcrafted", "fake-gpt", "fake-binary"}

    # No key anywhere in the run directory (cache, tables, manifest, report).
    for path in out.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


@pytest.mark.slow
def test_changed_pairs_or_missing_key_are_one_line_errors(
    run_cli, data, server, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("REIDBENCH_TEST_KEY", KEY)
    out = tmp_path / "run"
    assert run_cli("run", write_config(tmp_path / "a.toml", data), "--out", out).code == 0
    changed = write_config(tmp_path / "b.toml", data, positives=POSITIVES + 2)
    result = run_cli("run", changed, "--out", out)
    assert result.code == 2
    assert "pairs.parquet" in result.err and "new --out" in result.err
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and result.err.strip().endswith(errors[0])  # one line, last

    monkeypatch.delenv("REIDBENCH_TEST_KEY")
    cfg = write_config(tmp_path / "c.toml", data, lvlm_block(server))
    result = run_cli("run", cfg, "--out", tmp_path / "run2")
    assert result.code == 2
    assert "REIDBENCH_TEST_KEY" in result.err
    assert server.records == []  # nothing was asked

    result = run_cli("run", tmp_path / "missing.toml")
    assert result.code == 2 and "not found" in result.err
    bad_root = tmp_path / "d.toml"
    bad_root.write_text(
        write_config(tmp_path / "e.toml", data).read_text().replace(str(data), "/no/such/dir")
    )
    result = run_cli("run", bad_root, "--out", tmp_path / "run3")
    assert result.code == 2 and "/no/such/dir" in result.err
    assert "Traceback" not in result.err


@pytest.mark.slow
def test_sigkilled_run_resumes_without_paying_twice(data, tmp_path) -> None:
    with FakeLLMServer(require_key=KEY, latency_s=0.15) as srv:
        # Short leases: the resume waits for the killed run's in-flight claims to lapse.
        block = lvlm_block(srv, concurrency=2) + "\n[cache]\nclaim_lease_s = 1.0\n"
        cfg = write_config(tmp_path / "exp.toml", data, block)
        out = tmp_path / "run"
        env = {**os.environ, "REIDBENCH_TEST_KEY": KEY}
        cmd = [sys.executable, "-m", "reidbench", "run", str(cfg), "--out", str(out)]
        cache = out / "cache" / "responses.sqlite"
        kill_when(cmd, env, lambda: cached_answers(cache) >= 6, what="committed answers")
        committed = cached_answers(cache)
        n_pairs = pq.read_table(out / "pairs.parquet").num_rows
        assert 6 <= committed < n_pairs
        assert not (out / "scores.parquet").exists()  # no complete-looking partial output

        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        calls = srv.calls_by_images()
    assert len(calls) == n_pairs  # every pair answered
    assert sum(calls.values()) <= n_pairs + 2  # at most the calls in flight were repeated
    rows = pq.read_table(out / "scores.parquet").to_pylist()
    assert sum(r["system"] == "fake-gpt" and r["status"] == "ok" for r in rows) == n_pairs
