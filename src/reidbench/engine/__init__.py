"""Where work runs: locally (the default) or on a Ray cluster (`reidbench[ray]`).

`session(kind, address)` opens an engine for a block of work and makes it the
current one; the stages that can run distributed (feature extraction, retrieval
query blocks) ask `current_engine()`. The driver process always owns the SQLite
caches: workers return results and the driver writes them (docs/scale.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from reidbench.engine.base import ENGINE_KINDS, Engine
from reidbench.engine.context import current_engine, using
from reidbench.errors import UserError

__all__ = ["ENGINE_KINDS", "Engine", "current_engine", "make_engine", "session", "using"]


def make_engine(kind: str, address: str | None = None) -> Engine | None:
    """An engine of `kind` (None for local); `address` is a Ray cluster address."""
    if kind == "local":
        if address:
            raise UserError(
                f"--ray-address {address} was given with the local engine; add --engine ray"
            )
        return None
    if kind == "ray":
        from reidbench.engine.ray_engine import RayEngine

        return RayEngine(address=address)
    raise UserError(f"unknown engine {kind!r}; use one of {', '.join(ENGINE_KINDS)}")


@contextlib.contextmanager
def session(kind: str = "local", address: str | None = None) -> Iterator[Engine | None]:
    """Open the engine, make it current for the block, close it after (a no-op for local)."""
    engine = make_engine(kind, address)
    try:
        with using(engine):
            yield engine
    finally:
        if engine is not None:
            engine.close()
