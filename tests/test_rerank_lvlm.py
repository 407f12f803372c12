"""LVLM re-ranking of retrieval lists: exact metrics, brute-force checks, resumable end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from reidbench.config import load_rerank_config
from reidbench.datasets import load_dataset
from reidbench.fusion.rerank import (
    brute_force_metrics,
    has_match,
    rerank_list,
    reranked_distmat,
    select_queries,
    top_k_lists,
    valid_mask,
)
from reidbench.fusion.rerank_run import run_rerank
from reidbench.judges.images import ImageSpec
from reidbench.metrics import evaluate_retrieval
from reidbench.tables import read_table
from tests.fake_llm_server import FakeLLMServer
from tests.fusion_fixtures import image_identities, oracle_score_fn

KEY = "sk-test-rerank-0123456789"


def toy(seed: int = 0, nq: int = 25, ng: int = 80):
    rng = np.random.default_rng(seed)
    q_pids = rng.integers(0, 12, nq)
    g_pids = np.concatenate([q_pids[: nq // 2], rng.integers(0, 12, ng - nq // 2)])
    q_cams = rng.integers(0, 3, nq)
    g_cams = rng.integers(0, 3, ng)
    dist = rng.random((nq, ng))
    dist[:, ::7] = 0.5  # exact ties: the stable order must break them by gallery index
    return dist, q_pids, g_pids, q_cams, g_cams


def full_ranking(dist_row: np.ndarray, new_list: np.ndarray) -> np.ndarray:
    """The re-ranked list first, then every other item in the original stable order."""
    rest = np.argsort(dist_row, kind="stable")
    return np.concatenate([new_list, rest[~np.isin(rest, new_list)]])


def same_result(a, b) -> None:
    np.testing.assert_array_equal(a.cmc, b.cmc)
    assert a.mAP == b.mAP and a.mINP == b.mINP
    np.testing.assert_array_equal(a.all_AP, b.all_AP)


def test_identity_rerank_is_exactly_the_original() -> None:
    dist, qp, gp, qc, gc = toy()
    lists = top_k_lists(dist, qp, qc, gp, gc, k=10)
    new = []
    for i, items in enumerate(lists):
        sim = 1.0 - dist[i, items] / 2.0
        # an LVLM that agrees with the ReID order (any alpha keeps it)
        unit = (sim - sim.min()) / (sim.max() - sim.min())
        new.append(rerank_list(items, sim, unit, unit > 0.5, method="fuse", alpha=0.7))
        np.testing.assert_array_equal(new[-1], items)
    same_result(
        evaluate_retrieval(reranked_distmat(dist, new), qp, gp, qc, gc, max_rank=20),
        evaluate_retrieval(dist, qp, gp, qc, gc, max_rank=20),
    )


def test_brute_force_reference_agrees_with_evaluate_retrieval() -> None:
    dist, qp, gp, qc, gc = toy(1)
    ranked = [np.argsort(row, kind="stable") for row in dist]
    ref = brute_force_metrics(ranked, qp, qc, gp, gc, max_rank=20)
    res = evaluate_retrieval(dist, qp, gp, qc, gc, max_rank=20)
    np.testing.assert_allclose(res.cmc, ref["cmc"])
    assert res.mAP == pytest.approx(ref["mAP"]) and res.mINP == pytest.approx(ref["mINP"])


@pytest.mark.parametrize("seed", range(5))
def test_metrics_after_reranking_match_the_explicit_lists(seed: int) -> None:
    dist, qp, gp, qc, gc = toy(seed + 10)
    rng = np.random.default_rng(seed)
    lists = top_k_lists(dist, qp, qc, gp, gc, k=8)
    new = [rng.permutation(items) for items in lists]
    res = evaluate_retrieval(reranked_distmat(dist, new), qp, gp, qc, gc, max_rank=20)
    ranked = [full_ranking(dist[i], new[i]) for i in range(len(new))]
    ref = brute_force_metrics(ranked, qp, qc, gp, gc, max_rank=20)
    np.testing.assert_allclose(res.cmc, ref["cmc"])
    assert res.mAP == pytest.approx(ref["mAP"]) and res.mINP == pytest.approx(ref["mINP"])


def test_oracle_confirmation_improves_rank1() -> None:
    dist, qp, gp, qc, gc = toy(4)
    lists = top_k_lists(dist, qp, qc, gp, gc, k=10)
    new = []
    for i, items in enumerate(lists):
        truth = (gp[items] == qp[i]).astype(float)
        new.append(rerank_list(items, -dist[i, items], truth, truth > 0.5, method="confirm"))
    before = evaluate_retrieval(dist, qp, gp, qc, gc, max_rank=10)
    after = evaluate_retrieval(reranked_distmat(dist, new), qp, gp, qc, gc, max_rank=10)
    in_top = np.mean(
        [
            np.any(gp[items] == qp[i])
            for i, items in enumerate(lists)
            if has_match(qp[i : i + 1], qc[i : i + 1], gp, gc)[0]
        ]
    )
    assert after.cmc[0] == pytest.approx(in_top)  # every match in the top-k moves first
    assert after.cmc[0] > before.cmc[0] and after.mAP > before.mAP


def test_failed_answers_keep_their_reid_position() -> None:
    items = np.array([10, 11, 12, 13, 14])
    unit = np.array([0.1, np.nan, 0.9, np.nan, 0.5])
    same = unit > 0.5
    out = rerank_list(items, np.linspace(1, 0, 5), unit, same, method="confirm")
    np.testing.assert_array_equal(out, [12, 11, 10, 13, 14])
    out = rerank_list(items, np.linspace(1, 0, 5), unit, same, method="fuse", alpha=1.0)
    np.testing.assert_array_equal(out, [12, 11, 14, 13, 10])
    out = rerank_list(items, np.linspace(1, 0, 5), unit, same, method="fuse", alpha=0.0)
    np.testing.assert_array_equal(out, items)
    nothing = np.full(5, np.nan)
    np.testing.assert_array_equal(rerank_list(items, unit, nothing, same, method="fuse"), items)


def test_top_k_skips_junk_and_query_subset_is_seeded() -> None:
    dist, qp, gp, qc, gc = toy(2)
    lists = top_k_lists(dist, qp, qc, gp, gc, k=6)
    for i, items in enumerate(lists):
        keep = valid_mask(qp[i], qc[i], gp, gc)
        assert keep[items].all()
        order = np.argsort(dist[i], kind="stable")
        np.testing.assert_array_equal(items, order[keep[order]][:6])
    eligible = has_match(qp, qc, gp, gc)
    a = select_queries(eligible, 5, seed=3)
    assert a.size == 5 and eligible[a].all() and np.all(np.diff(a) > 0)
    np.testing.assert_array_equal(a, select_queries(eligible, 5, seed=3))
    np.testing.assert_array_equal(select_queries(eligible, "all", 0), np.flatnonzero(eligible))


# -- end to end against the loopback server --------------------------------------------------


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from reidbench.datasets.synthetic import generate

    root = tmp_path_factory.mktemp("synthetic")
    generate(root, train_ids=2, test_ids=16, seed=5)
    return root


def write_config(path: Path, data_root: Path, srv: FakeLLMServer, **rerank) -> Path:
    settings = {"top_k": 5, "queries": 8, "method": "confirm", "seed": 1, **rerank}
    lines = [
        'name = "rerank-test"',
        "[dataset]",
        f'root = "{data_root}"',
        "[reid]",
        'name = "hand"',
        'model = "handcrafted"',
        "[lvlm]",
        'name = "oracle"',
        'provider = "openai"',
        'model = "fake-model"',
        f'base_url = "{srv.openai_base}"',
        'api_key_env = "FAKE_KEY"',
        "image_size = 64",
        "concurrency = 2",
        "retry_base_s = 0.01",
        "price_in_per_mtok = 1.0",
        "price_out_per_mtok = 2.0",
        "[rerank]",
        *(f"{k} = {json.dumps(v)}" for k, v in settings.items()),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def server(data_root: Path):
    ds = load_dataset(data_root)
    with FakeLLMServer(require_key=KEY) as srv:
        paths = [r.path for r in ds.query + ds.gallery]
        srv.score_fn = oracle_score_fn(image_identities(data_root, paths, ImageSpec(size=64)))
        yield srv


@pytest.mark.slow
def test_rerank_end_to_end_resumes_and_counts_calls(
    data_root: Path, server: FakeLLMServer, tmp_path: Path
) -> None:
    cfg = load_rerank_config(write_config(tmp_path / "r.toml", data_root, server))
    out = tmp_path / "out"
    result = run_rerank(cfg, out, environ={"FAKE_KEY": KEY})
    ds = load_dataset(data_root)
    pairs = read_table(out / "rerank_pairs.parquet").to_pydict()
    n_pairs = sum(len(q["before"]) for q in result["per_query"])
    assert result["queries"]["n_selected"] == 8 and n_pairs == 8 * 5
    assert len(server.records) == n_pairs == len(pairs["pair_id"])
    assert result["calls"]["calls_this_run"] == n_pairs
    assert result["calls"]["usd_this_run"] == pytest.approx(n_pairs * (1000 + 40) / 1e6)
    for a, b, ca, cb in zip(
        pairs["pid_a"], pairs["pid_b"], pairs["cam_a"], pairs["cam_b"], strict=True
    ):
        assert not (a == b and ca == cb)  # junk is never sent
    # rank-1 before/after from the explicit lists (their first item is the first valid one)
    g_pids = np.array([r.pid for r in ds.gallery])
    for key, when in (("before", "before"), ("after", "after")):
        hits = [g_pids[q[when][0]] == q["pid"] for q in result["per_query"]]
        assert result[key]["rank1"] == pytest.approx(np.mean(hits))
        assert result[key]["num_valid_queries"] == 8
    assert result["after"]["rank1"] >= result["before"]["rank1"]
    assert result["after"]["mAP"] >= result["before"]["mAP"]
    assert (out / "rerank.md").read_text().startswith("## LVLM re-ranking: hand top-5")
    # paired tests on the same queries: hits from the per-query first-match ranks
    paired = result["paired"]
    gained = sum(
        q["first_match_rank_after"] == 0 < q["first_match_rank_before"] for q in result["per_query"]
    )
    lost = sum(
        q["first_match_rank_before"] == 0 < q["first_match_rank_after"] for q in result["per_query"]
    )
    assert (paired["mcnemar"]["b"], paired["mcnemar"]["c"]) == (gained, lost)
    assert paired["rank1"]["diff"] == pytest.approx(result["delta"]["rank1"])
    assert paired["mAP"]["diff"] == pytest.approx(result["delta"]["mAP"])
    assert "- rank-1: " in (out / "rerank.md").read_text()

    again = run_rerank(cfg, out, environ={"FAKE_KEY": KEY})
    assert len(server.records) == n_pairs  # resumed from the response cache: zero calls
    assert again["calls"]["calls_this_run"] == 0 and again["calls"]["cached_rows"] == n_pairs
    assert again["after"] == result["after"] and again["calls"]["usd_answers"] == pytest.approx(
        result["calls"]["usd_answers"]
    )


def test_example_rerank_configs_validate() -> None:
    folder = Path(__file__).resolve().parents[1] / "configs" / "rerank"
    paths = sorted(folder.glob("*.toml"))
    assert paths
    for path in paths:
        cfg = load_rerank_config(path)
        assert cfg.reid.type == "reid" and cfg.lvlm.type == "lvlm"


@pytest.mark.slow
def test_rerank_cli(
    data_root: Path, server: FakeLLMServer, tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_KEY", KEY)
    cfg = write_config(
        tmp_path / "r.toml", data_root, server, method="fuse", queries="all", top_k=3
    )
    res = run_cli("rerank", cfg, "--out", tmp_path / "o")
    assert res.code == 0, res.err
    assert "| before |" in res.out and "| after |" in res.out
    data = json.loads((tmp_path / "o" / "rerank.json").read_text())
    assert data["settings"]["method"] == "fuse" and data["settings"]["queries"] == "all"
    bad = tmp_path / "bad.toml"
    bad.write_text(cfg.read_text().replace('method = "fuse"', 'method = "vote"'))
    res = run_cli("rerank", bad)
    assert res.code == 2 and "rerank.method" in res.err and res.err.count("\n") == 1
    res = run_cli("rerank", tmp_path / "missing.toml")
    assert res.code == 2 and "config file not found" in res.err
