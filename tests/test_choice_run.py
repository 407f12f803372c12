"""The multiple-choice task end to end: config -> run -> metrics -> report, for a ReID system
and an LVLM on the loopback fake server (the real openai SDK talks to it); caching, resume
after SIGKILL, position bias and bad input."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from reidbench.config import load_config
from reidbench.datasets.synthetic import generate
from reidbench.judges.images import ImageSpec, prepare_many
from reidbench.tasks.choice_items import curate_choice_items
from tests.fake_llm_server import FakeLLMServer
from tests.sigkill import cached_answers, kill_when

KEY = "sk-choice-test-key-1a2b3c4d5e"
ITEMS = 12
N = 4


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic") / "data"
    generate(root, train_ids=2, test_ids=12, seed=3)
    return root


@pytest.fixture
def key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHOICE_TEST_KEY", KEY)


def lvlm_block(srv: FakeLLMServer, name: str = "fake-vlm", **extra: object) -> str:
    fields = {
        "name": name,
        "type": "lvlm",
        "provider": "openai",
        "model": "fake-model",
        "base_url": srv.openai_base,
        "api_key_env": "CHOICE_TEST_KEY",
        "concurrency": 2,
        "retry_base_s": 0.01,
        "retry_max_s": 0.05,
        "image_size": 48,
        "image_mode": "composite",
        "price_in_per_mtok": 1.0,
        "price_out_per_mtok": 1.0,
        **extra,
    }
    return "[[systems]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items())


def write_config(path: Path, data: Path, *systems: str, pairs: int = 4, items: int = ITEMS):
    path.write_text(
        f"""name = "choice-test"
bootstrap = 50

[dataset]
root = "{data}"

[pairs]
positives = {pairs}
negatives = {pairs}
seed = 1

[[systems]]
name = "handcrafted"
type = "reid"
model = "handcrafted"

[[tasks]]
kind = "pairs"

[[tasks]]
kind = "choice"
items = {items}
candidates = {N}
seed = 2

"""
        + "\n".join(systems)
    )
    return path


def composite_truth(cfg_path: Path, size: int = 48) -> tuple[dict[str, int], list[str]]:
    """The sent composite's sha256 per item -> true slot (what the fake server is told)."""
    cfg = load_config(cfg_path)
    task = cfg.tasks[1]
    ds = cfg.dataset.load()
    items = curate_choice_items(ds, items=task.items, candidates=task.candidates, seed=task.seed)
    spec = ImageSpec(mode="composite", size=size)
    truth, shas = {}, []
    for row in items.table.to_pylist():
        paths = [ds.root / p for p in [row["query_path"], *row["cand_paths"]]]
        (img,) = prepare_many(paths, spec, labels=("Q", *"ABCD"[:N]))
        truth[img.sha256] = row["true_slot"]
        shas.append(img.sha256)
    return truth, shas


def _choice_calls(srv: FakeLLMServer) -> int:
    return sum("candidates (A, B" in json.dumps(r.body) for r in srv.records)


@pytest.mark.slow
def test_choice_task_end_to_end_with_resume_and_cache(run_cli, data, tmp_path, key_env) -> None:
    with FakeLLMServer(require_key=KEY) as srv:
        cfg = write_config(tmp_path / "exp.toml", data, lvlm_block(srv))
        truth, shas = composite_truth(cfg)
        srv.choice_truth = truth  # this fake model always names the true candidate...
        srv.faults_by_image[shas[0]] = collections.deque(["refusal-text"])
        srv.faults_by_image[shas[1]] = collections.deque(["text:no idea"])
        out = tmp_path / "run"
        result = run_cli("run", cfg, "--out", out)
        assert result.code == 0, result.err
        assert _choice_calls(srv) == ITEMS
        first = srv.records[-1]
        assert first.structured and len(first.images) == 1  # one labelled composite

        # ...except the refusal (cached, an answer) and the unreadable reply (not cached).
        again = run_cli("run", cfg, "--out", out)
        assert again.code == 0, again.err
        assert _choice_calls(srv) == ITEMS + 1  # only the parse error is asked again
        calls = len(srv.records)
        third = run_cli("run", cfg, "--out", out)
        assert third.code == 0, third.err
        assert len(srv.records) == calls  # a complete run makes 0 calls

    folder = out / "tasks" / "choice"
    items = pq.read_table(folder / "items.parquet").to_pylist()
    assert len(items) == ITEMS
    lv = pq.read_table(folder / "systems" / "fake-vlm.parquet").to_pylist()
    assert [r["status"] for r in lv].count("refusal") == 1
    assert all(r["correct"] == (r["status"] == "ok") for r in lv)
    # Written by the second run (the third reused it): all but the re-asked item were cached.
    assert sum(r["cached"] for r in lv) == ITEMS - 1

    reid = pq.read_table(folder / "systems" / "handcrafted.parquet").to_pylist()
    true = {r["item_id"]: r["true_slot"] for r in items}
    for r in reid:  # argmax cosine (no exact ties here), right when it is the true slot
        assert r["answer"] == int(np.argmax(r["scores"]))
        assert r["correct"] == (r["answer"] == true[r["item_id"]])

    m = json.loads((out / "metrics.json").read_text())["tasks"]["choice"]
    assert m["systems"]["fake-vlm"]["accuracy"] == pytest.approx((ITEMS - 1) / ITEMS)
    assert m["systems"]["fake-vlm"]["statuses"] == {"ok": ITEMS - 1, "refusal": 1}
    reid_acc = np.mean([r["correct"] for r in reid])
    assert m["systems"]["handcrafted"]["accuracy"] == pytest.approx(reid_acc)
    (comp,) = m["comparisons"]
    assert comp["mcnemar_exact"]["n"] == ITEMS
    html = (out / "report.html").read_text()
    assert "Multiple choice" in html and "Accuracy by true slot" in html


