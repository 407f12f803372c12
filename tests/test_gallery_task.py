"""Gallery-ranking task (issue #13 item 4): curation, metrics against brute force, runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reidbench.config import ExperimentConfig
from reidbench.datasets import load_dataset
from reidbench.errors import UserError
from reidbench.metrics import stats
from reidbench.metrics.run.bootstrap import Bootstrap
from reidbench.tasks.config import GalleryTask
from reidbench.tasks.gallery import curate_gallery, item_scores, run_gallery
from reidbench.tasks.gallery_metrics import (
    distance_rows,
    gallery_metrics,
    paired,
    per_query,
    system_intervals,
)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from reidbench.datasets.synthetic import generate

    root = tmp_path_factory.mktemp("synthetic")
    generate(root, train_ids=2, test_ids=8, seed=5)
    return root


def _config(root: Path, systems: list[dict], tasks: list[dict], **extra) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "name": "gallery-test",
            "dataset": {"root": str(root)},
            "pairs": {"positives": 6, "negatives": 6},
            "systems": systems,
            "tasks": tasks,
            "bootstrap": 100,
            **extra,
        }
    )


HAND = {"name": "hand", "type": "reid", "model": "handcrafted"}


# -- curation ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_curation_follows_the_torchreid_protocol_and_is_seeded(data_root: Path) -> None:
    ds = load_dataset(data_root)
    task = GalleryTask(kind="gallery", queries=6, gallery_size=10, seed=3)
    items = curate_gallery(ds, task)
    t = items.table.to_pydict()
    assert len(t["pair_id"]) == 60 and t["pair_id"] == list(range(60))
    query_paths = {r.path for r in ds.query}
    gallery_paths = {r.path for r in ds.gallery}
    seen_queries = set()
    for q in range(6):
        rows = [i for i in range(60) if t["query"][i] == q]
        assert len(rows) == 10 and [t["slot"][i] for i in rows] == list(range(10))
        qpath = {t["path_a"][i] for i in rows}
        assert len(qpath) == 1 and qpath <= query_paths
        seen_queries |= qpath
        assert len({t["path_b"][i] for i in rows}) == 10  # no image twice
        assert {t["path_b"][i] for i in rows} <= gallery_paths
        labels = [t["label"][i] for i in rows]
        assert 1 <= sum(labels) <= 5  # true matches, capped at G // 2, and negatives
        for i in rows:
            same = t["pid_a"][i] == t["pid_b"][i]
            assert t["label"][i] == int(same)
            assert not (same and t["cam_a"][i] == t["cam_b"][i])  # same-id same-cam excluded
    assert len(seen_queries) == 6
    again = curate_gallery(ds, task)
    assert again.content_hash == items.content_hash
    other = curate_gallery(ds, task.model_copy(update={"seed": 4}))
    assert other.content_hash != items.content_hash


@pytest.mark.slow
def test_more_queries_keep_each_query_s_gallery(data_root: Path) -> None:
    ds = load_dataset(data_root)
    small = curate_gallery(ds, GalleryTask(kind="gallery", queries=4, gallery_size=8)).table
    big = curate_gallery(ds, GalleryTask(kind="gallery", queries=12, gallery_size=8)).table

    def galleries(t):
        d = t.to_pydict()
        out: dict[str, list[str]] = {}
        for a, b in zip(d["path_a"], d["path_b"], strict=True):
            out.setdefault(a, []).append(b)
        return out

    gs, gb = galleries(small), galleries(big)
    common = set(gs) & set(gb)
    assert common
    assert all(gs[q] == gb[q] for q in common)


def test_too_many_queries_is_one_clear_user_error(data_root: Path) -> None:
    ds = load_dataset(data_root)
    with pytest.raises(UserError, match="lower queries or gallery_size"):
        curate_gallery(ds, GalleryTask(kind="gallery", queries=10_000, gallery_size=8))


# -- metrics against brute force ----------------------------------------------------------------


def brute(dist_row: np.ndarray, labels: np.ndarray) -> tuple[float, float, int]:
    """torchreid's per-query AP, INP and first-match rank, by a stable sort of one row."""
    order = np.argsort(dist_row, kind="stable")
    m = labels[order]
    hits = np.flatnonzero(m)
    first = int(hits[0])
    precision = np.cumsum(m)[hits] / (hits + 1)
    return float(precision.mean()), float(m.sum() / (hits[-1] + 1)), first


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 9), st.integers(1, 5))
def test_per_query_metrics_match_brute_force(seed: int, g: int, q: int) -> None:
    rng = np.random.default_rng(seed)
    label = (rng.random((q, g)) < 0.3).astype(np.int64)
    label[np.arange(q), rng.integers(0, g, q)] = 1  # at least one true match per query
    score = rng.integers(0, 5, (q, g)).astype(float)  # many ties, as verbalised scores have
    answered = rng.random((q, g)) < 0.8
    q_pids = np.arange(q) + 1
    g_pids = np.where(label == 1, q_pids[:, None], 1000 + rng.integers(0, 50, (q, g)))
    q_cams = np.zeros(q, np.int64)
    g_cams = np.ones((q, g), np.int64)
    d = distance_rows(score, answered, label)
    got = per_query(d, q_pids, g_pids, q_cams, g_cams)
    for i in range(q):
        # the reference: unanswered last, unanswered true matches after unanswered others
        key = np.where(answered[i], -score[i], np.where(label[i] == 1, 2e308, 1e308))
        ap, inp, first = brute(key, label[i])
        assert got["ap"][i] == pytest.approx(ap)
        assert got["inp"][i] == pytest.approx(inp)
        assert got["first"][i] == first


