"""The synthetic generator: Market-1501 layout, counts, determinism, crash safety."""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reidbench.datasets import synthetic
from reidbench.datasets.synthetic.build import (
    FOLDERS,
    IDENTITIES_FILE,
    MARKER,
    _complete_jpeg,
    _plan,
    _World,
    generate,
)
from reidbench.datasets.synthetic.camera import JPEG_FLOOR
from reidbench.errors import UserError

NAME = re.compile(r"^(-1|\d{4})_c(\d)s(\d)_(\d{6})_(\d{2})\.jpg$")


def listing(root: Path) -> dict[str, list[tuple[str, int, int]]]:
    """(name, pid, cam 1-based) per split, parsed with a local regex (not the loader)."""
    out: dict[str, list[tuple[str, int, int]]] = {}
    for split, sub in FOLDERS.items():
        rows = []
        for p in sorted((root / sub).iterdir()):
            m = NAME.match(p.name)
            assert m, f"not a Market-style name: {p.name}"
            rows.append((p.name, int(m.group(1)), int(m.group(2))))
        out[split] = rows
    return out


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    out = tmp_path_factory.mktemp("synth") / "small"
    return out, generate(out, train_ids=6, test_ids=8, cameras=6, seed=3)


@pytest.mark.slow
def test_market_layout_and_protocol(small: tuple[Path, dict[str, object]]) -> None:
    root, counts = small
    files = listing(root)
    train, query, gallery = files["train"], files["query"], files["gallery"]
    train_pids = {pid for _, pid, _ in train}
    test_pids = {pid for _, pid, _ in query}
    assert len(train_pids) == 6 and len(test_pids) == 8
    assert train_pids.isdisjoint(test_pids)
    assert all(pid > 0 for _, pid, _ in train + query)  # junk/distractors only in the gallery
    assert all(1 <= cam <= 6 for split in files.values() for _, _, cam in split)
    # Every identity passes at least two cameras (so cross-camera matches exist).
    for split_rows in (train, query):
        cams = defaultdict(set)
        for _, pid, cam in split_rows:
            cams[pid].add(cam)
        assert min(len(c) for c in cams.values()) >= 2
    # Exactly one query per (identity, camera) and a gallery image for it in that camera.
    per_cam = Counter((pid, cam) for _, pid, cam in query)
    assert set(per_cam.values()) == {1}
    gallery_pairs = {(pid, cam) for _, pid, cam in gallery}
    assert set(per_cam) <= gallery_pairs
    assert {pid for _, pid, _ in gallery if pid > 0} == test_pids
    assert any(pid == 0 for _, pid, _ in gallery) and any(pid == -1 for _, pid, _ in gallery)
    # The returned counts are the files on disk, as Dataset.info() would count them.
    kept = [g for g in gallery if g[1] >= 0]
    assert counts["train_images"] == len(train) and counts["query_images"] == len(query)
    assert counts["gallery_images"] == len(kept)
    assert counts["gallery_ids"] == len({pid for _, pid, _ in kept})
    assert counts["junk_dropped"] == sum(1 for g in gallery if g[1] == -1)
    assert counts["distractor_images"] == sum(1 for g in gallery if g[1] == 0)
    assert counts["files"] == len(train) + len(query) + len(gallery)
    assert counts["reused"] is False and counts["resumed"] == 0


@pytest.mark.slow
def test_images_are_market_sized_jpegs(small: tuple[Path, dict[str, object]]) -> None:
    root, _ = small
    for path in (
        list((root / "query").iterdir())[:20] + list((root / "bounding_box_test").iterdir())[:20]
    ):
        with Image.open(path) as img:
            assert img.format == "JPEG" and img.mode == "RGB" and img.size == (64, 128)


