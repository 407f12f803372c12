"""Checks that a run directory's files are what `reidbench run` wrote (issue #14 item 4).

`reidbench run` refuses a pairs file whose content hash does not match; `report`
recomputes from the same files, so it must refuse the same edits: a changed pair, a
score outside the system's scale (NaN, 1e9, -50 on 0-100), an unknown status or
decision, a duplicated row. Each refusal is one line naming the file and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reidbench.errors import UserError
from reidbench.pairs import pairset_hash  # the pair stage's one definition of the hash
from reidbench.tables import DECISIONS

SCALE_SLACK = 1e-9  # relative: (cosine + 1) / 2 may land a rounding error outside [0, 1]


def check_pairs_hash(path: Path, table: pa.Table, meta: dict[str, Any], run: dict) -> str | None:
    """Refuse edited pairs; returns a note when the directory predates stored hashes."""
    stored = meta.get("content_hash")
    recorded = (run.get("pairs") or {}).get("content_hash")
    if not stored:
        return (
            f"{path.name} carries no content hash (written before hashes were stored): not verified"
        )
    actual = pairset_hash(table)
    if actual != stored:
        raise UserError(
            f"{path}: content hash mismatch (stored {str(stored)[:12]}, pairs give "
            f"{actual[:12]}): the pairs changed after the run; restore the file or re-run "
            "`reidbench run` into a fresh directory"
        )
    if recorded and recorded != stored:
        raise UserError(
            f"{path}: content hash {str(stored)[:12]} is not the one run.json recorded "
            f"({str(recorded)[:12]}): this pairs file belongs to another run; restore it"
        )
    return None


def check_scores(
    path: Path | str, table: pa.Table, scales: dict[str, float], where: str = "scores"
) -> None:
    """Finite scores within [0, scale] of their system, known decisions (statuses and
    duplicates are checked where the rows are split by system)."""
    if table.num_rows == 0:
        return
    score = table.column("score")
    nan = pc.fill_null(pc.is_nan(pc.cast(score, pa.float64())), False)
    values = np.asarray(pc.cast(score, pa.float64()).to_numpy(zero_copy_only=False), np.float64)
    systems = np.asarray(table.column("system").to_pylist(), dtype=object)
    bad_nan = np.asarray(nan.to_numpy(zero_copy_only=False), bool)
    if bad_nan.any():
        i = int(np.flatnonzero(bad_nan)[0])
        raise UserError(
            f"{path}: system {systems[i]!r} has a NaN score (pair_id "
            f"{table.column('pair_id')[i].as_py()}); a missing score is stored empty, not NaN. "
            "The file was edited: re-run `reidbench run` into a fresh directory"
        )
    for name in dict.fromkeys(systems.tolist()):
        scale = scales.get(str(name))
        if scale is None:
            continue
        s = values[systems == name]
        s = s[~np.isnan(s)]
        slack = SCALE_SLACK * max(scale, 1.0)
        out = (s < -slack) | (s > scale + slack) | ~np.isfinite(s)
        if out.any():
            raise UserError(
                f"{path}: system {name!r} has {int(out.sum())} scores outside its scale "
                f"0-{scale:g} (e.g. {s[out][0]:g}); the file was edited or the system's `scale` "
                "in run.json is wrong: re-run `reidbench run` into a fresh directory"
            )
    decisions = sorted(set(table.column("decision").to_pylist()) - {*DECISIONS, None})
    if decisions:
        raise UserError(
            f"{path}: unknown decision values {decisions}; expected one of {list(DECISIONS)}. "
            "The file was edited: re-run `reidbench run` into a fresh directory"
        )
