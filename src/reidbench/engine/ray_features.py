"""Feature extraction as a Ray Data pipeline; the driver keeps the feature cache.

    file list -> sha256 (CPU tasks) -> driver: cache look-up
    missing contents -> read + decode + prepare (CPU tasks)
                     -> embed (actor pool: one model per actor, a GPU each where the
                        cluster has GPUs) -> driver: batched cache writes

Keys, de-duplication by content and the cache are those of the local
`extract_features`, so a Ray run and a local run reuse each other's features.
Workers never touch SQLite: they return rows and the driver writes them, once
per content hash even if Ray retries a task after a worker or actor died (Ray
Data restarts dead actors and retries their tasks by default). Rows carry
(path, camid) so camera-aware embedders can take the camera id.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reidbench.engine.ray_import import import_ray
from reidbench.errors import UserError
from reidbench.models.base import Embedder, TorchEmbedder
from reidbench.models.cache_writer import BackgroundWriter
from reidbench.models.decode import preparer_of
from reidbench.models.extract import WRITE_ROWS, serve_from_cache
from reidbench.models.feature_cache import FeatureCache
from reidbench.models.preprocess import decode_image, read_bytes
from reidbench.progress import Progress, reporting

DECODE_TASK_MEMORY = 384 << 20  # per decode task; Ray measured ~290 MiB (worker + torch + batch)


def _hash_batch(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    digests = [hashlib.sha256(read_bytes(Path(p))).hexdigest() for p in batch["path"]]
    return {"i": batch["i"], "digest": np.array(digests, dtype=object)}


def _prepare_batch(batch: dict[str, np.ndarray], preparer: Any) -> dict[str, np.ndarray]:
    prepared = [preparer.prepare(decode_image(read_bytes(Path(p)), p)) for p in batch["path"]]
    return {"digest": batch["digest"], "camid": batch["camid"], "prepared": np.stack(prepared)}


def embed_batch(embedder: Embedder, prepared: np.ndarray, camids: np.ndarray) -> np.ndarray:
    """`embed_prepared`, passing camera ids to embedders that take them (SIE models)."""
    cams = np.asarray(camids)
    if getattr(embedder, "uses_camids", False) and cams.size and (cams >= 0).all():
        return embedder.embed_prepared(prepared, [int(c) for c in cams])
    return embedder.embed_prepared(prepared)


class EmbedActor:
    """One model per actor; moved to the actor's GPU when Ray gave it one."""

    def __init__(self, embedder_ref: Any, cpu_share: int | None = None) -> None:
        import ray

        self.embedder: Embedder = ray.get(embedder_ref)
        if cpu_share:  # CPU-only: 1/cpu_share of this node's cores (Ray would give it one)
            import torch

            torch.set_num_threads(max(1, (os.cpu_count() or 1) // cpu_share))
        if isinstance(self.embedder, TorchEmbedder) and ray.get_gpu_ids():
            import torch

            device = torch.device("cuda")  # Ray sets CUDA_VISIBLE_DEVICES to the actor's GPU
            self.embedder.model.to(device)
            self.embedder.device = device

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feats = embed_batch(self.embedder, np.asarray(batch["prepared"]), batch["camid"])
        return {"digest": batch["digest"], "feature": feats}


def _user_error(exc: BaseException) -> UserError | None:
    """The UserError a worker raised (a bad image file), unwrapped from Ray's exceptions."""
    from ray.exceptions import RayTaskError

    seen = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, UserError) and not isinstance(e, RayTaskError):
            return e  # the worker's own exception, not Ray's wrapper that subclasses it
        stack += [e.__cause__, e.__context__, getattr(e, "cause", None)]
    return None


def _plan_actors(embedder: Embedder, actors: int | None) -> dict[str, Any]:
    """Actor pool size and resources: one actor per GPU where the cluster has GPUs.
    Without GPUs, `actors` (default 1) actors reserve one CPU each but run torch on
    their share of the CPUs, as the local engine does: decoding is a few per cent of a
    network's cost on a CPU, and the decode tasks take the reserved CPUs left over."""
    ray = import_ray()
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    if gpus and isinstance(embedder, TorchEmbedder):
        return {"size": actors or gpus, "num_gpus": 1, "num_cpus": 1, "cpu_share": None}
    size = actors or 1
    return {"size": size, "num_gpus": 0, "num_cpus": 1, "cpu_share": size}


def ray_extract_features(
    embedder: Embedder,
    paths: Sequence[str | os.PathLike[str]],
    *,
    batch_size: int = 64,
    cache: FeatureCache | None = None,
    progress: Progress | None = None,
    stats: dict[str, int] | None = None,
    camids: Sequence[int] | None = None,
    actors: int | None = None,
) -> np.ndarray:
    """`models.extract_features` on Ray: same rows, same cache keys, the driver writes."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    ray = import_ray()
    files = [str(Path(p)) for p in paths]
    # Camera ids matter only to camera-aware (SIE) embedders; -1 = none given.
    use_cams = camids is not None and getattr(embedder, "uses_camids", False)
    cams = [int(c) for c in camids] if use_cams and camids is not None else [-1] * len(files)
    if len(cams) != len(files):
        raise ValueError("camids must have one entry per path")
    out = np.zeros((len(files), embedder.dim), dtype=np.float32)
    if not files:
        if stats is not None:
            stats.update(images=0, unique=0, cached=0, computed=0)
        return out
    fingerprint = embedder.fingerprint
    try:
        with reporting(progress, f"features {embedder.name}", len(files)) as bar:
            digests = _hash_files(ray, files)
            # The same cache keys as the local path: (content[, camera]).
            where, todo = serve_from_cache(
                embedder, digests, cams if use_cams else None, cache, out, bar, stats
            )
            if not todo:
                return out
            rows = [
                {"digest": d, "path": files[where[d][0]], "camid": cams[where[d][0]]} for d in todo
            ]
            plan = _plan_actors(embedder, actors)
            embedder_ref = ray.put(embedder)  # held here: restarted actors fetch it again
            ds = (
                ray.data.from_items(rows)
                .map_batches(
                    _prepare_batch,
                    fn_kwargs={"preparer": preparer_of(embedder)},
                    batch_size=batch_size,
                    batch_format="numpy",
                    # A memory reservation of its own also keeps Ray Data from fusing decoding
                    # into the embedding actors (fusion needs equal remote args): CPU tasks
                    # decode while the actors only run the model.
                    memory=DECODE_TASK_MEMORY,
                )
                .map_batches(
                    EmbedActor,
                    fn_constructor_kwargs={
                        "embedder_ref": embedder_ref,
                        "cpu_share": plan["cpu_share"],
                    },
                    batch_size=batch_size,
                    batch_format="numpy",
                    compute=ray.data.ActorPoolStrategy(size=plan["size"]),
                    num_gpus=plan["num_gpus"],
                    num_cpus=plan["num_cpus"],
                )
            )
            done: set[str] = set()
            writer = (
                BackgroundWriter(cache, fingerprint, embedder.describe(), WRITE_ROWS)
                if cache is not None
                else None
            )
            try:
                for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                    fresh: dict[str, np.ndarray] = {}
                    for digest, vec in zip(batch["digest"], batch["feature"], strict=True):
                        digest = str(digest)
                        if digest in done or digest in fresh:
                            continue  # a retried task returned it again: keep the first
                        fresh[digest] = np.asarray(vec, dtype=np.float32)
                        out[where[digest]] = fresh[digest]
                    done.update(fresh)
                    if writer is not None:
                        writer.add(fresh)
                    bar.advance(sum(len(where[d]) for d in fresh))
            finally:  # what reached the driver is stored, even when the run stops here
                if writer is not None:
                    writer.close()
            missing = [d for d in todo if d not in done]
            if missing:  # Ray Data lost rows: never hand back zeros as features
                raise RuntimeError(f"ray pipeline returned no feature for {len(missing)} images")
    except Exception as exc:
        user = _user_error(exc)
        if user is not None and user is not exc:
            raise UserError(user.message) from None
        raise
    return out


def _hash_files(ray: Any, files: list[str]) -> list[str]:
    ds = ray.data.from_items([{"i": i, "path": p} for i, p in enumerate(files)]).map_batches(
        _hash_batch, batch_size=256, batch_format="numpy"
    )
    digests: list[str | None] = [None] * len(files)
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        for i, digest in zip(batch["i"], batch["digest"], strict=True):
            digests[int(i)] = str(digest)
    if any(d is None for d in digests):
        raise RuntimeError("ray pipeline lost file hashes")
    return digests  # type: ignore[return-value]