def test_marker_says_synthetic_and_records_everything(
    small: tuple[Path, dict[str, object]],
) -> None:
    root, counts = small
    marker = json.loads((root / MARKER).read_text())
    assert marker["generator"] == "reidbench.synthetic" and marker["synthetic"] is True
    assert "not photographs of real people" in marker["note"]
    assert marker["seed"] == 3
    assert marker["parameters"] == {
        "generator": "reidbench.synthetic",
        "generator_version": synthetic.GENERATOR_VERSION,
        "seed": 3,
        "train_ids": 6,
        "test_ids": 8,
        "cameras": 6,
        "image_size": [64, 128],
    }
    assert marker["counts"] == {k: counts[k] for k in marker["counts"]}
    assert marker["content_sha256"] == counts["content_sha256"]
    assert len(marker["cameras"]) == 6
    people = json.loads((root / IDENTITIES_FILE).read_text())["people"]
    pids = {pid for rows in listing(root).values() for _, pid, _ in rows if pid > 0}
    assert {p["pid"] for p in people.values() if p["kind"] == "identity"} == pids
    assert not (root.parent / "small.partial").exists()


def test_loader_reads_it_as_synthetic_market(small: tuple[Path, dict[str, object]]) -> None:
    from reidbench.datasets import load_dataset

    root, counts = small
    dataset = load_dataset(root)
    assert dataset.synthetic is True and dataset.name == "market1501"
    info = dataset.info()
    for key in (
        "train_ids",
        "train_images",
        "query_ids",
        "query_images",
        "gallery_ids",
        "gallery_images",
        "junk_dropped",
        "distractor_images",
        "cameras",
    ):
        assert info[key] == counts[key], key


