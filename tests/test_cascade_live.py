"""Live cascade inside `reidbench run`, against the loopback fake server: the LVLM is asked only
about held-out pairs inside the band, and the cost reported is the calls actually made."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from reidbench.config import (
    CascadeConfig,
    DatasetConfig,
    ExperimentConfig,
    FusionConfig,
    LVLMSystemConfig,
    PairsConfig,
    ReIDSystemConfig,
)
from reidbench.datasets import load_dataset
from reidbench.experiment import run_experiment
from reidbench.fusion import band_halfwidth
from reidbench.judges.images import ImageSpec
from reidbench.metrics.run import compute_metrics
from reidbench.metrics.verification import best_f1_threshold
from reidbench.rundir.halves import identity_codes, identity_halves, image_codes
from reidbench.tables import read_table
from tests.fake_llm_server import FakeLLMServer
from tests.fusion_fixtures import image_identities, oracle_score_fn

KEY = "sk-test-fusion-0123456789"
ENV = {"FAKE_KEY": KEY}
P_IN, P_OUT = 2.0, 8.0
PER_CALL = (1000 * P_IN + 20 * P_OUT) / 1e6  # the fake server reports 1000 in, 20 out


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from reidbench.datasets.synthetic import generate

    root = tmp_path_factory.mktemp("synthetic")
    generate(root, train_ids=2, test_ids=20, seed=3)
    return root


@pytest.fixture
def server(data_root: Path):
    dataset = load_dataset(data_root)
    paths = [r.path for r in dataset.query + dataset.gallery]
    with FakeLLMServer(require_key=KEY) as srv:
        srv.score_fn = oracle_score_fn(image_identities(data_root, paths, ImageSpec(size=64)))
        yield srv


def config(data_root: Path, srv: FakeLLMServer, **cascade) -> ExperimentConfig:
    lvlm = LVLMSystemConfig(
        name="fake-judge",
        type="lvlm",
        provider="openai",
        model="fake-model",
        base_url=srv.openai_base,
        api_key_env="FAKE_KEY",
        concurrency=2,
        retry_base_s=0.01,
        retry_max_s=0.05,
        max_retries=3,
        image_size=64,
        price_in_per_mtok=P_IN,
        price_out_per_mtok=P_OUT,
    )
    return ExperimentConfig(
        name="live",
        dataset=DatasetConfig(root=data_root),
        pairs=PairsConfig(positives=50, negatives=50, seed=1),
        systems=[ReIDSystemConfig(name="hand", type="reid", model="handcrafted"), lvlm],
        bootstrap=50,
        cascade=CascadeConfig(reid="hand", lvlm="fake-judge", live=True, **cascade),
        fusion=FusionConfig(systems=["hand", "fake-judge"]) if cascade.get("fuse") else None,
    )


def held_out_count(data_root: Path) -> int:
    """Held-out pairs of the identity-disjoint halves of the pair set `config` curates."""
    from reidbench.pairs import curate_pairs

    table = curate_pairs(load_dataset(data_root), positives=50, negatives=50, seed=1).table
    sides = [np.asarray(table[c].to_pylist()) for c in ("path_a", "path_b")]
    ids = identity_codes(table["pid_a"].to_numpy(), table["pid_b"].to_numpy(), *image_codes(*sides))
    return int(identity_halves(*ids, 0).b.sum())


def expected_band(out: Path, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Held-out pairs inside the band, recomputed independently from the files."""
    pairs = read_table(out / "pairs.parquet")
    ids = pairs["pair_id"].to_numpy()
    y = pairs["label"].to_numpy().astype(int)
    hand = read_table(out / "systems" / "hand.parquet")
    s = dict(zip(hand["pair_id"].to_pylist(), hand["score"].to_pylist(), strict=True))
    s = np.array([s[int(p)] for p in ids])
    h = identity_halves(
        *identity_codes(
            pairs["pid_a"].to_numpy(),
            pairs["pid_b"].to_numpy(),
            *image_codes(
                np.asarray(pairs["path_a"].to_pylist()), np.asarray(pairs["path_b"].to_pylist())
            ),
        ),
        0,
    )
    calib = h.a
    t, _, _ = best_f1_threshold(y[calib], s[calib])
    w = band_halfwidth(np.abs(s[calib] - t), fraction)
    return ids[h.b & (np.abs(s - t) <= w)], ids[calib]