def test_a_failure_is_never_rewarded() -> None:
    label = np.array([[1, 0, 0, 0]])
    pids, cams = np.array([1]), np.array([0])
    g_pids, g_cams = np.array([[1, 2, 3, 4]]), np.ones((1, 4), np.int64)
    score = np.array([[0.0, 0.5, 0.6, 0.7]])  # the true match scored lowest: rank 4
    answered = np.array([[True, True, True, True]])
    worst_answered = per_query(distance_rows(score, answered, label), pids, g_pids, cams, g_cams)
    failed = answered.copy()
    failed[0, 0] = False
    failed[0, 1] = False  # a failed negative too: the failed match still goes below it
    f = per_query(distance_rows(score, failed, label), pids, g_pids, cams, g_cams)
    assert f["first"][0] == 3 and f["ap"][0] <= worst_answered["ap"][0]
    all_failed = per_query(distance_rows(score, ~answered, label), pids, g_pids, cams, g_cams)
    assert all_failed["first"][0] == 3  # every pair unanswered: the match is last


def test_item_scores_average_ok_rows_and_mark_the_rest_unanswered() -> None:
    import pyarrow as pa

    items = pa.table({"pair_id": [0, 1, 2]})
    scores = pa.table(
        {
            "pair_id": [0, 0, 1, 2],
            "score": [10.0, 30.0, None, 50.0],
            "status": ["ok", "ok", "refusal", "api_error"],
        }
    )
    s, answered = item_scores(items, scores)
    assert answered.tolist() == [True, False, False]
    assert s[0] == 20.0 and np.isnan(s[1]) and np.isnan(s[2])


def test_identity_bootstrap_matches_a_direct_resample() -> None:
    rng = np.random.default_rng(1)
    codes = np.array([0, 0, 1, 2, 2, 2, 3])
    values = {"mAP": rng.random(7), "rank1": (rng.random(7) < 0.5).astype(float)}
    boot = Bootstrap(n_boot=300, seed=9)
    got = system_intervals(values, codes, boot)
    idx = np.concatenate(list(stats.iter_bootstrap_indices(4, 300, 9)))
    ref = []
    for draw in idx:  # queries of each drawn identity, with multiplicity
        w = np.bincount(draw, minlength=4)[codes]
        ref.append((w * values["mAP"]).sum() / w.sum())
    expect = stats.percentile_ci(np.array(ref))
    assert got["mAP"]["low"] == pytest.approx(expect["low"])
    assert got["mAP"]["high"] == pytest.approx(expect["high"])
    assert got["mAP"]["low"] <= values["mAP"].mean() <= got["mAP"]["high"]
    same = paired(values, values, codes, boot)
    assert same["mAP"]["diff"] == 0.0 and same["mAP"]["p_value"] == 1.0
    better = {k: np.clip(v + 0.5, 0, 1.5) for k, v in values.items()}
    diff = paired(better, values, codes, boot)
    assert diff["mAP"]["diff"] == pytest.approx(0.5) and diff["mAP"]["p_value"] < 0.01


