"""`--verify` decodes every image and names the unreadable ones; listing never decodes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reidbench.datasets import load_dataset, verify_images
from reidbench.errors import UserError
from tests.dataset_trees import image_bytes, make_cuhk03np, make_market_small


def noisy_jpeg() -> bytes:
    pixels = np.random.default_rng(0).integers(0, 255, (128, 64, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def replace(path: Path, data: bytes) -> None:
    path.unlink()  # the tree hard-links one image: break the link before writing
    path.write_bytes(data)


@pytest.fixture
def damaged(tmp_path: Path) -> tuple[Path, list[str]]:
    root = make_market_small(tmp_path / "market1501")
    query = sorted((root / "query").iterdir())
    gallery = sorted(  # real identities: junk is never loaded, so never verified
        p for p in (root / "bounding_box_test").iterdir() if not p.name.startswith(("-1", "0000"))
    )
    replace(query[0], b"this is not a JPEG")
    replace(gallery[0], b"")
    replace(gallery[1], noisy_jpeg()[:1500])  # truncated in the scan data
    bad = [f"query/{query[0].name}", f"bounding_box_test/{gallery[0].name}"]
    bad.append(f"bounding_box_test/{gallery[1].name}")
    return root, sorted(bad)


def test_listing_does_not_decode(damaged: tuple[Path, list[str]]) -> None:
    root, _ = damaged
    dataset = load_dataset(root)
    assert len(dataset.query) == 3
    assert "verified_images" not in dataset.extra


def test_verify_images_finds_each_bad_file(damaged: tuple[Path, list[str]]) -> None:
    root, bad = damaged
    dataset = load_dataset(root)
    found = verify_images(dataset, workers=2)
    assert [path for path, _ in found] == bad
    reasons = dict(found)
    assert "truncated" in " ".join(reasons.values()).lower()
    assert all("\n" not in reason for reason in reasons.values())


def test_verify_raises_one_line(damaged: tuple[Path, list[str]]) -> None:
    root, bad = damaged
    with pytest.raises(UserError) as excinfo:
        load_dataset(root, verify=True)
    message = str(excinfo.value)
    assert message.startswith(f"3 unreadable image(s) in {root}: ")
    assert str(root / bad[0]) in message
    assert "\n" not in message


def test_verify_passes_on_good_images(tmp_path: Path) -> None:
    root = make_market_small(tmp_path / "market1501", junk=3)
    dataset = load_dataset(root, verify=True)
    total = len(dataset.train) + len(dataset.query) + len(dataset.gallery)
    assert dataset.extra["verified_images"] == total == 9 + 3 + 9 + 2


def test_verify_png_tree(tmp_path: Path) -> None:
    source = tmp_path / "one.png"
    source.write_bytes(image_bytes("PNG"))
    make_cuhk03np(tmp_path / "c", source=source)
    dataset = load_dataset(tmp_path / "c", verify=True)
    assert dataset.extra["verified_images"] == 10


def test_cli_verify_exit_code_and_message(run_cli, damaged: tuple[Path, list[str]]) -> None:
    root, _ = damaged
    result = run_cli("dataset", "info", root, "--verify")
    assert result.code == 2
    assert result.out == ""
    error_lines = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1
    assert error_lines[0].startswith("error: 3 unreadable image(s)")
    assert "Traceback" not in result.err


def test_cli_verify_ok_json(run_cli, tmp_path: Path) -> None:
    import json

    root = make_market_small(tmp_path / "market1501")
    result = run_cli("dataset", "info", root, "--verify", "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)  # the progress bar goes to stderr, stdout is pure JSON
    assert data["extra"]["verified_images"] == 23