@pytest.mark.slow
def test_live_cascade_asks_only_the_band_and_accounts_for_every_call(
    data_root: Path, server: FakeLLMServer, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    server.faults.extend(["500", "429"])  # two forced retries: two extra calls
    run_experiment(config(data_root, server, fraction=0.3), out, environ=ENV)
    band, calibration_ids = expected_band(out, 0.3)
    assert 0 < band.size < 50
    lv = read_table(out / "systems" / "fake-judge.parquet").to_pydict()
    assert sorted(lv["pair_id"]) == sorted(band.tolist())  # only held-out pairs in the band
    assert not set(lv["pair_id"]) & set(calibration_ids.tolist())
    assert len(server.records) == band.size + 2 == sum(lv["attempts"])
    ok_calls = sum(1 for r in server.records if r.status == 200)
    assert ok_calls == band.size

    metrics = compute_metrics(out)
    name = "cascade(hand>fake-judge)"
    block = metrics["cascade"][name]
    acc = block["accounting"]
    assert acc["lvlm_calls_this_run"] == len(server.records)
    assert acc["lvlm_usd_this_run"] == pytest.approx(ok_calls * PER_CALL)
    op = block["operating_point"]
    assert block["mode"] == "live" and op["n_sent"] == band.size and op["n_not_asked"] == 0
    assert op["usd"] == pytest.approx(band.size * PER_CALL)
    assert op["usd_per_1000_pairs"] == pytest.approx(band.size * PER_CALL / op["n"] * 1000)
    assert all(p["n_not_asked"] == 0 for p in block["curve"])  # the curve stops at the band
    assert block["curve"][-1]["fraction_target"] == 0.3
    # The LVLM's own metrics cover the pairs it was asked about; nothing looks "missing".
    judge = metrics["systems"]["fake-judge"]
    assert judge["n_pairs"] == band.size and judge["failures"]["missing"] == 0
    assert judge["evaluated_on"].startswith("pairs asked")
    assert judge["costs"]["this_run"]["calls"] == len(server.records)
    run = json.loads((out / "run.json").read_text())
    asked = next(s for s in run["systems"] if s["name"] == "fake-judge")["asked"]
    assert asked["asked"] == band.size and asked["fraction"] == 0.3
    assert metrics["systems"][name]["n_pairs"] == op["n"]

    # `reidbench fuse` on a live run knows it was live (the LVLM's run.json entry says so).
    from reidbench.fusion import fuse_run

    post = fuse_run(out, ["hand", "fake-judge"], method="cascade", name="post hoc")
    assert post["cascade"]["mode"] == "live"
    assert post["cascade"]["operating_point"]["f1"] == op["f1"]

    before = len(server.records)
    run_experiment(config(data_root, server, fraction=0.3), out, environ=ENV)
    assert len(server.records) == before  # a re-run pays nothing
    (out / "systems" / "fake-judge.parquet").unlink()  # even re-asking comes from the cache
    run_experiment(config(data_root, server, fraction=0.3), out, environ=ENV)
    assert len(server.records) == before
    again = compute_metrics(out)["cascade"][name]["operating_point"]
    assert again["f1"] == op["f1"] and again["usd"] == pytest.approx(op["usd"])


@pytest.mark.slow
def test_live_budget_caps_spending_and_resume_never_overspends(
    data_root: Path, server: FakeLLMServer, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    n_held = held_out_count(data_root)
    budget_usd = 9.5 * PER_CALL  # room for 9 answers
    cfg = config(data_root, server, budget_usd_per_1k=budget_usd / n_held * 1000)
    run_experiment(cfg, out, environ=ENV)
    lv = read_table(out / "systems" / "fake-judge.parquet").to_pydict()
    spent = sum(lv["cost_usd"])
    # The runner reserves a call's worst case (max_tokens out) before sending it, so the
    # cap stops a little early: 7 of the 9 answers that fit here.
    assert len(server.records) == len(lv["pair_id"]) >= 5
    assert spent <= budget_usd
    # asked most uncertain first: every sent pair is at least as close to t as any unsent one
    metrics = compute_metrics(out)
    op = metrics["cascade"]["cascade(hand>fake-judge)"]["operating_point"]
    assert op["n_sent"] == len(lv["pair_id"]) and op["usd"] == pytest.approx(spent)
    assert op["usd_per_1000_pairs"] <= budget_usd / n_held * 1000 + 1e-12
    calls = len(server.records)
    (out / "systems" / "fake-judge.parquet").unlink()  # as if interrupted before the end
    run_experiment(cfg, out, environ=ENV)
    assert len(server.records) == calls  # cached answers count against the budget
    lv2 = read_table(out / "systems" / "fake-judge.parquet").to_pydict()
    assert sorted(lv2["pair_id"]) == sorted(lv["pair_id"])


@pytest.mark.slow
def test_live_config_needs_a_fraction_or_budget(data_root: Path, server, tmp_path: Path) -> None:
    from reidbench.errors import UserError

    with pytest.raises(UserError, match=r"needs cascade\.fraction"):
        run_experiment(config(data_root, server), tmp_path / "x", environ=ENV)
    assert server.records == []