# -- runs ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_reid_run_end_to_end_resumes_and_reports(data_root: Path, tmp_path: Path) -> None:
    from reidbench.experiment import run_experiment

    task = {"kind": "gallery", "queries": 6, "gallery_size": 10}
    cfg = _config(data_root, [HAND], [{"kind": "pairs"}, task])
    out = tmp_path / "run"
    run_experiment(cfg, out, preflight=False)
    folder = out / "tasks" / "gallery"
    assert (folder / "items.parquet").is_file() and (folder / "manifest.json").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    block = metrics["tasks"]["gallery"]
    hand = block["systems"]["hand"]
    assert block["n_queries"] == 6 and block["gallery_size"] == 10
    assert hand["coverage"] == 1.0 and len(hand["cmc"]) == 10
    assert hand["ci"]["mAP"]["low"] <= hand["mAP"] <= hand["ci"]["mAP"]["high"]
    # the numbers are the brute-force ones from the stored cosine scores
    from reidbench.tables import read_table

    items = read_table(folder / "items.parquet").to_pydict()
    s = read_table(folder / "systems" / "hand.parquet").column("score").to_numpy()
    label = np.array(items["label"]).reshape(6, 10)
    aps = [brute(-s.reshape(6, 10)[i], label[i])[0] for i in range(6)]
    assert hand["mAP"] == pytest.approx(np.mean(aps))
    html = (out / "report.html").read_text()
    assert "Gallery ranking" in html and "CMC curves of the gallery task" in html

    logs: list[str] = []
    run_experiment(cfg, out, preflight=False, log=logs.append)
    assert any("reusing" in line and "items.parquet" in line for line in logs)
    assert any("gallery hand: already complete" in line for line in logs)
    changed = _config(data_root, [HAND], [{"kind": "pairs"}, {**task, "seed": 7}])
    with pytest.raises(UserError, match="other settings"):
        run_experiment(changed, out, preflight=False)


def _lvlm(srv, **over) -> dict:
    return {
        "name": "judge",
        "type": "lvlm",
        "provider": "openai",
        "model": "fake-model",
        "base_url": srv.openai_base,
        "api_key_env": "GAL_KEY",
        "image_size": 32,
        "max_tokens": 100,
        "retry_base_s": 0.01,
        "price_in_per_mtok": 1.0,
        "price_out_per_mtok": 1.0,
        **over,
    }


def test_lvlm_on_the_fake_server_caches_and_refuses_over_budget(
    data_root: Path, tmp_path: Path
) -> None:
    from tests.fake_llm_server import FakeLLMServer

    env = {"GAL_KEY": "sk-gallery-key-123456"}
    task = GalleryTask(kind="gallery", queries=3, gallery_size=6)
    with FakeLLMServer() as srv:
        # 18 calls x (~612 tokens in + 100 out) x $1/Mtok is about $0.013: over a $0.001 cap
        cfg = _config(data_root, [_lvlm(srv, max_cost_usd=0.001)], [task.model_dump()])
        out = tmp_path / "run"
        with pytest.raises(UserError, match=r"18 new calls of 18 \(0 cached\).*max_cost_usd"):
            run_gallery(cfg, task, out, environ=env)
        assert srv.records == []  # refused before any call
        capped = _config(data_root, [_lvlm(srv, max_calls=10)], [task.model_dump()])
        with pytest.raises(UserError, match="max_calls=10"):
            run_gallery(capped, task, out, environ=env)
        assert srv.records == []

        ok = _config(data_root, [_lvlm(srv, max_cost_usd=1.0)], [task.model_dump()])
        run_gallery(ok, task, out, environ=env)
        assert len(srv.records) == 18
        m = gallery_metrics(out, task, Bootstrap(n_boot=50))
        judge = m["systems"]["judge"]
        assert judge["coverage"] == 1.0 and 0.0 <= judge["mAP"] <= 1.0

        # settings that change nothing the answers depend on: answered from the cache
        again = _config(data_root, [_lvlm(srv, max_cost_usd=0.02)], [task.model_dump()])
        logs: list[str] = []
        run_gallery(again, task, out, environ=env, log=logs.append)
        assert len(srv.records) == 18
        assert any("0 new calls of 18 (18 cached)" in line for line in logs)


