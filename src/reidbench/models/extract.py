"""Batched feature extraction: hash, look up the cache, decode ahead, embed.

Decoding and per-image preparation (PIL decode + resize, or the hand-crafted
descriptor) run a few batches ahead of the model (`models.decode`: threads for
small jobs, worker processes for large ones), so the next batch is ready when
the current one finishes. Images with identical bytes are embedded once.
Computed rows go to the cache in transactions of `WRITE_ROWS`, written by a
background thread while the model runs, and whatever was computed is written
when a run stops early, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from reidbench.models.base import Embedder
from reidbench.models.cache_writer import BackgroundWriter
from reidbench.models.decode import BatchDecoder
from reidbench.models.feature_cache import FeatureCache
from reidbench.models.preprocess import read_bytes
from reidbench.progress import Progress, reporting

# Feature rows per cache transaction (the cache's cost: bench/bench_scale.py).
WRITE_ROWS = 4096


def _hash_file(path: Path) -> str:
    return hashlib.sha256(read_bytes(path)).hexdigest()


def serve_from_cache(
    embedder: Embedder,
    digests: Sequence[str],
    cams: Sequence[int] | None,
    cache: FeatureCache | None,
    out: np.ndarray,
    bar: Any,
    stats: dict[str, int] | None,
) -> tuple[dict[str, list[int]], list[str]]:
    """Fill `out` from the cache; return each key's rows and the keys still to embed.

    The one definition of the feature cache key, shared by every engine so that their
    runs reuse each other's features: the content hash, plus the camera id for
    camera-aware (SIE) embedders (`cams` given)."""
    if cams is not None:
        digests = [f"{d}:cam{int(c)}" for d, c in zip(digests, cams, strict=True)]
    where: dict[str, list[int]] = {}
    for i, digest in enumerate(digests):
        where.setdefault(digest, []).append(i)
    cached = cache.get_many(embedder.fingerprint, where, embedder.dim) if cache else {}
    for digest, vec in cached.items():
        out[where[digest]] = vec
    hits = sum(len(where[d]) for d in cached)
    if hits:
        bar.advance(hits, cached=hits)
    todo = [d for d in where if d not in cached]
    if stats is not None:
        stats.update(images=len(out), unique=len(where), cached=len(cached), computed=len(todo))
    return where, todo


def extract_features(
    embedder: Embedder,
    paths: Sequence[str | os.PathLike[str]],
    *,
    batch_size: int = 64,
    cache: FeatureCache | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
    stats: dict[str, int] | None = None,
    camids: Sequence[int] | None = None,
) -> np.ndarray:
    """(len(paths), embedder.dim) float32 features, rows L2-normalised, in input order.

    `camids` (0-based, one per path) reach embedders whose features depend on the camera
    (`uses_camids`); their cache key is then (content hash, camera id).

    `stats`, when given, receives counts: images, unique (distinct contents), cached
    (unique contents served by the cache) and computed (embedded now).
    """
    from reidbench.engine.context import current_engine

    engine = current_engine()
    if engine is not None:  # a distributed engine is active (reidbench.engine.session)
        return engine.extract_features(
            embedder,
            paths,
            batch_size=batch_size,
            cache=cache,
            progress=progress,
            stats=stats,
            camids=camids,
        )
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    files = [Path(p) for p in paths]
    out = np.zeros((len(files), embedder.dim), dtype=np.float32)
    if not files:
        if stats is not None:
            stats.update(images=0, unique=0, cached=0, computed=0)
        return out
    fingerprint = embedder.fingerprint
    n_workers = workers or min(8, (os.cpu_count() or 1) + 2)
    pool = ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="reidbench-decode")
    try:
        with reporting(progress, f"features {embedder.name}", len(files)) as bar:
            cams = list(camids) if camids is not None and embedder.uses_camids else None
            if cams is not None and len(cams) != len(files):
                raise ValueError(f"{len(files)} paths but {len(cams)} camera ids")
            digests = list(pool.map(_hash_file, files))
            where, todo = serve_from_cache(embedder, digests, cams, cache, out, bar, stats)
            batches = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
            decoder = BatchDecoder(embedder, len(todo), workers)
            writer = (
                BackgroundWriter(cache, fingerprint, embedder.describe(), WRITE_ROWS)
                if cache is not None
                else None
            )
            try:
                ahead = deque(
                    decoder.submit([files[where[d][0]] for d in b])
                    for b in batches[: decoder.in_flight]
                )
                for k, batch in enumerate(batches):
                    prepared = ahead.popleft().result()
                    if k + decoder.in_flight < len(batches):  # keep the decoders busy
                        nxt = batches[k + decoder.in_flight]
                        ahead.append(decoder.submit([files[where[d][0]] for d in nxt]))
                    if cams is None:
                        feats = embedder.embed_prepared(prepared)
                    else:
                        feats = embedder.embed_prepared(
                            prepared, [cams[where[d][0]] for d in batch]
                        )
                    for digest, vec in zip(batch, feats, strict=True):
                        out[where[digest]] = vec
                    if writer is not None:
                        writer.add(dict(zip(batch, feats, strict=True)))
                    bar.advance(sum(len(where[d]) for d in batch))
            finally:
                try:  # whatever was computed is stored, even when the run stops here
                    if writer is not None:
                        writer.close()
                finally:
                    decoder.close()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return out
