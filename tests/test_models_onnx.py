"""ONNX: `reidbench export` -> `onnx:PATH` -> parity with torch (personvit-s, osnet_x1_0),
settings from options or metadata, fixed-batch models, clear errors, and `retrieval`
with `--model onnx:FILE` and `--model osnet_x1_0 --weights FILE` on synthetic data."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.optional import importorskip

importorskip("onnxruntime")
onnx = importorskip("onnx")

from reidbench.datasets.synthetic import generate  # noqa: E402
from reidbench.errors import UserError  # noqa: E402
from reidbench.models import load_embedder  # noqa: E402
from reidbench.models.onnx_embedder import load_onnx  # noqa: E402
from reidbench.models.onnx_export import parity_images  # noqa: E402
from reidbench.models.vit import VIT_SMALL  # noqa: E402
from tests.osnet_reference import torchreid_state_dict  # noqa: E402
from tests.test_models_fixtures import finetuned_state_dict  # noqa: E402


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("w")
    torch.save(finetuned_state_dict(VIT_SMALL, num_ids=5, seed=3), folder / "vits.pth")
    torch.save(torchreid_state_dict("osnet_x1_0", seed=4), folder / "osnet.pth")
    return {"personvit-s": folder / "vits.pth", "osnet_x1_0": folder / "osnet.pth"}


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "data"
    generate(root, train_ids=1, test_ids=4, seed=1)
    return root


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["personvit-s", "osnet_x1_0"])
def test_export_load_parity(run_cli, name: str, weights: dict[str, Path], tmp_path: Path):
    out = tmp_path / f"{name}.onnx"
    res = run_cli("export", name, "--weights", weights[name], "--out", out)
    assert res.code == 0, res.err
    assert "parity: cosine(onnxruntime, torch) min 1.0000" in res.out
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["reidbench.source_model"] == name and meta["reidbench.input_size"] == "256x128"
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary left

    torch_emb = load_embedder(name, weights=weights[name], precision="fp32")
    onnx_emb = load_embedder(f"onnx:{out}")  # settings from the file's metadata
    assert onnx_emb.dim == torch_emb.dim
    assert onnx_emb.preprocess == torch_emb.preprocess
    images = parity_images(5, seed=7)  # not the images export checked
    cos = _cos(torch_emb.embed_images(images), onnx_emb.embed_images(images))
    assert cos.min() >= 0.9999, cos


@pytest.fixture(scope="module")
def plain_onnx(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    """A small conv net exported without metadata, fixed batch 3 and two outputs."""

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, stride=2)

        def forward(self, x):
            y = self.conv(x)
            return y.mean((2, 3), keepdim=True), y

    torch.manual_seed(0)
    net = Net().eval()
    path = tmp_path_factory.mktemp("onnx") / "plain.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter's notice
        _export(net, path)
    return path, net


def _export(net: torch.nn.Module, path: Path) -> None:
    torch.onnx.export(
        net,
        (torch.zeros(3, 3, 64, 32),),
        str(path),
        dynamo=False,
        input_names=["x"],
        output_names=["pooled", "map"],
        opset_version=17,
    )


def test_options_fill_in_what_the_file_lacks(plain_onnx):
    path, net = plain_onnx
    with pytest.raises(UserError, match="mean=R,G,B and std=R,G,B"):
        load_onnx(path)
    with pytest.raises(UserError, match=r"outputs \['pooled', 'map'\]"):
        load_onnx(path, mean="0.5,0.5,0.5", std="0.5,0.5,0.5")
    emb = load_onnx(path, mean="0.5,0.5,0.5", std=[0.25, 0.5, 1], output="pooled")
    assert emb.preprocess.size == (64, 32) and emb.dim == 8 and emb.fixed_batch == 3
    assert emb.info["settings_from"] == {
        "input_size": "input shape",
        "mean": "option",
        "std": "option",
        "output": "option",
    }
    images = parity_images(4)  # 4 images through a batch-3 model: one padded chunk
    feats = emb.embed_images(images)
    x = emb.preprocess.to_tensor(np.stack([emb.prepare(im) for im in images]), torch.device("cpu"))
    with torch.no_grad():
        ref = torch.nn.functional.normalize(net(x)[0].flatten(1), dim=1).numpy()
    np.testing.assert_allclose(feats, ref, atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"mean": "1,2", "std": "1,1,1", "output": "pooled"}, "mean must be 3 numbers"),
        ({"mean": "0,0,0", "std": "1,0,1", "output": "pooled"}, "std > 0"),
        ({"mean": "0,0,0", "std": "1,1,1", "output": "nope"}, "no output 'nope'"),
        ({"mean": "0,0,0", "std": "1,1,1", "output": "map"}, "not (N, D)"),
        ({"mean": "0,0,0", "std": "1,1,1", "output": "pooled", "input_size": "big"}, "HEIGHTx"),
    ],
)
def test_bad_onnx_options_are_user_errors(plain_onnx, kwargs, fragment):
    with pytest.raises(UserError) as info:
        load_onnx(plain_onnx[0], **kwargs)
    assert fragment in str(info.value)


def test_missing_or_broken_onnx_file(tmp_path: Path):
    with pytest.raises(UserError, match="ONNX file not found"):
        load_embedder(f"onnx:{tmp_path / 'none.onnx'}")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(UserError, match="ONNX Runtime cannot load it"):
        load_embedder(f"onnx:{bad}")
    with pytest.raises(UserError, match="drop --weights"):
        load_embedder(f"onnx:{bad}", weights="w.pth")


def test_export_refuses_what_it_cannot_export(run_cli, tmp_path: Path):
    res = run_cli("export", "handcrafted", "--out", tmp_path / "h.onnx")
    assert res.code == 2 and "not a torch network" in res.err
    assert not (tmp_path / "h.onnx").exists()


@pytest.mark.slow
def test_retrieval_with_osnet_and_its_onnx_export_agree(
    run_cli, synth: Path, weights: dict[str, Path], tmp_path: Path
):
    path = tmp_path / "osnet.onnx"
    assert run_cli("export", "osnet_x1_0", "-w", weights["osnet_x1_0"], "-o", path).code == 0
    common = ["--device", "cpu", "--no-cache", "--json"]
    res = run_cli(
        "retrieval", synth, "-m", "osnet_x1_0", "-w", weights["osnet_x1_0"], "--precision", "fp32"
    )
    assert res.code == 0, res.err
    res_torch = run_cli(
        "retrieval", synth, "-m", "osnet_x1_0", "-w", weights["osnet_x1_0"], *common
    )
    res_onnx = run_cli("retrieval", synth, "-m", f"onnx:{path}", *common)
    assert res_torch.code == 0 and res_onnx.code == 0, res_torch.err + res_onnx.err
    a, b = json.loads(res_torch.out), json.loads(res_onnx.out)
    assert a["embedder"]["dim"] == b["embedder"]["dim"] == 512
    assert b["embedder"]["layout"] == "onnx"
    for key in ("rank1", "rank5", "mAP", "mINP"):
        assert a[key] == pytest.approx(b[key], abs=1e-9), key