@pytest.mark.slow
def test_same_seed_same_bytes_and_order_independent(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", train_ids=2, test_ids=3, seed=11)
    b = generate(tmp_path / "b", train_ids=2, test_ids=3, seed=11)
    c = generate(tmp_path / "c", train_ids=2, test_ids=3, seed=12)
    assert tree_hashes(tmp_path / "a") == tree_hashes(tmp_path / "b")
    assert a["content_sha256"] == b["content_sha256"] != c["content_sha256"]
    # Rendering the jobs backwards in a fresh world gives the same bytes: every image
    # has its own random stream, so order and parallelism cannot change the output.
    jobs = _plan(11, 2, 3, 6)
    world = _World(11, 6)
    for job in reversed(jobs):
        data = world.render(job)
        assert data == (tmp_path / "a" / FOLDERS[job.split] / job.name).read_bytes()


@pytest.mark.slow
def test_rerun_is_a_no_op_and_other_parameters_need_force(tmp_path: Path) -> None:
    out = tmp_path / "set"
    first = generate(out, train_ids=2, test_ids=2, seed=1)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    again = generate(out, train_ids=2, test_ids=2, seed=1)
    assert again["reused"] is True and again["content_sha256"] == first["content_sha256"]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    hashes = tree_hashes(out)
    with pytest.raises(UserError, match=r"other parameters \(seed 1 -> 2\).*--force"):
        generate(out, train_ids=2, test_ids=2, seed=2)
    assert tree_hashes(out) == hashes  # untouched
    replaced = generate(out, train_ids=2, test_ids=2, seed=2, force=True)
    assert replaced["reused"] is False
    assert json.loads((out / MARKER).read_text())["seed"] == 2


@pytest.mark.slow
def test_refuses_folders_that_are_not_synthetic_sets(tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.tex").write_text("precious")
    for force in (False, True):
        with pytest.raises(UserError, match="not a reidbench synthetic dataset"):
            generate(busy, train_ids=1, test_ids=1, force=force)
    assert (busy / "thesis.tex").read_text() == "precious"
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(UserError, match="not a folder"):
        generate(a_file, train_ids=1, test_ids=1)
    stranger = tmp_path / "mine.partial"
    stranger.mkdir()
    (stranger / "keep.txt").write_text("x")
    with pytest.raises(UserError, match="not made by `reidbench synth`"):
        generate(tmp_path / "mine", train_ids=1, test_ids=1)
    assert (stranger / "keep.txt").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert generate(empty, train_ids=1, test_ids=1)["files"] > 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"train_ids": 0}, "at least 1"),
        ({"test_ids": 0}, "at least 1"),
        ({"train_ids": 5000, "test_ids": 5000}, "four-digit"),
        ({"cameras": 1}, "out of range 2..9"),
        ({"cameras": 10}, "out of range 2..9"),
        ({"seed": -1}, "non-negative"),
    ],
)
def test_bad_parameters_are_user_errors(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        generate(tmp_path / "x", **{"train_ids": 1, "test_ids": 1, **kwargs})
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.partial").exists()


class _StopAfter:
    """A progress sink that interrupts generation after the first reported batch."""

    def start(self, description: str, total: int | None) -> None:
        self.total = total

    def advance(self, n: int = 1, **fields: object) -> None:
        raise KeyboardInterrupt

    def finish(self) -> None:
        pass


@pytest.mark.slow
def test_interrupted_run_leaves_no_complete_looking_set_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "set"
    with pytest.raises(KeyboardInterrupt):
        generate(out, train_ids=10, test_ids=10, seed=4, progress=_StopAfter())
    partial = tmp_path / "set.partial"
    assert not out.exists() and partial.is_dir()
    assert not (partial / MARKER).exists()
    done = sorted(partial.rglob("*.jpg"))
    assert len(done) == 64  # the first progress batch
    # A file cut short by a kill mid-write is made again, never kept as an image.
    torn = done[0]
    torn.write_bytes(torn.read_bytes()[:700])
    empty = done[1]
    empty.write_bytes(b"")
    resumed = generate(out, train_ids=10, test_ids=10, seed=4)
    assert resumed["resumed"] == 62 and not partial.exists()
    fresh = generate(tmp_path / "fresh", train_ids=10, test_ids=10, seed=4)
    assert resumed["content_sha256"] == fresh["content_sha256"]
    assert tree_hashes(out) == tree_hashes(tmp_path / "fresh")


@pytest.mark.slow
def test_partial_for_other_parameters_is_discarded(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        generate(tmp_path / "set", train_ids=10, test_ids=10, seed=4, progress=_StopAfter())
    result = generate(tmp_path / "set", train_ids=10, test_ids=10, seed=5)
    assert result["resumed"] == 0
    fresh = generate(tmp_path / "fresh", train_ids=10, test_ids=10, seed=5)
    assert result["content_sha256"] == fresh["content_sha256"]


@pytest.mark.slow
def test_cli_synth(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    sheet = tmp_path / "sheet.png"
    result = run_cli(
        "synth",
        out,
        "--train-ids",
        "2",
        "--test-ids",
        "3",
        "--cameras",
        "3",
        "--seed",
        "7",
        "--json",
        "--check",
        "--contact-sheet",
        sheet,
    )
    assert result.code == 0, result.err
    payload = json.loads(result.out)
    assert payload["cameras"] == 3 and payload["query_ids"] == 3 and payload["reused"] is False
    assert 0.0 <= payload["colour_histogram"]["rank1"] <= 1.0
    with Image.open(sheet) as img:
        assert img.format == "PNG" and img.width > 3 * 128
    again = run_cli(
        "synth", out, "--train-ids", "2", "--test-ids", "3", "--cameras", "3", "--seed", "7"
    )
    assert again.code == 0 and "already holds this synthetic dataset" in again.out
    assert "SYNTHETIC" in again.out


def test_cli_errors_are_one_line_exit_2(run_cli, tmp_path: Path) -> None:
    result = run_cli("synth", tmp_path / "x", "--cameras", "12")
    assert result.code == 2
    assert result.err.strip().startswith("error: --cameras 12")
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err
    assert not (tmp_path / "x").exists()
    assert run_cli("synth", "--help").code == 0


def test_only_a_complete_jpeg_ends_with_the_end_marker() -> None:
    """Resume trusts the JPEG end marker; it must not occur inside our files at any quality."""
    rng = np.random.default_rng(0)
    for quality in range(JPEG_FLOOR[0], 98):
        img = Image.fromarray(rng.integers(0, 256, (128, 64, 3), dtype=np.uint8))
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=quality)
        data = buf.getvalue()
        assert _complete_jpeg(data)
        assert data.find(b"\xff\xd9") == len(data) - 2, quality  # no earlier cut looks complete


def test_cli_interrupt_says_how_to_resume(run_cli, tmp_path: Path, monkeypatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> dict[str, object]:
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic, "generate", interrupted)
    result = run_cli("synth", tmp_path / "x")
    assert result.code == 130
    assert "x.partial/" in result.err and "run the same command again" in result.err
