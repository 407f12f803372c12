"""Prompt sensitivity and verbalised vs probability scores (issue #13 items 2, 5), from
`reidbench run` on the fake server to metrics.json and report.html, plus the regrouping rules."""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from reidbench.datasets.synthetic import generate
from reidbench.metrics.run.prompts import prompt_blocks
from tests.fake_llm_server import FakeLLMServer, default_score
from tests.test_experiment_cli import lvlm_block, write_config

KEY = "sk-experiment-cli-key-9f8e7d6c5b4a"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic") / "data"
    generate(root, train_ids=2, test_ids=12, seed=3)
    return root


@pytest.fixture
def server():
    with FakeLLMServer(require_key=KEY) as srv:
        yield srv


@pytest.mark.slow
def test_run_reports_probability_scores_and_prompt_sensitivity(
    run_cli, data: Path, server: FakeLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REIDBENCH_TEST_KEY", KEY)
    # Sampling at temperature > 0: the verbalised answers drift from call to call.
    calls = itertools.count()
    lock = threading.Lock()

    def drifting(images: list[bytes]) -> int:
        with lock:
            k = next(calls)
        return (default_score(images) + 37 * k) % 101

    server.score_fn = drifting
    cfg = write_config(
        tmp_path / "exp.toml",
        data,
        lvlm_block(server, name="verbal"),
        lvlm_block(server, name="prob", prompt="yes-no-probability", max_tokens=3),
        lvlm_block(server, name="binary", prompt="same-or-different", repeats=3, temperature=0.7),
    )
    out = tmp_path / "run"
    result = run_cli("run", cfg, "--out", out)
    assert result.code == 0, result.err

    scores = pq.read_table(out / "scores.parquet").to_pylist()
    prob = [r for r in scores if r["system"] == "prob"]
    assert all(r["status"] == "ok" for r in prob)
    values = [r["score"] for r in prob]
    assert len(set(values)) == len(values)  # continuous: every pair its own score
    assert all(0.0 < v < 100.0 and v != round(v) for v in values)

    metrics = json.loads((out / "metrics.json").read_text())
    systems = metrics["systems"]
    assert systems["prob"]["info"]["prompt_answer"] == "probability"
    (vs,) = metrics["verbalised_vs_probability"][:1]
    assert vs["model"] == "openai:fake-model"
    pairs_vs = {(e["probability"], e["verbalised"]) for e in metrics["verbalised_vs_probability"]}
    assert pairs_vs == {("prob", "verbal"), ("prob", "binary")}
    entry = next(e for e in metrics["verbalised_vs_probability"] if e["verbalised"] == "verbal")
    test = entry["auc_diff"]
    # Same pairs, every one answered by both: the AUCs are the systems' own.
    assert test["auc_a"] == pytest.approx(systems["prob"]["auc"])
    assert test["auc_b"] == pytest.approx(systems["verbal"]["auc"])
    assert test["diff"] == pytest.approx(systems["prob"]["auc"] - systems["verbal"]["auc"])
    assert 0.0 < test["p_value"] <= 1.0 and test["ci"]["low"] <= test["diff"] <= test["ci"]["high"]
    assert entry["n_distinct_probability"] == len(values)
    assert entry["n_distinct_verbalised"] <= 101

    (model,) = metrics["prompt_sensitivity"]["models"]
    assert {m["name"] for m in model["systems"]} == {"verbal", "prob", "binary"}
    aucs = [systems[n]["auc"] for n in ("verbal", "prob", "binary")]
    assert model["auc"]["spread"] == pytest.approx(max(aucs) - min(aucs))
    assert len(model["comparisons"]) == 3
    binary = next(m for m in model["systems"] if m["name"] == "binary")
    rs = systems["binary"]["consistency"]["repeat_stability"]
    assert binary["flip_rate"] == pytest.approx(1.0 - rs["decision_agreement"])
    assert binary["flip_rate"] > 0 and binary["temperature"] == 0.7 and binary["repeats"] == 3
    assert (
        model["position_bias"] is None and "choice task" in model["null_reasons"]["position_bias"]
    )

    html = (out / "report.html").read_text()
    assert 'id="prompts"' in html and "Prompts and probability scores" in html
    assert "Verbalised vs probability scores, same pairs" in html
    assert "prob vs verbal" in html and "Flip rate" in html

    # Re-run: every answer comes from the cache, the blocks are unchanged.
    n = len(server.records)
    assert run_cli("run", cfg, "--out", out).code == 0
    assert len(server.records) == n
    again = json.loads((out / "metrics.json").read_text())
    assert again["verbalised_vs_probability"] == metrics["verbalised_vs_probability"]


@pytest.mark.slow
def test_probability_prompt_on_anthropic_is_refused_before_any_call(
    run_cli, data: Path, server: FakeLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REIDBENCH_TEST_KEY", KEY)
    block = lvlm_block(
        server,
        name="claude",
        provider="anthropic",
        base_url=server.url,
        prompt="yes-no-probability",
    )
    cfg = write_config(tmp_path / "exp.toml", data, block)
    result = run_cli("run", cfg, "--out", tmp_path / "run")
    assert result.code == 2
    assert "Traceback" not in result.err
    assert "log-probabilities" in result.err and "anthropic provider returns none" in result.err
    assert server.records == []
    assert not (tmp_path / "run" / "metrics.json").exists()


def _block(name: str, prompt: str, answer: str | None, auc: float, acc: float, **kw) -> dict:
    info = {
        "type": "lvlm",
        "provider": "openai",
        "model": kw.pop("model", "m"),
        "prompt_id": prompt,
        "prompt_version": "1",
        "params": {"temperature": kw.pop("temperature", None)},
        "repeats": kw.pop("repeats", 1),
    }
    if answer is not None:
        info["prompt_answer"] = answer
    return {"info": info, "auc": auc, "accuracy": acc, "coverage": 1.0, **kw}


def test_blocks_regroup_by_model_and_orient_the_tests() -> None:
    systems = {
        "v": _block("v", "similarity-0-100", "score", 0.6, 0.55),
        "p": _block("p", "yes-no-probability", None, 0.8, 0.7),  # an older run.json
        "other": _block("other", "similarity-0-100", "score", 0.9, 0.8, model="n"),
        "reid": {"info": {"type": "reid", "model": "osnet"}, "auc": 0.95},
    }
    # Stored as (v, p): the verbalised-vs-probability view flips it to p - v.
    comps = [
        {
            "a": "v",
            "b": "p",
            "auc_diff": {
                "auc_a": 0.6,
                "auc_b": 0.8,
                "diff": -0.2,
                "ci": {"low": -0.3, "high": -0.1},
            },
            "mcnemar": {"p_value": 0.04},
        }
    ]
    out = prompt_blocks(systems, comps, [])
    (model,) = out["prompt_sensitivity"]["models"]  # "n" has one system: no group
    assert model["model"] == "openai:m"
    assert model["auc"] == {"min": 0.6, "max": 0.8, "spread": pytest.approx(0.2)}
    (vs,) = out["verbalised_vs_probability"]
    assert (vs["auc_probability"], vs["auc_verbalised"]) == (0.8, 0.6)
    assert vs["auc_diff"]["diff"] == pytest.approx(0.2)
    assert vs["auc_diff"]["ci"] == {"low": pytest.approx(0.1), "high": pytest.approx(0.3)}
    (pair,) = model["comparisons"]
    assert (pair["a"], pair["b"]) == ("v", "p") and pair["auc_diff"]["diff"] == -0.2
    assert prompt_blocks({"v": systems["v"], "reid": systems["reid"]}, [], []) == {}


def test_choice_tasks_fill_each_models_position_bias_and_the_report_shows_it() -> None:
    from reidbench.metrics.run.prompts import POSITION_BIAS_NOTE, fill_position_bias
    from reidbench.report.sensitivity import sensitivity_sections

    bias = {
        "answer_counts": [30, 5, 5, 0],
        "uniform_answers": {"chi2": 45.0, "df": 3, "p_value": 1e-9, "n": 40},
    }
    sens = {
        "rule": "r",
        "models": [
            {
                "model": "openai:m",
                "systems": [{"name": "verbal"}, {"name": "prob"}],
                "n_prompts": 2,
                "position_bias": None,
                "null_reasons": {"position_bias": POSITION_BIAS_NOTE},
            }
        ],
    }
    tasks = {
        "choice": {"kind": "choice", "systems": {"verbal": {"position_bias": bias}}},
        "gallery": {"kind": "gallery", "systems": {"prob": {"position_bias": bias}}},
    }
    fill_position_bias(sens, tasks)
    [model] = sens["models"]
    assert model["position_bias"] == [{"system": "verbal", "task": "choice", **bias}]
    assert "position_bias" not in model["null_reasons"]
    [section] = sensitivity_sections({"prompt_sensitivity": sens}, {})
    facts = dict(section.blocks[0].facts)
    assert facts["Position bias: verbal (choice)"].startswith("slots named [30, 5, 5, 0]")
