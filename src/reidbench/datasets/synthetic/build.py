"""Synthetic pedestrians in the exact Market-1501 layout: the offline default dataset.

The images are procedural renderings of made-up people, not photographs: good for
offline pipeline checks and for separating methods, useless for predicting accuracy
on real cameras. The marker file `reidbench-synthetic.json` at the dataset root says
so, and the loaders turn it into `Dataset.synthetic = True`.

Determinism: every random choice comes from a `numpy` Generator seeded by a
`SeedSequence` of (seed, stream, key...), e.g. one image from (seed, render, pid,
cam, frame). The output therefore does not depend on iteration order, and the same
seed gives byte-identical files (with the same Pillow/libjpeg build).

Crash safety: images go to `OUT.partial/`, which is renamed to OUT only after the
marker is written there, so a dataset that looks complete is complete. An
interrupted run resumes: complete images already in `OUT.partial/` are kept, a
torn one (no JPEG end marker) is made again.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import PIL
from PIL import Image

from reidbench import __version__
from reidbench.datasets.attributes import ATTRIBUTES_FILE, synthetic_attributes, write_attributes
from reidbench.datasets.synthetic.camera import (
    HEIGHT,
    WIDTH,
    CameraProfile,
    Shot,
    Track,
    camera_strata,
    make_camera,
    render_shot,
    sample_shot,
    sample_track,
)
from reidbench.datasets.synthetic.identity import Identity, sample_identity
from reidbench.datasets.synthetic.names import IDENTITIES_FILE
from reidbench.datasets.synthetic.scene import make_campus
from reidbench.errors import UserError
from reidbench.files import write_json_atomic
from reidbench.progress import Progress, reporting

GENERATOR = "reidbench.synthetic"
# Bump when the same parameters would give different pixels: old sets then need --force.
GENERATOR_VERSION = 1
MARKER = "reidbench-synthetic.json"
PLAN_FILE = ".reidbench-synthetic-plan.json"  # inside OUT.partial/ only
FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
NOTE = (
    "These images are synthetic renderings of procedurally generated people made by "
    "`reidbench synth`; they are not photographs of real people, and accuracy measured "
    "on them does not predict accuracy on real camera footage."
)

DEFAULT_TRAIN_IDS = 100
DEFAULT_TEST_IDS = 100
MAX_IDS = 9999  # four-digit person ids in Market-style file names
MAX_CAMERAS = 9  # one-digit camera ids (`c\d` in the torchreid file-name pattern)
DISTRACTOR_RATE = 0.12  # distractor (0000) images per identity gallery image
JUNK_RATE = 0.08  # junk (-1) images per identity gallery image

# Independent random streams: (seed, stream, ...) keys never collide across uses.
_SPLIT, _IDENTITY, _PLAN, _CAMERA, _TRACK, _SHOT, _DISTRACTOR, _JUNK, _CAMPUS = range(1, 10)


@dataclass(frozen=True, slots=True)
class Job:
    """One file to write. `key` and `frame` select its random streams, so jobs are
    independent of each other and of the order they run in."""

    split: str  # "train" | "query" | "gallery"
    name: str
    kind: str  # "identity" | "distractor" | "junk"
    key: int  # pid for identities, running number for distractors and junk
    cam: int  # 1-based
    frame: int  # position in the track: consecutive frames look alike
    pid: int  # as written in the name: pid, 0 (distractor) or -1 (junk)


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


def _camera_count_weights(cameras: int) -> np.ndarray:
    # Most people pass 2-4 cameras, few pass all of them (as in Market-1501).
    w = np.array([0.7 ** (k - 2) for k in range(2, cameras + 1)])
    return w / w.sum()


class _Names:
    """Market-style names, unique per folder: `{pid:04d}_c{cam}s{seq}_{frame:06d}_{idx:02d}.jpg`."""

    def __init__(self) -> None:
        self._used: set[tuple[str, str]] = set()

    def make(self, split: str, pid: int, cam: int, seq: int, frame: int, idx: int) -> str:
        tag = "-1" if pid < 0 else f"{pid:04d}"
        while True:
            name = f"{tag}_c{cam}s{seq}_{frame:06d}_{idx:02d}.jpg"
            if (split, name) not in self._used:
                self._used.add((split, name))
                return name
            frame = (frame + 1) % 1_000_000  # two detections cannot share a frame and box


def _plan(seed: int, train_ids: int, test_ids: int, cameras: int) -> list[Job]:
    """Every file of the dataset, in a fixed order. Cheap: no pixels, only choices."""
    pids = _rng(seed, _SPLIT).permutation(np.arange(1, train_ids + test_ids + 1))
    train_pids = sorted(int(p) for p in pids[:train_ids])
    test_pids = sorted(int(p) for p in pids[train_ids:])
    weights = _camera_count_weights(cameras)
    names = _Names()
    jobs: list[Job] = []
    for split_of_pid, pid_list in (("train", train_pids), ("test", test_pids)):
        for pid in pid_list:
            rng = _rng(seed, _PLAN, pid)
            n_cams = 2 + int(rng.choice(len(weights), p=weights))
            for cam in sorted(int(c) + 1 for c in rng.choice(cameras, n_cams, replace=False)):
                # Test ids need >= 2 frames per camera: one query, >= 1 gallery image.
                n = int(rng.integers(1, 5)) if split_of_pid == "train" else int(rng.integers(2, 5))
                query_at = int(rng.integers(n)) if split_of_pid == "test" else -1
                seq = int(rng.integers(1, 7))
                frame = int(rng.integers(100, 150_000))
                for k in range(n):
                    split = (
                        split_of_pid
                        if split_of_pid == "train"
                        else ("query" if k == query_at else "gallery")
                    )
                    name = names.make(split, pid, cam, seq, frame, int(rng.integers(1, 5)))
                    jobs.append(Job(split, name, "identity", pid, cam, k, pid))
                    frame += int(rng.integers(8, 60))
    identity_gallery = sum(1 for j in jobs if j.split == "gallery")
    for kind, rate, stream, pid in (
        ("distractor", DISTRACTOR_RATE, _DISTRACTOR, 0),
        ("junk", JUNK_RATE, _JUNK, -1),
    ):
        for i in range(math.ceil(rate * identity_gallery)):
            rng = _rng(seed, stream, i, 0)
            cam = int(rng.integers(1, cameras + 1))
            name = names.make(
                "gallery",
                pid,
                cam,
                int(rng.integers(1, 7)),
                int(rng.integers(100, 150_000)),
                int(rng.integers(1, 9)),
            )
            jobs.append(Job("gallery", name, kind, i, cam, 0, pid))
    return jobs


def plan_counts(jobs: list[Job], cameras: int) -> dict[str, int]:
    """Counts exactly as `Dataset.info()` reports them after loading (junk dropped)."""
    by = {s: [j for j in jobs if j.split == s and j.kind != "junk"] for s in FOLDERS}
    return {
        "train_ids": len({j.pid for j in by["train"]}),
        "train_images": len(by["train"]),
        "query_ids": len({j.pid for j in by["query"]}),
        "query_images": len(by["query"]),
        "gallery_ids": len({j.pid for j in by["gallery"]}),
        "gallery_images": len(by["gallery"]),
        "junk_dropped": sum(1 for j in jobs if j.kind == "junk"),
        "distractor_images": sum(1 for j in jobs if j.kind == "distractor"),
        "cameras": cameras,
        "files": len(jobs),
    }


class _World:
    """Identities and cameras, made on first use (each from its own seeded stream)."""

    def __init__(self, seed: int, cameras: int) -> None:
        self.seed = seed
        campus = make_campus(_rng(seed, _CAMPUS))
        strata = camera_strata(_rng(seed, _CAMPUS, 1), cameras)
        self.cameras = [
            make_camera(_rng(seed, _CAMERA, c), c, campus, strata[c - 1])
            for c in range(1, cameras + 1)
        ]
        self._people: dict[tuple[str, int], Identity] = {}
        self._tracks: dict[tuple[str, int, int], Track] = {}

    def person(self, kind: str, key: int) -> Identity:
        found = self._people.get((kind, key))
        if found is None:
            stream = {"identity": _IDENTITY, "distractor": _DISTRACTOR, "junk": _JUNK}[kind]
            found = sample_identity(_rng(self.seed, stream, key, 1))
            self._people[(kind, key)] = found
        return found

    def render(self, job: Job) -> bytes:
        """The JPEG file of one job."""
        camera: CameraProfile = self.cameras[job.cam - 1]
        track = self._tracks.get((job.kind, job.key, job.cam))
        if track is None:
            track_rng = _rng(self.seed, _TRACK, _kind_code(job.kind), job.key, job.cam)
            track = self._tracks[(job.kind, job.key, job.cam)] = sample_track(track_rng, camera)
        rng = _rng(self.seed, _SHOT, _kind_code(job.kind), job.key, job.cam, job.frame)
        shot: Shot = sample_shot(rng, camera, track, job.frame)
        if job.kind == "junk":
            img = _render_junk(rng, self.person("junk", job.key), camera, shot)
        else:
            img = render_shot(self.person(job.kind, job.key), camera, shot)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=shot.quality)
        return buf.getvalue()


def _kind_code(kind: str) -> int:
    return {"identity": 1, "distractor": 2, "junk": 3}[kind]


def _render_junk(
    rng: np.random.Generator, who: Identity, camera: CameraProfile, shot: Shot
) -> Image.Image:
    """Junk as detectors make it: background only, a fragment of a body, or a body
    mostly outside the box."""
    choice = int(rng.integers(3))
    if choice == 0:
        return render_shot(None, camera, shot)
    if choice == 1:
        return render_shot(who, camera, shot, zoom=float(rng.uniform(1.8, 3.0)))
    side = 1 if rng.random() < 0.5 else -1
    return render_shot(who, camera, replace(shot, dx=side * float(rng.uniform(0.45, 0.7))))


# ---------------------------------------------------------------- files ---------------


def _parameters(train_ids: int, test_ids: int, cameras: int, seed: int) -> dict[str, object]:
    return {
        "generator": GENERATOR,
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "train_ids": train_ids,
        "test_ids": test_ids,
        "cameras": cameras,
        "image_size": [WIDTH, HEIGHT],
    }


def _validate(train_ids: int, test_ids: int, cameras: int, seed: int) -> None:
    if train_ids < 1 or test_ids < 1:
        raise UserError(f"--train-ids {train_ids} / --test-ids {test_ids}: both must be at least 1")
    if train_ids + test_ids > MAX_IDS:
        raise UserError(
            f"--train-ids + --test-ids = {train_ids + test_ids} is more than {MAX_IDS} "
            "(Market-style names have four-digit person ids); ask for fewer ids"
        )
    if not 2 <= cameras <= MAX_CAMERAS:
        raise UserError(
            f"--cameras {cameras} is out of range 2..{MAX_CAMERAS} (each person must be seen "
            "by two cameras; names allow one digit); pick a value in that range"
        )
    if not 0 <= seed < 2**63:
        raise UserError(f"--seed {seed} must be a non-negative integer below 2**63")


def _read_json(path: Path) -> dict[str, object] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def _existing_files(folder: Path) -> set[tuple[str, str]]:
    """(split, name) of the files an interrupted run left in `folder`."""
    done: set[tuple[str, str]] = set()
    for split, sub in FOLDERS.items():
        d = folder / sub
        if d.is_dir():
            done.update((split, entry.name) for entry in os.scandir(d))
    return done


_JPEG_END = b"\xff\xd9"


def _complete_jpeg(data: bytes) -> bool:
    """True when `data` ends with the JPEG end-of-image marker.

    Images are written straight to their final name (no temporary and rename: on a
    busy disk that halves the file-system cost, which rivals rendering). A file
    cut short by a kill or a crash lacks the marker: the bytes FF D9 cannot occur
    earlier in our files (entropy-coded data stuffs every FF with 00; our
    quantisation and standard Huffman tables hold no FF byte), so resuming
    re-renders exactly the torn files. OUT itself only appears, by rename, once
    everything is written.
    """
    return data.endswith(_JPEG_END)


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def _check_out(out: Path, params: dict[str, object], force: bool) -> dict[str, object] | None:
    """The existing marker when OUT is already this dataset; raise if OUT is in the way."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is not a folder; choose another OUT")
    if not out.is_dir() or _is_empty_dir(out):
        return None
    marker = _read_json(out / MARKER)
    if marker is None:
        raise UserError(
            f"{out} is not empty and holds no {MARKER}: it is not a reidbench synthetic "
            "dataset, so it is left alone; choose an empty or new folder for OUT"
        )
    if marker.get("parameters") == params:
        return marker
    if not force:
        old = marker.get("parameters")
        old = old if isinstance(old, dict) else {}
        diff = ", ".join(
            f"{k} {old.get(k)!r} -> {v!r}" for k, v in params.items() if old.get(k) != v
        )
        raise UserError(
            f"{out} already holds a synthetic dataset made with other parameters ({diff}); "
            "pass --force to replace it, or choose another OUT"
        )
    return None


