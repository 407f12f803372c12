"""Failure-gallery thumbnails: small, decodable, never read from outside the dataset root."""

from __future__ import annotations

import base64
import io

from PIL import Image

from reidbench.report.thumbnails import MAX_SIZE, Thumbnails, thumbnail_data_uri


def _decode(uri: str) -> Image.Image:
    assert uri.startswith("data:image/jpeg;base64,")
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


def test_downscaled_jpeg(tmp_path):
    Image.new("RGB", (300, 900), (200, 30, 30)).save(tmp_path / "big.png")
    im = _decode(thumbnail_data_uri(tmp_path / "big.png"))
    assert im.format == "JPEG" and im.size[0] <= MAX_SIZE[0] and im.size[1] == MAX_SIZE[1]
    Image.new("L", (64, 128), 90).save(tmp_path / "small.jpg")
    assert _decode(thumbnail_data_uri(tmp_path / "small.jpg")).size == (64, 128)  # no upscaling


def test_missing_corrupt_and_outside_root(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "bad.jpg").write_bytes(b"not an image")
    Image.new("RGB", (10, 20)).save(tmp_path / "secret.png")
    t = Thumbnails(root)
    assert t.get("nope.jpg") is None
    assert t.get("bad.jpg") is None
    assert t.get("../secret.png") is None
    assert t.get(str(tmp_path / "secret.png")) is None  # absolute paths escape the root too
    assert t.get("") is None and Thumbnails(None).get("x.jpg") is None


def test_each_image_is_encoded_once(tmp_path):
    Image.new("RGB", (64, 128), (1, 2, 3)).save(tmp_path / "a.jpg")
    t = Thumbnails(tmp_path)
    first = t.get("a.jpg")
    (tmp_path / "a.jpg").unlink()
    assert first is not None and t.get("a.jpg") == first
