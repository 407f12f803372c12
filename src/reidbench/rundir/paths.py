"""Where each file of a run directory lives, and the settings hash stored with a system's rows.

Its own module (not the orchestrator's) so the pre-flight, which checks which stored rows
are final, reads the same layout without importing `reidbench.experiment`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RunPaths:
    """Where each file of a run directory lives (see docs/run-directory.md)."""

    out: Path
    # Why a system was stopped by its circuit breaker (judges/breaker.py): exit code 3.
    stopped: list[str] = field(default_factory=list)
    shared_responses: Path | None = None  # `[cache] responses`: one cache for several runs
    claim_lease_s: float | None = None  # `[cache] claim_lease_s` (None: the default lease)

    @property
    def manifest(self) -> Path:
        return self.out / "run.json"

    @property
    def pairs(self) -> Path:
        return self.out / "pairs.parquet"

    @property
    def scores(self) -> Path:
        return self.out / "scores.parquet"

    @property
    def retrieval(self) -> Path:
        return self.out / "retrieval.json"

    @property
    def systems_dir(self) -> Path:
        return self.out / "systems"

    def system_scores(self, name: str) -> Path:
        return self.systems_dir / f"{safe_name(name)}.parquet"

    @property
    def cache_dir(self) -> Path:
        return self.out / "cache"

    @property
    def response_cache(self) -> Path:
        return self.shared_responses or self.cache_dir / "responses.sqlite"

    @property
    def feature_cache(self) -> Path:
        return self.cache_dir / "features"


def safe_name(name: str) -> str:
    """A system name as a file name (anything but letters, digits, `-_.` becomes `_`)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def settings_hash(obj: Any) -> str:
    """Short hash of a system's settings: stored rows are reused only under the same one."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]