def test_cli_refusal_exits_2_with_the_estimate(data_root: Path, tmp_path: Path, run_cli) -> None:
    from tests.fake_llm_server import FakeLLMServer

    with FakeLLMServer() as srv:
        sysd = _lvlm(srv, max_calls=5)
        lines = [
            'name = "g"',
            "[dataset]",
            f'root = "{data_root}"',
            "[pairs]",
            "positives = 1",
            "negatives = 1",
            "[[systems]]",
            *(f"{k} = {json.dumps(v)}" for k, v in sysd.items()),
            "[[tasks]]",
            'kind = "gallery"',
            "queries = 3",
            "gallery_size = 6",
        ]
        cfg = tmp_path / "g.toml"
        cfg.write_text("\n".join(lines) + "\n")
        import os

        os.environ["GAL_KEY"] = "sk-gallery-key-123456"
        try:
            res = run_cli("run", cfg, "--out", tmp_path / "out")
        finally:
            del os.environ["GAL_KEY"]
        assert res.code == 2, res.err
        assert "18 new calls of 18" in res.err and "max_calls=5" in res.err
        assert "Traceback" not in res.err
        assert [r for r in srv.records if r.status] == []
    assert not (tmp_path / "out").exists()  # refused in the pre-flight: no folder behind


CHILD = """
import json, sys
from pathlib import Path
from reidbench.config import ExperimentConfig
from reidbench.tasks.config import GalleryTask
from reidbench.tasks.gallery import run_gallery

cfg = ExperimentConfig.model_validate(json.loads(Path(sys.argv[1]).read_text()))
task = next(t for t in cfg.tasks if t.kind == "gallery")
run_gallery(cfg, task, Path(sys.argv[2]))
print("finished")
"""


@pytest.mark.slow
def test_sigkill_mid_gallery_then_resume_pays_only_calls_in_flight(
    data_root: Path, tmp_path: Path
) -> None:
    import os
    import sys
    import time

    from tests.fake_llm_server import FakeLLMServer
    from tests.sigkill import cached_answers, kill_when

    key = "sk-gallery-key-123456"
    task = {"kind": "gallery", "queries": 4, "gallery_size": 10}
    out = tmp_path / "run"
    cache = out / "cache" / "responses.sqlite"
    with FakeLLMServer(latency_s=0.1) as srv:
        cfg = _config(
            data_root,
            [_lvlm(srv, concurrency=4, max_cost_usd=1.0)],
            [task],
            cache={"claim_lease_s": 1.0},
        )
        (tmp_path / "cfg.json").write_text(json.dumps(cfg.model_dump(mode="json")))
        kill_when(
            [sys.executable, "-c", CHILD, str(tmp_path / "cfg.json"), str(out)],
            {**os.environ, "GAL_KEY": key},
            lambda: cached_answers(cache) >= 12,
            what="committed answers",
        )
        committed = cached_answers(cache)
        assert 12 <= committed < 40
        assert not (out / "tasks" / "gallery" / "systems" / "judge.parquet").exists()
        time.sleep(1.1)  # the killed child's claims lapse
        logs: list[str] = []
        gtask = GalleryTask.model_validate(task)

        run_gallery(cfg, gtask, out, environ={"GAL_KEY": key}, log=logs.append)

        calls = srv.calls_by_images()
    assert any(f"{40 - committed} new calls of 40 ({committed} cached)" in x for x in logs)
    assert len(calls) == 40 and all(n <= 2 for n in calls.values())
    assert sum(calls.values()) <= 40 + 4  # only the calls in flight at the kill were repeated
    m = gallery_metrics(out, gtask, Bootstrap(n_boot=20))
    assert m["systems"]["judge"]["coverage"] == 1.0


