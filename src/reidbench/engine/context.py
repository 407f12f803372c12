"""Which engine the current call tree runs on (a context variable, set by `engine.session`).

Stages deep in the call tree (feature extraction under pair scoring, hard-negative
mining, retrieval) ask `current_engine()` instead of threading an engine argument
through every signature. `None` means the local engine: the default, and the one
tests and library callers get unless they open a session.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reidbench.engine.base import Engine

_CURRENT: ContextVar[Engine | None] = ContextVar("reidbench_engine", default=None)


def current_engine() -> Engine | None:
    """The active non-local engine, or None (run locally)."""
    return _CURRENT.get()


@contextlib.contextmanager
def using(engine: Engine | None) -> Iterator[Engine | None]:
    """Make `engine` the current one inside the block (None: local)."""
    token = _CURRENT.set(engine)
    try:
        yield engine
    finally:
        _CURRENT.reset(token)
