"""Read + decode + prepare batches of images ahead of the model, in threads or processes.

PIL decoding holds the GIL for part of its work, so a thread pool tops out at
one or two cores (on a 16-core box: 1.7k img/s in threads against 18.8k in 16
processes, docs/benchmarks.md). Large jobs therefore decode in worker processes
(`forkserver`: the workers do not inherit the parent's torch threads), each
holding the embedder's preparer (a network's `Preprocess`, not its weights);
one batch is cut into chunks so every worker helps with it. Small jobs keep the
thread pool: starting processes costs more than it saves, and threads see an
embedder patched in place (tests count `prepare` calls that way).
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from reidbench.models.base import Embedder, TorchEmbedder
from reidbench.models.preprocess import decode_image, read_bytes

# Below this many images to embed, threads (process start-up would dominate).
PROCESS_MIN_IMAGES = 2048

_PREPARER: Any = None  # set once per worker process by _init_worker


def _init_worker(preparer: Any) -> None:
    global _PREPARER
    _PREPARER = preparer


def _prepare_paths(paths: Sequence[Path]) -> np.ndarray:
    return np.stack([_PREPARER.prepare(decode_image(read_bytes(p), p)) for p in paths])


def preparer_of(embedder: Embedder) -> Any:
    """What decoding needs: a network's preprocessing only, else the embedder itself."""
    return embedder.preprocess if isinstance(embedder, TorchEmbedder) else embedder


def decode_workers() -> int:
    """REIDBENCH_DECODE_WORKERS, else every CPU this process may use."""
    env = os.environ.get("REIDBENCH_DECODE_WORKERS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


class _Stacked:
    """The future of one batch: chunk futures, stacked in order on `result()`."""

    def __init__(self, parts: list[Future[np.ndarray]]) -> None:
        self.parts = parts

    def result(self) -> np.ndarray:
        return np.concatenate([p.result() for p in self.parts])


class BatchDecoder:
    """`submit(paths)` -> a future of the stacked prepared batch; `close()` when done."""

    def __init__(self, embedder: Embedder, n_images: int, workers: int | None = None) -> None:
        self.workers = workers or decode_workers()
        self.processes = False
        preparer = preparer_of(embedder)
        if n_images >= PROCESS_MIN_IMAGES and self.workers > 1 and _picklable(preparer):
            ctx = multiprocessing.get_context("forkserver")
            # The fork server imports this module (and torch) once; workers fork from it.
            ctx.set_forkserver_preload([__name__])
            self._pool: Executor = ProcessPoolExecutor(
                self.workers, mp_context=ctx, initializer=_init_worker, initargs=(preparer,)
            )
            self.processes = True
            self._prepare: Callable[[Sequence[Path]], np.ndarray] = _prepare_paths
        else:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="reidbench-decode")
            self._prepare = lambda paths: np.stack(
                [embedder.prepare(decode_image(read_bytes(p), p)) for p in paths]
            )

    @property
    def in_flight(self) -> int:
        """Batches to keep submitted ahead of the model: enough to keep every worker busy."""
        return 2 if not self.processes else max(2, self.workers // 2 + 1)

    def submit(self, paths: Sequence[Path]) -> _Stacked:
        # Threads take single images (cheap to schedule); processes take chunks (each
        # task pays a pickle round trip), at least 8 images and about one per worker.
        size = 1 if not self.processes else max(8, -(-len(paths) // self.workers))
        chunks = [list(paths[i : i + size]) for i in range(0, len(paths), size)]
        return _Stacked([self._pool.submit(self._prepare, c) for c in chunks])

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _picklable(obj: Any) -> bool:
    try:
        pickle.dumps(obj)
    except Exception:  # an embedder patched with a closure, a lambda: stay in threads
        return False
    return True