def generate(
    out: Path,
    *,
    train_ids: int = DEFAULT_TRAIN_IDS,
    test_ids: int = DEFAULT_TEST_IDS,
    cameras: int = 6,
    seed: int = 0,
    force: bool = False,
    progress: Progress | None = None,
) -> dict[str, object]:
    """Write a synthetic Market-1501-layout dataset to `out` and return its counts.

    Returned keys: the `Dataset.info()` counts (`train_ids`, `train_images`,
    `query_ids`, `query_images`, `gallery_ids`, `gallery_images`, `junk_dropped`,
    `distractor_images`, `cameras`), `files` (all files incl. junk), `reused`
    (True when `out` already held exactly this dataset: nothing was written),
    `resumed` (files kept from an interrupted earlier run) and `content_sha256`.
    `force` replaces an existing synthetic dataset made with other parameters;
    a non-empty folder that is not a synthetic dataset is never touched.
    """
    out = Path(out)
    _validate(train_ids, test_ids, cameras, seed)
    params = _parameters(train_ids, test_ids, cameras, seed)
    existing = _check_out(out, params, force)
    if existing is not None:
        stored: Any = existing.get("counts", {})
        counts = dict(stored)
        return {
            **counts,
            "reused": True,
            "resumed": 0,
            "content_sha256": existing.get("content_sha256"),
        }

    partial = out.with_name(out.name + ".partial")
    if partial.exists():
        plan_marker = _read_json(partial / PLAN_FILE)
        if plan_marker is None:
            raise UserError(
                f"{partial} exists but was not made by `reidbench synth`; "
                "move or remove it, then rerun"
            )
        if plan_marker.get("parameters") != params:
            shutil.rmtree(partial)  # our own unfinished scratch, for other parameters
    for sub in FOLDERS.values():
        (partial / sub).mkdir(parents=True, exist_ok=True)
    write_json_atomic(partial / PLAN_FILE, {"parameters": params})

    jobs = _plan(seed, train_ids, test_ids, cameras)
    done = _existing_files(partial)
    world = _World(seed, cameras)
    digests: dict[tuple[str, str], str] = {}
    resumed = 0
    with reporting(progress, "synthesising pedestrians", len(jobs)) as bar:
        pending = 0
        for job in jobs:
            path = partial / FOLDERS[job.split] / job.name
            data = path.read_bytes() if (job.split, job.name) in done else b""
            if _complete_jpeg(data):
                resumed += 1
            else:
                data = world.render(job)
                _write_file(path, data)
            digests[(job.split, job.name)] = hashlib.sha256(data).hexdigest()
            pending += 1
            if pending == 64:
                bar.advance(pending)
                pending = 0
        bar.advance(pending)

    counts = plan_counts(jobs, cameras)
    content = hashlib.sha256(
        "".join(f"{FOLDERS[s]}/{n} {d}\n" for (s, n), d in sorted(digests.items())).encode()
    ).hexdigest()
    _write_identities(partial / IDENTITIES_FILE, world, jobs)
    _write_attribute_truth(partial / ATTRIBUTES_FILE, world, jobs)
    marker = {
        "generator": GENERATOR,
        "generator_version": GENERATOR_VERSION,
        "reidbench_version": __version__,
        "synthetic": True,
        "note": NOTE,
        "seed": seed,
        "parameters": params,
        "counts": counts,
        "layout": "market1501",
        "file_name_pattern": "{pid:04d}_c{cam}s{seq}_{frame:06d}_{idx:02d}.jpg; "
        "pid 0000 = distractor, -1 = junk",
        "cameras": [c.describe() for c in world.cameras],
        "identities_file": IDENTITIES_FILE,
        "attributes_file": ATTRIBUTES_FILE,
        "content_sha256": content,
        "rendered_with": {"pillow": PIL.__version__, "numpy": np.__version__},
    }
    write_json_atomic(partial / MARKER, marker)
    (partial / PLAN_FILE).unlink()
    if out.exists():
        shutil.rmtree(out) if not _is_empty_dir(out) else out.rmdir()
    os.replace(partial, out)
    return {**counts, "reused": False, "resumed": resumed, "content_sha256": content}


def _write_identities(path: Path, world: _World, jobs: list[Job]) -> None:
    """Attributes of every person in the set, for error analysis by attribute."""
    rows = {}
    for job in _unique_people(jobs):
        who = world.person(job.kind, job.key)
        rows[f"{job.kind}:{job.key}"] = {
            "pid": job.pid,
            "kind": job.kind,
            "description": who.describe(),
            **who.to_dict(),
        }
    write_json_atomic(path, {"note": NOTE, "people": rows})


def _write_attribute_truth(path: Path, world: _World, jobs: list[Job]) -> None:
    """Per-identity ground truth in the Market-1501_Attribute vocabulary (docs/synthetic.md),
    what an LVLM's attribute answers are scored against (docs/tasks.md, Attributes)."""
    truth = {
        job.pid: synthetic_attributes(world.person(job.kind, job.key).to_dict())
        for job in _unique_people(jobs)
        if job.kind == "identity"
    }
    write_attributes(path, truth, "reidbench synth (generator ground truth)")


def _unique_people(jobs: list[Job]) -> Iterator[Job]:
    seen: set[tuple[str, int]] = set()
    for job in jobs:
        if (job.kind, job.key) not in seen:
            seen.add((job.kind, job.key))
            yield job