@pytest.mark.slow
def test_position_biased_model_is_flagged(run_cli, data, tmp_path, key_env) -> None:
    with FakeLLMServer(require_key=KEY) as srv:
        srv.choice_bias = (0, 1.0)  # always names candidate A
        cfg = write_config(
            tmp_path / "exp.toml", data, lvlm_block(srv, image_mode="pair"), items=20
        )
        out = tmp_path / "run"
        result = run_cli("run", cfg, "--out", out)
        assert result.code == 0, result.err
        sent = [r for r in srv.records if "candidates (A, B" in json.dumps(r.body)]
        assert len(sent) == 20 and all(len(r.images) == 1 + N for r in sent)  # separate images
    m = json.loads((out / "metrics.json").read_text())["tasks"]["choice"]["systems"]["fake-vlm"]
    assert m["position_bias"]["answer_counts"] == [20, 0, 0, 0]
    assert m["position_bias"]["uniform_answers"]["p_value"] < 1e-6
    assert [s["accuracy"] for s in m["per_slot"]] == [1.0, 0.0, 0.0, 0.0]
    assert m["accuracy"] == pytest.approx(0.25)  # the balanced slots: chance, not better


@pytest.mark.slow
def test_bad_task_settings_are_one_line_errors(run_cli, data, tmp_path) -> None:
    cfg = write_config(tmp_path / "exp.toml", data, items=10_000)
    result = run_cli("run", cfg, "--out", tmp_path / "run")
    assert result.code == 2 and "fewer than items = 10000" in result.err
    assert "Traceback" not in result.err
    text = cfg.read_text().replace("seed = 2\n", 'seed = 2\nsystems = ["nope"]\n')
    cfg.write_text(text.replace("items = 10000", "items = 4"))
    result = run_cli("run", cfg, "--out", tmp_path / "run2")
    assert result.code == 2 and "systems ['nope'] are not in [[systems]]" in result.err
    assert not (tmp_path / "run2").exists()  # refused before anything was written
    # An LVLM would be asked with a prompt that does not name a candidate: refused up front.
    with FakeLLMServer() as srv:
        cfg = write_config(tmp_path / "p.toml", data, lvlm_block(srv), items=4)
    cfg.write_text(cfg.read_text().replace("seed = 2\n", 'seed = 2\nprompt = "similarity-0-100"\n'))
    result = run_cli("run", cfg, "--out", tmp_path / "run3")
    assert result.code == 2 and "does not ask for a candidate" in result.err
    assert not (tmp_path / "run3").exists() and not srv.records


@pytest.mark.slow
def test_sigkilled_choice_run_resumes_without_paying_twice(data, tmp_path) -> None:
    with FakeLLMServer(require_key=KEY, latency_s=0.15) as srv:
        block = lvlm_block(srv) + "\n[cache]\nclaim_lease_s = 1.0\n"
        cfg = write_config(tmp_path / "exp.toml", data, block, pairs=1, items=16)
        srv.choice_truth, _ = composite_truth(cfg)
        out = tmp_path / "run"
        env = {**os.environ, "CHOICE_TEST_KEY": KEY}
        cmd = [sys.executable, "-m", "reidbench", "run", str(cfg), "--out", str(out)]
        cache = out / "cache" / "responses.sqlite"
        # The pairs are done and some choice answers are in.
        kill_when(
            cmd, env, lambda: _choice_calls(srv) >= 5, what="asked choice items", timeout_s=180
        )
        asked_before = _choice_calls(srv)
        assert asked_before < 16
        assert not (out / "tasks" / "choice" / "systems" / "fake-vlm.parquet").exists()
        assert cached_answers(cache) > 0

        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        by_images = srv.calls_by_images()
    choice = {k: v for k, v in by_images.items() if k[0] in srv.choice_truth}
    assert len(choice) == 16  # every item answered
    assert sum(choice.values()) <= 16 + 2  # at most the calls in flight were repeated
    rows = pq.read_table(out / "tasks" / "choice" / "systems" / "fake-vlm.parquet").to_pylist()
    assert all(r["status"] == "ok" and r["correct"] for r in rows)


def test_miner_settings_are_checked_up_front(data, tmp_path) -> None:
    from reidbench.errors import UserError
    from reidbench.tasks.registry import check_tasks

    cfg = write_config(tmp_path / "exp.toml", data)
    base = cfg.read_text()
    for extra, message in (
        ('negatives = "hard"\n', "needs hard_negatives"),
        ('hard_negatives = "handcrafted"\n', 'but negatives = "random"'),
    ):
        cfg.write_text(base.replace("seed = 2\n", "seed = 2\n" + extra))
        with pytest.raises(UserError, match=message):
            check_tasks(load_config(cfg))
    cfg.write_text(
        base.replace("seed = 2\n", 'seed = 2\nnegatives = "hard"\nhard_negatives = "x"\n')
    )
    with pytest.raises(UserError, match="unknown miner hard_negatives = 'x'"):
        check_tasks(load_config(cfg))  # before the pairs stage, not after it was paid for
