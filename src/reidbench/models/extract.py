"""Batched feature extraction: hash, look up the cache, decode in threads, embed.

Decoding and per-image preparation (PIL decode + resize, or the hand-crafted
descriptor) run in a thread pool one batch ahead of the model, so the next
batch is ready when the current one finishes (PIL and numpy release the GIL
for most of that work). Images with identical bytes are embedded once.
Each computed batch is written to the cache before the next starts, so an
interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from reidbench.models.base import Embedder
from reidbench.models.feature_cache import FeatureCache
from reidbench.models.preprocess import decode_image, read_bytes
from reidbench.progress import Progress, reporting


def _hash_file(path: Path) -> str:
    return hashlib.sha256(read_bytes(path)).hexdigest()


def _prepare(embedder: Embedder, path: Path) -> np.ndarray:
    return embedder.prepare(decode_image(read_bytes(path), path))


def extract_features(
    embedder: Embedder,
    paths: Sequence[str | os.PathLike[str]],
    *,
    batch_size: int = 64,
    cache: FeatureCache | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
    stats: dict[str, int] | None = None,
) -> np.ndarray:
    """(len(paths), embedder.dim) float32 features, rows L2-normalised, in input order.

    `stats`, when given, receives counts: images, unique (distinct contents), cached
    (unique contents served by the cache) and computed (embedded now).
    """
    from reidbench.engine.context import current_engine

    engine = current_engine()
    if engine is not None:  # a distributed engine is active (reidbench.engine.session)
        return engine.extract_features(
            embedder, paths, batch_size=batch_size, cache=cache, progress=progress, stats=stats
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
            digests = list(pool.map(_hash_file, files))
            where: dict[str, list[int]] = {}
            for i, digest in enumerate(digests):
                where.setdefault(digest, []).append(i)
            cached = cache.get_many(fingerprint, where, embedder.dim) if cache else {}
            for digest, vec in cached.items():
                out[where[digest]] = vec
            hits = sum(len(where[d]) for d in cached)
            if hits:
                bar.advance(hits, cached=hits)
            todo = [d for d in where if d not in cached]
            if stats is not None:
                stats.update(
                    images=len(files), unique=len(where), cached=len(cached), computed=len(todo)
                )
            batches = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]

            def submit(batch: list[str]) -> list[Future[np.ndarray]]:
                return [pool.submit(_prepare, embedder, files[where[d][0]]) for d in batch]

            pending = submit(batches[0]) if batches else []
            for k, batch in enumerate(batches):
                prepared = [f.result() for f in pending]
                pending = submit(batches[k + 1]) if k + 1 < len(batches) else []
                feats = embedder.embed_prepared(np.stack(prepared))
                for digest, vec in zip(batch, feats, strict=True):
                    out[where[digest]] = vec
                if cache is not None:
                    cache.put_many(
                        fingerprint, dict(zip(batch, feats, strict=True)), embedder.describe()
                    )
                bar.advance(sum(len(where[d]) for d in batch))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return out
