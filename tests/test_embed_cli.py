"""`reidbench retrieval`: numbers equal a brute-force evaluation, the cache is reused, and
user mistakes are one line with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from reidbench.datasets import load_dataset
from reidbench.models import extract_features, load_embedder
from reidbench.models.vit import VIT_SMALL
from tests.test_models_fixtures import finetuned_state_dict, market_tree


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return market_tree(tmp_path_factory.mktemp("data") / "Market-1501-v15.09.15")


@pytest.fixture(scope="module")
def small_market(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return market_tree(tmp_path_factory.mktemp("small") / "market", test_ids=3, train_ids=1)


@pytest.fixture(scope="module")
def vit_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("w") / "transformer_120.pth"
    torch.save(finetuned_state_dict(VIT_SMALL, num_ids=5, seed=11), path)
    return path


def brute_force_metrics(qf, gf, q_pids, g_pids, q_cams, g_cams) -> dict[str, float]:
    """Market protocol written plainly: drop same-pid same-camera gallery items, rank by
    cosine distance (stable), CMC rank-k, AP = mean precision at each match, INP."""
    hits = {1: [], 5: [], 10: []}
    aps, inps = [], []
    for i in range(len(qf)):
        dist = 1.0 - gf @ qf[i]
        order = np.argsort(dist, kind="stable")
        keep = [j for j in order if not (g_pids[j] == q_pids[i] and g_cams[j] == q_cams[i])]
        matches = np.array([g_pids[j] == q_pids[i] for j in keep])
        if not matches.any():
            continue
        first = int(np.argmax(matches))
        for k in hits:
            hits[k].append(first < k)
        ranks = np.flatnonzero(matches) + 1
        aps.append(np.mean([(n + 1) / r for n, r in enumerate(ranks)]))
        inps.append(len(ranks) / ranks[-1])
    return {
        "rank1": float(np.mean(hits[1])),
        "rank5": float(np.mean(hits[5])),
        "rank10": float(np.mean(hits[10])),
        "mAP": float(np.mean(aps)),
        "mINP": float(np.mean(inps)),
    }


@pytest.mark.slow
def test_retrieval_json_equals_brute_force_then_hits_the_cache(run_cli, market, tmp_path):
    cache = tmp_path / "cache"
    res = run_cli("retrieval", market, "--model", "handcrafted", "--cache", cache, "--json")
    assert res.code == 0, res.err
    out = json.loads(res.out)
    assert out["model"] == "handcrafted" and out["query_images"] == 12
    assert out["features"] == {"images": 48, "unique": 48, "cached": 0, "computed": 48}
    assert out["embedder"]["trained_for_reid"] is False
    ds = load_dataset(market)
    emb = load_embedder("handcrafted")
    feats = extract_features(emb, [ds.abspath(r) for r in ds.query + ds.gallery])
    want = brute_force_metrics(
        feats[:12].astype(np.float64),
        feats[12:].astype(np.float64),
        [r.pid for r in ds.query],
        [r.pid for r in ds.gallery],
        [r.camid for r in ds.query],
        [r.camid for r in ds.gallery],
    )
    for key, value in want.items():
        assert out[key] == pytest.approx(value, abs=1e-6), key
    assert out["fingerprint"] == emb.fingerprint

    again = run_cli("retrieval", market, "-m", "handcrafted", "--cache", cache, "--json")
    second = json.loads(again.out)
    assert second["features"]["computed"] == 0 and second["features"]["cached"] == 48
    assert second["mAP"] == out["mAP"]


def test_retrieval_text_output_and_rerank(run_cli, market, tmp_path):
    res = run_cli("retrieval", market, "-m", "handcrafted", "--no-cache", "--rerank")
    assert res.code == 0, res.err
    for label in ("rank-1", "rank-5", "rank-10", "mAP", "mINP", "k-reciprocal"):
        assert label in res.out
    assert "baseline, not ReID-trained" in res.out


@pytest.mark.slow
def test_retrieval_with_personvit_checkpoint(run_cli, small_market, vit_ckpt, tmp_path):
    res = run_cli(
        "retrieval",
        small_market,
        "--model",
        "personvit-s",
        "--weights",
        vit_ckpt,
        "--device",
        "cpu",
        "--precision",
        "fp32",
        "--batch-size",
        "16",
        "--cache",
        tmp_path / "c",
        "--json",
    )
    assert res.code == 0, res.err
    out = json.loads(res.out)
    assert out["embedder"]["dim"] == 384 and out["embedder"]["precision"] == "fp32"
    assert out["embedder"]["layout"] == "finetuned"
    assert 0.0 <= out["mINP"] <= out["mAP"] <= 1.0 and len(out["cmc"]) > 0


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["-m", "resnet50"], "unknown model 'resnet50'"),
        (["-m", "personvit-s", "--require-pinned"], "personvit-s needs weights"),
        (["-m", "personvit-s", "--weights", "/no/such/file.pth"], "weights file not found"),
        (["-m", "handcrafted", "--feature", "after-bn"], "--feature applies to personvit"),
        (["-m", "efficientnet-lite0", "--device", "quantum"], "unknown device"),
        (["-m", "personvit-b", "--precision", "fp8"], "unknown precision"),
    ],
)
def test_retrieval_user_errors_are_one_line(run_cli, market, tmp_path, args, fragment):
    res = run_cli("retrieval", market, *args, "--cache", tmp_path / "c")
    assert res.code == 2, res.out + res.err
    assert res.err.startswith("error: ") and fragment in res.err
    assert res.err.count("\n") == 1 and "Traceback" not in res.err


@pytest.mark.slow
def test_retrieval_wrong_checkpoint_names_the_keys(run_cli, market, vit_ckpt, tmp_path):
    res = run_cli("retrieval", market, "-m", "personvit-b", "-w", vit_ckpt, "--no-cache")
    assert res.code == 2
    assert "mis-shaped keys" in res.err and "(156 in all)" in res.err
    assert "embedding dim is 384: use --model personvit-s" in res.err


def test_retrieval_bad_root(run_cli, tmp_path):
    res = run_cli("retrieval", tmp_path / "nowhere", "-m", "handcrafted", "--no-cache")
    assert res.code == 2 and res.err.startswith("error: ")


def test_retrieval_help(run_cli):
    res = run_cli("retrieval", "--help")
    assert res.code == 0
    for opt in ("--model", "--weights", "--rerank", "--device", "--json", "--cache"):
        assert opt in res.out
