"""`register_embedder`: the public extension point next to EMBEDDERS, and the CLI's
`--model-option KEY=VALUE` that passes loader options through."""

from __future__ import annotations

import numpy as np
import pytest

from reidbench.errors import UserError
from reidbench.models import EMBEDDERS, EmbedderSpec, load_embedder, register_embedder
from reidbench.models.handcrafted import HandcraftedEmbedder


def _spec(name: str) -> EmbedderSpec:
    def load(weights=None, device="cpu", **options):
        if options:
            raise TypeError(f"load() got an unexpected keyword argument {next(iter(options))!r}")
        return HandcraftedEmbedder()

    return EmbedderSpec(name, 1085, "baseline", "a plug-in for the test", load)


def test_register_then_load(monkeypatch):
    monkeypatch.setattr("reidbench.models.EMBEDDERS", dict(EMBEDDERS))
    from reidbench import models

    spec = register_embedder(_spec("my-plugin"))
    assert models.EMBEDDERS["my-plugin"] is spec
    emb = load_embedder("my-plugin")
    from PIL import Image

    feats = emb.embed_images([Image.new("RGB", (64, 128), (200, 30, 30))])
    assert feats.shape == (1, 1085)
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-6)
    with pytest.raises(UserError, match=r"see docs/models\.md for its options"):
        load_embedder("my-plugin", colour="red")


def test_register_refuses_taken_and_reserved_names(monkeypatch):
    monkeypatch.setattr("reidbench.models.EMBEDDERS", dict(EMBEDDERS))
    with pytest.raises(ValueError, match="already registered"):
        register_embedder(_spec("osnet_x1_0"))
    assert register_embedder(_spec("osnet_x1_0"), replace=True).summary.startswith("a plug")
    with pytest.raises(ValueError, match="reserved"):
        register_embedder(_spec("onnx:x"))


def test_osnet_family_is_registered():
    for name in ("osnet_x1_0", "osnet_x0_75", "osnet_x0_5", "osnet_x0_25", "osnet_ain_x1_0"):
        assert EMBEDDERS[name].dim == 512 and EMBEDDERS[name].kind == "reid"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["-O", "input_size"], "expected KEY=VALUE"),
        (["-m", "osnet_x1_0", "-O", "colour=red", "-w", "x.pth"], "argument 'colour'"),
        (["-m", "onnx:/no/such.onnx"], "ONNX file not found"),
        (["-m", "osnet_x1_0"], "Google Drive"),
    ],
)
def test_retrieval_option_errors_are_one_line(run_cli, tmp_path, args, fragment):
    from tests.test_models_fixtures import market_tree

    root = market_tree(tmp_path / "m", test_ids=2, train_ids=1)
    if "-m" not in args:
        args = ["-m", "handcrafted", *args]
    res = run_cli("retrieval", root, *args, "--no-cache")
    assert res.code == 2 and fragment in res.err and res.err.count("\n") == 1, res.err
