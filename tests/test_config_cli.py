"""Config drives the CLI: --set overrides, shipped configs, [pairs] miner settings, fuse --cs."""

from __future__ import annotations

from pathlib import Path

import pytest

import reidbench.models
from reidbench.config import PairsConfig, load_config
from reidbench.errors import UserError
from reidbench.shipped_configs import config_text, list_configs

REPO_CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_shipped_configs_are_the_repository_configs() -> None:
    on_disk = sorted(
        p.relative_to(REPO_CONFIGS).with_suffix("").as_posix() for p in REPO_CONFIGS.rglob("*.toml")
    )
    assert list_configs() == on_disk
    for name in on_disk:
        assert config_text(name) == (REPO_CONFIGS / f"{name}.toml").read_text(encoding="utf-8")
    assert config_text("demo.toml") == config_text("demo")


def test_config_list_and_show(run_cli) -> None:
    listed = run_cli("config", "list")
    assert listed.code == 0 and listed.out.split() == list_configs()
    shown = run_cli("config", "show", "rerank/market1501")
    assert shown.code == 0 and shown.out == config_text("rerank/market1501")
    missing = run_cli("config", "show", "nope")
    assert missing.code == 2 and "no shipped config 'nope'" in missing.err
    assert "Traceback" not in missing.err


def test_set_overrides_are_typed_by_the_models() -> None:
    cfg = load_config(
        REPO_CONFIGS / "demo.toml",
        [
            "pairs.positives=50",
            "pairs.hard_negatives=personvit-b",
            "pairs.weights=w.pth",
            "pairs.device=cuda:1",
            "systems.efficientnet-lite0.threshold=0.25",
            "systems.0.batch_size=8",
            "fusion.cs=[0.1, 1.0]",
            "dataset.options.variant=labeled",
            "name=other",
            "retrieval=false",
        ],
    )
    assert (cfg.pairs.positives, cfg.pairs.negatives) == (50, 200)
    assert (cfg.pairs.hard_negatives, cfg.pairs.weights, cfg.pairs.device) == (
        "personvit-b",
        "w.pth",
        "cuda:1",
    )
    assert cfg.systems[1].threshold == 0.25 and cfg.systems[0].batch_size == 8
    assert cfg.fusion is not None and cfg.fusion.cs == [0.1, 1.0]
    assert cfg.dataset.options == {"variant": "labeled"}
    assert (cfg.name, cfg.retrieval) == ("other", False)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("pairs.positivs=3", r"unknown key 'positivs' in \[pairs\]; its keys are positives,"),
        ("retreival=true", r"unknown key 'retreival'; .* retrieval"),
        ("pairs.positives=abc", r"--set pairs.positives=abc: Input should be a valid integer"),
        ("pairs.positives=-1", r"greater than or equal to 0"),
        ("systems.nobody.threshold=1", r"no item 'nobody' .*\['handcrafted', 'efficientnet"),
        ("pairs", r"is not KEY.PATH=VALUE"),
        ("pairs.seed.x=1", r"pairs.seed is a value, not a table"),
    ],
)
def test_bad_override_is_one_clear_line(override: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        load_config(REPO_CONFIGS / "demo.toml", [override])


def test_run_set_on_the_command_line(run_cli, tmp_path) -> None:
    out = tmp_path / "run"
    result = run_cli("run", REPO_CONFIGS / "demo.toml", "--set", "pairs.split=nope", "--out", out)
    assert result.code == 2
    assert result.err.startswith("error: --set pairs.split=nope: Input should be")
    assert not out.exists()


def test_pairs_weights_need_a_miner() -> None:
    with pytest.raises(ValueError, match="weights needs hard_negatives"):
        PairsConfig(weights="w.pth")


def test_pairs_miner_settings_reach_the_miner(monkeypatch, tmp_path) -> None:
    from reidbench.experiment import RunPaths, _ensure_pairs, _pair_request

    cfg = load_config(
        REPO_CONFIGS / "demo.toml",
        ["pairs.hard_negatives=personvit-b", "pairs.weights=w.pth", "pairs.device=cuda:1"],
    )
    seen = {}

    def fake_load(name, weights=None, device="cpu", **options):
        seen.update(name=name, weights=weights, device=device)
        raise UserError("stop here")

    monkeypatch.setattr(reidbench.models, "load_embedder", fake_load)
    with pytest.raises(UserError, match="stop here"):
        _ensure_pairs(cfg, None, RunPaths(tmp_path), None, print)
    assert seen == {"name": "personvit-b", "weights": "w.pth", "device": "cuda:1"}
    # Older run directories recorded [pairs] without the miner keys: unchanged defaults
    # keep the same request, so they resume.
    plain = load_config(REPO_CONFIGS / "demo.toml")
    assert set(_pair_request(plain)) == {
        "positives",
        "negatives",
        "seed",
        "split",
        "same_camera_positives",
        "distractor_negatives",
        "triplets",
        "hard_negatives",
    }
    assert _pair_request(cfg)["weights"] == "w.pth"


def test_fuse_cs_reaches_the_fit(run_cli, monkeypatch, tmp_path) -> None:
    import reidbench.fusion.records as records

    seen = {}

    def fake_fuse_run(run_dir, names, **kwargs):
        seen.update(kwargs)
        raise UserError("stop here")

    monkeypatch.setattr(records, "fuse_run", fake_fuse_run)
    (tmp_path / "scores.parquet").write_bytes(b"")
    result = run_cli("fuse", tmp_path, "--systems", "a,b", "--cs", "0.01,0.1,1")
    assert result.code == 2 and "stop here" in result.err
    assert seen["cs"] == [0.01, 0.1, 1.0]
    run_cli("fuse", tmp_path, "--systems", "a,b", "--cs", "7")
    assert seen["cs"] == 7
    run_cli("fuse", tmp_path, "--systems", "a,b")
    assert seen["cs"] == 10
    bad = run_cli("fuse", tmp_path, "--systems", "a,b", "--cs", "0,-1")
    assert bad.code == 2 and "--cs '0,-1': give a grid size" in bad.err
    cascade = run_cli("fuse", tmp_path, "--systems", "a,b", "-m", "cascade", "--cs", "3")
    assert cascade.code == 2 and "apply to --method logistic only" in cascade.err


@pytest.mark.slow
def test_dataset_option_on_the_command_line(run_cli, tmp_path) -> None:
    root = tmp_path / "synth"
    assert run_cli("synth", root, "--train-ids", "2", "--test-ids", "2").code == 0
    bad = run_cli("dataset", "info", root, "--dataset-option", "variant=labeled")
    assert bad.code == 2
    assert bad.err.strip() == (
        "error: dataset option for market1501: variant: Extra inputs are not permitted; "
        "its options are attributes"
    )