def test_report_section_shows_intervals_coverage_cmc_and_paired_tests() -> None:
    from reidbench.report.task_views import task_sections

    def system(r1: float, cov: float) -> dict:
        ci = {"low": r1 - 0.1, "high": r1 + 0.1, "n_valid": 100}
        return {
            "type": "reid",
            "rank1": r1,
            "rank5": 1.0,
            "mAP": r1,
            "mINP": 0.5,
            "cmc": [r1, 1.0, 1.0],
            "coverage": cov,
            "n_items": 30,
            "n_answered": int(30 * cov),
            "ci": {"rank1": ci, "mAP": ci},
        }

    metrics = {
        "tasks": {
            "gallery": {
                "kind": "gallery",
                "n_queries": 10,
                "gallery_size": 3,
                "systems": {"a": system(0.8, 1.0), "b": system(0.4, 0.5)},
                "comparisons": [
                    {
                        "a": "a",
                        "b": "b",
                        "mAP": {"diff": 0.4, "ci": {"low": 0.1, "high": 0.7}, "p_value": 0.004},
                        "rank1": {"diff": 0.4, "ci": None, "p_value": 0.02},
                    }
                ],
            }
        }
    }
    [section] = task_sections(metrics, {})
    [block] = section.blocks
    (_, table), (_, comps) = block.tables
    assert [r.head for r in table.rows] == ["a", "b"]
    r1 = table.rows[0].cells[0]
    assert r1.text == "0.800" and "0.700" in r1.ci and "0.900" in r1.ci
    assert table.rows[1].cells[-1].sub == "15 / 30"  # coverage next to the numbers
    assert comps.rows[0].head == "a vs b" and comps.rows[0].cells[1].text == "0.004"
    assert block.figures and block.figures[0][0].startswith("data:image/")
    assert section.title == "Gallery ranking"
    assert task_sections({"tasks": {}}, {}) == []
    from reidbench.report.markdown import summary_markdown

    md = summary_markdown(metrics)
    assert "Gallery ranking (gallery): 10 queries x 3 images each" in md
    assert "- b: rank-1 0.400 [0.300, 0.500], mAP 0.400 [0.300, 0.500]" in md
    assert "coverage 50.0%" in md


@pytest.mark.slow
def test_lvlm_and_reid_config_to_report_on_the_fake_server(data_root: Path, tmp_path: Path) -> None:
    from reidbench.experiment import run_experiment
    from tests.fake_llm_server import FakeLLMServer

    env = {"GAL_KEY": "sk-gallery-key-123456"}
    task = {"kind": "gallery", "queries": 3, "gallery_size": 6}
    with FakeLLMServer() as srv:
        cfg = _config(data_root, [HAND, _lvlm(srv, max_cost_usd=1.0)], [{"kind": "pairs"}, task])
        out = tmp_path / "run"
        run_experiment(cfg, out, environ=env)
        n = len(srv.records)
        run_experiment(cfg, out, environ=env)  # resumed: nothing asked again
        assert len(srv.records) == n
    block = json.loads((out / "metrics.json").read_text())["tasks"]["gallery"]
    assert set(block["systems"]) == {"hand", "judge"}
    [comp] = block["comparisons"]
    assert (comp["a"], comp["b"]) == ("hand", "judge")
    assert comp["mAP"]["diff"] == pytest.approx(
        block["systems"]["hand"]["mAP"] - block["systems"]["judge"]["mAP"]
    )
    html = (out / "report.html").read_text()
    assert "hand vs judge" in html
