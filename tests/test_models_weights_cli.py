"""End to end, as a user types it: `reidbench retrieval --model personvit-b` and a
`reidbench run` with personvit-b and no weights download from a fake Hub (a loopback
server speaking the Hub's resolve endpoint, reached through HF_ENDPOINT), print the pin,
record it in the JSON summary and in run.json, and reuse the local copy afterwards."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from reidbench.datasets.synthetic import generate
from reidbench.models.hub import KNOWN_WEIGHTS
from reidbench.models.vit import VIT_BASE
from tests.test_models_fixtures import finetuned_state_dict, market_tree
from tests.test_models_hub import REV, FakeHub

pytestmark = pytest.mark.slow

ENTRY = KNOWN_WEIGHTS[("personvit-b", "market")]


@pytest.fixture(scope="module")
def vitb_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    # Real ViT-B shapes (strict loading), fp16 values to halve the file (~172 MB).
    path = tmp_path_factory.mktemp("vitb") / "transformer_120.pth"
    sd = finetuned_state_dict(VIT_BASE, num_ids=4, fc_classes=2, seed=5)
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in sd.items()}, path)
    return path.read_bytes()


@pytest.fixture(scope="module")
def hub(vitb_bytes: bytes) -> Iterator[FakeHub]:
    server = FakeHub({f"/{ENTRY.repo_id}/resolve/{REV}/{ENTRY.filename}": vitb_bytes})
    yield server
    server.close()


@pytest.fixture(scope="module")
def env(hub: FakeHub, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("home")
    out = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    out.update(
        HF_ENDPOINT=hub.endpoint,
        HF_HUB_CACHE=str(home / "hf"),
        HF_HUB_DISABLE_TELEMETRY="1",
        REIDBENCH_CACHE_DIR=str(home / "features"),
        TORCH_HOME=str(home / "torch"),
    )
    return out


def _reidbench(env: dict[str, str], *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reidbench", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_personvit_b_downloads_records_the_pin_and_reuses_the_file(
    hub: FakeHub, env: dict[str, str], vitb_bytes: bytes, tmp_path: Path
):
    sha = hashlib.sha256(vitb_bytes).hexdigest()
    pin = f"hf://{ENTRY.repo_id}/{ENTRY.filename}@{REV}#sha256={sha}"

    # 1. retrieval with no --weights: resolved on the (fake) Hub, pin printed and in --json.
    market = market_tree(tmp_path / "market", test_ids=2, train_ids=1, cameras=2)
    res = _reidbench(
        env, "retrieval", market, "-m", "personvit-b", "-d", "cpu", "--no-cache", "--json"
    )
    assert res.returncode == 0, res.stderr
    assert pin in res.stderr
    summary = json.loads(res.stdout)
    assert summary["embedder"]["weights_pin"] == pin
    assert summary["embedder"]["weights_sha256"] == sha
    gets = [r for r in hub.requests if r.startswith("GET ")]
    assert len(gets) == 1

    # 2. --require-pinned restores the refusal (nothing is asked of the Hub).
    hub.requests.clear()
    res = _reidbench(env, "retrieval", market, "-m", "personvit-b", "--require-pinned")
    assert res.returncode == 2 and "--require-pinned" in res.stderr
    assert res.stderr.count("\n") == 1 and hub.requests == []

    # 3. an experiment run: run.json records the pin; the cached file is reused (no GET).
    data = tmp_path / "synth"
    generate(data, train_ids=1, test_ids=4, seed=2)
    cfg = tmp_path / "zoo.toml"
    cfg.write_text(
        f"""name = "pin-test"
bootstrap = 0

[dataset]
root = "{data}"

[pairs]
positives = 4
negatives = 4
seed = 0

[[systems]]
name = "personvit-b"
type = "reid"
model = "personvit-b"
device = "cpu"
options = {{ precision = "fp32" }}
"""
    )
    out = tmp_path / "run"
    res = _reidbench(env, "run", cfg, "--out", out)
    assert res.returncode == 0, res.stderr
    manifest = json.loads((out / "run.json").read_text())
    (entry,) = [s for s in manifest["systems"] if s["name"] == "personvit-b"]
    assert entry["weights"] is None and entry["weights_pin"] == pin
    assert not any(r.startswith("GET ") for r in hub.requests)
    # The report's model card shows the pin.
    assert pin in (out / "report.html").read_text()
