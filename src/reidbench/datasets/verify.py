"""Decode every image once to find unreadable files before an hour-long run does.

Listing never decodes (it must stay fast); verification is opt-in. Pillow
releases the GIL while decoding, so a small thread pool scales on real cores.
"""

from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from PIL import Image

from reidbench.datasets.base import SPLITS, Dataset
from reidbench.errors import UserError
from reidbench.progress import Progress, reporting

CHUNK = 128
MAX_SHOWN = 3


def _check_one(path: Path) -> str | None:
    """None when the file decodes completely, else the reason (truncation included)."""
    from reidbench.imagelimits import ENV, check_header, max_pixels

    try:
        max_pixels()  # the same limit as every other command
        with Image.open(path) as im:
            check_header(im, path)
            im.load()
    except (UserError, Image.DecompressionBombError):
        return f"image too large (the limit is {max_pixels():,} pixels; raise {ENV})"
    except Exception as exc:  # Pillow raises many types for bad data; all mean "unreadable"
        return " ".join(f"{type(exc).__name__}: {exc}".split())  # one line, always
    return None


def _check_chunk(paths: list[tuple[str, Path]]) -> list[tuple[str, str]]:
    bad = []
    for rel, path in paths:
        reason = _check_one(path)
        if reason is not None:
            bad.append((rel, reason))
    return bad


def verify_images(
    dataset: Dataset, *, progress: Progress | None = None, workers: int | None = None
) -> list[tuple[str, str]]:
    """(relative path, reason) for every image of every split that does not decode, sorted."""
    seen: set[str] = set()
    todo: list[tuple[str, Path]] = []
    for split in SPLITS:
        for record in dataset.split(split):
            if record.path not in seen:
                seen.add(record.path)
                todo.append((record.path, dataset.abspath(record)))
    chunks = [todo[i : i + CHUNK] for i in range(0, len(todo), CHUNK)]
    workers = workers or min(8, os.cpu_count() or 1)
    bad: list[tuple[str, str]] = []
    with reporting(progress, "verifying images", len(todo)) as bar:
        pool = ThreadPoolExecutor(max_workers=workers)
        try:
            pending: dict[Future[list[tuple[str, str]]], int] = {}
            for chunk in chunks:
                pending[pool.submit(_check_chunk, chunk)] = len(chunk)
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    bad.extend(future.result())
                    bar.advance(pending.pop(future), unreadable=len(bad))
        finally:
            # On Ctrl-C do not wait for the queued chunks: verification has no state to keep.
            pool.shutdown(wait=False, cancel_futures=True)
    return sorted(bad)


def require_readable(dataset: Dataset, *, progress: Progress | None = None) -> int:
    """Raise a one-line UserError naming the first unreadable images; return the count checked."""
    bad = verify_images(dataset, progress=progress)
    if bad:
        shown = ", ".join(f"{dataset.root / rel} ({reason})" for rel, reason in bad[:MAX_SHOWN])
        more = f" and {len(bad) - MAX_SHOWN} more" if len(bad) > MAX_SHOWN else ""
        raise UserError(
            f"{len(bad)} unreadable image(s) in {dataset.root}: {shown}{more}; "
            "re-extract the dataset or remove those files"
        )
    return len({r.path for s in SPLITS for r in dataset.split(s)})
