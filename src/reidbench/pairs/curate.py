"""Pair curation: labelled image pairs that every system is scored on.

The rules (see docs/pairs.md for the reasoning):
- positives share a pid and, unless allowed otherwise, come from different
  cameras; negatives have different pids and obey the same camera rule, so the
  camera pair says nothing about the label;
- distractors (pid 0, gallery only) appear only as the b image of negatives,
  and only when asked for;
- no pair appears twice, in either orientation;
- positives and negatives are each spread evenly over unordered camera pairs;
- the same dataset content, settings and seed give the same table and hash.

A pair set is a `PAIRS_SCHEMA` table plus a provenance dict whose
`content_hash` covers the pair columns, so a pairs file edited by hand, or a
CSV whose sidecar belongs to another file, is refused when read back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from reidbench.datasets.base import Dataset
from reidbench.errors import UserError
from reidbench.pairs.hard import NegativeMiner, mine_stratum, miner_features
from reidbench.pairs.pools import (
    SPLIT_CHOICES,
    Pools,
    build_pools,
    enumerate_positives,
    negative_capacity,
    pick_by_strata,
    sample_negatives,
    waterfill,
)
from reidbench.pairs.rng import StableRng
from reidbench.pairs.triplets import ALL_SAME, SPACE_AB, TWO_SAME, sample_triplets
from reidbench.tables import PAIRS_SCHEMA, read_meta, read_table, write_table

__all__ = [
    "PAIRS_FORMAT",
    "SPLIT_CHOICES",
    "NegativeMiner",
    "PairSet",
    "check_pairs_path",
    "curate_pairs",
    "pairset_hash",
    "read_pairs",
    "write_pairs",
]

PAIRS_FORMAT = "reidbench-pairs/1"
_HASH_DOMAIN = b"reidbench-pairs-v1\n"
SUFFIXES = (".parquet", ".csv")


@dataclass(frozen=True)
class PairSet:
    """A curated pair table (`tables.PAIRS_SCHEMA`, pair_id = row index) and its provenance."""

    table: pa.Table
    meta: dict[str, Any]

    def __len__(self) -> int:
        return self.table.num_rows

    @property
    def content_hash(self) -> str:
        return str(self.meta["content_hash"])

    @property
    def triplets(self) -> list[list[int]]:
        """[ab, bc, ac] pair_ids per image triplet (empty when none were asked for)."""
        return [list(t) for t in self.meta.get("triplets", [])]


# --------------------------------------------------------------------------- hashing and files


def pairset_hash(table: pa.Table) -> str:
    """sha256 over the pair columns in row order, independent of file format.

    Serialisation: the domain line, the row count, then per column of
    PAIRS_SCHEMA (in schema order) its name and a newline, followed by the
    values: integers as little-endian int64; strings as their UTF-8 byte
    lengths (little-endian int64) followed by the concatenated UTF-8 bytes.
    Parquet and CSV copies of one table therefore hash alike.
    """
    h = hashlib.sha256(_HASH_DOMAIN)
    h.update(np.int64(table.num_rows).astype("<i8").tobytes())
    for field in PAIRS_SCHEMA:
        if field.name not in table.column_names:
            raise UserError(f"pairs table lacks column {field.name!r}; re-create it")
        col = table.column(field.name)
        if col.null_count:
            raise UserError(f"pairs table has empty values in column {field.name!r}; re-create it")
        h.update(field.name.encode() + b"\n")
        if pa.types.is_string(field.type):
            encoded = [s.encode("utf-8") for s in col.to_pylist()]
            h.update(np.array([len(e) for e in encoded], dtype="<i8").tobytes())
            h.update(b"".join(encoded))
        else:
            h.update(np.asarray(col.to_numpy(), dtype="<i8").tobytes())
    return h.hexdigest()


def check_pairs_path(path: str | os.PathLike[str]) -> Path:
    """Fail early (before any work) on a pairs file name that cannot be written.

    Creates nothing: the folder is made by the write itself, so a request that
    fails later leaves no trace.
    """
    path = Path(path)
    if path.suffix not in SUFFIXES:
        raise UserError(f"{path}: pairs files end in .parquet or .csv; change the --out name")
    if path.is_dir():
        raise UserError(f"{path}: is a folder; give --out a file name ending in .parquet or .csv")
    parent = path.parent
    probe = parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(
            f"{parent}: cannot create the output folder ({probe} is a file); "
            "choose another --out location"
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(f"{probe}: output folder is not writable; choose another --out location")
    return path


def _conform(table: pa.Table) -> pa.Table:
    missing = [n for n in PAIRS_SCHEMA.names if n not in table.column_names]
    if missing:
        raise UserError(f"pairs table lacks columns {missing}; re-create it with reidbench pairs")
    return table.select(PAIRS_SCHEMA.names).cast(PAIRS_SCHEMA)


def write_pairs(path: str | os.PathLike[str], pairset: PairSet) -> str:
    """Write atomically (Parquet, or CSV + `.meta.json` sidecar); return the content hash.

    The hash is recomputed from the table being written, so the stored hash
    always matches the stored pairs.
    """
    path = check_pairs_path(path)
    table = _conform(pairset.table)
    digest = pairset_hash(table)
    meta = {**pairset.meta, "content_hash": digest}
    try:
        write_table(path, table, meta)
    except OSError as exc:
        raise UserError(
            f"{path}: cannot write the pairs file ({exc.strerror or exc}); "
            "choose a writable --out location"
        ) from exc
    return digest


def read_pairs(path: str | os.PathLike[str]) -> PairSet:
    """Read a pairs file and check its content hash (a mismatch is a UserError)."""
    path = Path(path)
    table = read_table(path, schema=PAIRS_SCHEMA)
    meta = read_meta(table)
    stored = meta.get("content_hash")
    if not stored:
        where = " (its .meta.json sidecar is missing)" if path.suffix == ".csv" else ""
        raise UserError(
            f"{path}: no content hash stored with these pairs{where}; "
            "re-create the file with reidbench pairs"
        )
    table = _conform(table)
    actual = pairset_hash(table)
    if actual != stored:
        raise UserError(
            f"{path}: content hash mismatch (stored {stored[:12]}, pairs give {actual[:12]}): "
            "the pairs changed after curation; re-create the file with reidbench pairs"
        )
    return PairSet(table, meta)


# --------------------------------------------------------------------------- curation


def _records_hash(pools: Pools) -> str:
    h = hashlib.sha256()
    sides = (("ab", pools.a),) if pools.unordered else (("a", pools.a), ("b", pools.b))
    for name, side in sides:
        for r in side.records:
            h.update(f"{name}\t{r.path}\t{r.pid}\t{r.camid}\n".encode())
    return h.hexdigest()


def _check_counts(positives: int, negatives: int, triplets: int, hard_fraction: float) -> None:
    for name, value in (("positives", positives), ("negatives", negatives)):
        if int(value) != value or value < 0:
            raise UserError(f"--{name} must be a whole number >= 0 (got {value})")
    if int(triplets) != triplets or triplets < 0:
        raise UserError(f"--triplets must be a whole number >= 0 (got {triplets})")
    if positives + negatives + triplets == 0:
        raise UserError("nothing to curate: ask for --positives, --negatives or --triplets above 0")
    if not 0.0 <= hard_fraction <= 1.0:
        raise UserError(f"hard_fraction must lie in [0, 1] (got {hard_fraction})")


def _camera_rule(pools: Pools) -> str:
    return "same-camera allowed" if pools.same_camera else "cross-camera"


def _too_many_positives(dataset: Dataset, pools: Pools, asked: int, have: int) -> UserError:
    hint = ""
    if not pools.same_camera:
        more = enumerate_positives(pools, True)[0].size
        if more > have:
            hint = f" ({more} with --same-camera / same_camera_positives)"
    return UserError(
        f"{dataset.root}: asked for {asked} positive pairs, but the {pools.split} split has only "
        f"{have} {_camera_rule(pools)} positive pairs{hint}; ask for fewer --positives"
    )


def _too_many_negatives(dataset: Dataset, pools: Pools, asked: int, have: int) -> UserError:
    hints = []
    if not pools.same_camera:
        more = int(negative_capacity(dataclasses.replace(pools, same_camera=True)).sum())
        if more > have:
            hints.append(f"{more} with --same-camera / same_camera_positives")
    if pools.distractors_left_out:
        hints.append(
            f"{pools.distractors_left_out} distractor images usable with "
            "--distractors / distractor_negatives"
        )
    hint = f" ({'; '.join(hints)})" if hints else ""
    return UserError(
        f"{dataset.root}: asked for {asked} negative pairs, but the {pools.split} split has only "
        f"{have} {_camera_rule(pools)} negative pairs{hint}; ask for fewer --negatives"
    )


def _named_counts(pools: Pools, counts: np.ndarray) -> dict[str, int]:
    return {pools.stratum_name(int(s)): int(counts[s]) for s in np.flatnonzero(counts)}


def _choose_negatives(
    pools: Pools,
    alloc: np.ndarray,
    capacity: np.ndarray,
    seed: int,
    miner: NegativeMiner | None,
    hard_fraction: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Negative keys per stratum (hard first, then random) and a hard flag per key."""
    total = int(alloc.sum())
    hard_alloc = np.zeros_like(alloc)
    feats_a = feats_b = None
    if miner is not None and total:
        n_hard = int(np.floor(hard_fraction * total + 0.5))
        hard_alloc = waterfill(alloc, n_hard, StableRng(seed, "negatives/hard-split"))
        if n_hard:
            if pools.unordered:
                feats_a = feats_b = miner_features(miner, pools.a.records)
            else:
                both = miner_features(miner, pools.a.records + pools.b.records)
                feats_a, feats_b = both[: len(pools.a)], both[len(pools.a) :]
    keys: list[np.ndarray] = []
    hard: list[np.ndarray] = []
    for stratum in np.flatnonzero(alloc):
        s = int(stratum)
        hard_keys = np.zeros(0, dtype=np.int64)
        if hard_alloc[s]:
            assert feats_a is not None and feats_b is not None  # mined when n_hard > 0
            rng = StableRng(seed, f"negatives/hard/{s}")
            hard_keys = mine_stratum(pools, s, int(hard_alloc[s]), feats_a, feats_b, rng)
        rng = StableRng(seed, f"negatives/random/{s}")
        rest = int(alloc[s]) - hard_keys.size
        random_keys = sample_negatives(pools, s, rest, int(capacity[s]), hard_keys, rng)
        keys += [hard_keys, random_keys]
        hard += [np.ones(hard_keys.size, bool), np.zeros(random_keys.size, bool)]
    if not keys:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    return np.concatenate(keys), np.concatenate(hard)


def curate_pairs(
    dataset: Dataset,
    *,
    positives: int,
    negatives: int,
    seed: int = 0,
    split: str = "query-gallery",
    same_camera_positives: bool = False,
    distractor_negatives: bool = False,
    triplets: int = 0,
    negative_miner: NegativeMiner | None = None,
    hard_fraction: float = 0.5,
) -> PairSet:
    """Draw a balanced, seeded, duplicate-free set of labelled pairs from one split.

    `split`: "query-gallery" (a = query image, b = gallery image; the study's
    setting), "test" (query and gallery as one pool) or "train".
    `same_camera_positives` lets pairs (positive and negative alike) share a
    camera. `triplets` adds that many image triplets for the transitivity
    check (their pairs come on top of the requested counts, reusing pairs
    already drawn). With a `negative_miner`, `hard_fraction` of the negatives
    of each camera pair are mined as hard ones, the rest drawn at random.
    Raises UserError when the split cannot supply what was asked for.
    """
    _check_counts(positives, negatives, triplets, hard_fraction)
    positives, negatives, triplets = int(positives), int(negatives), int(triplets)
    pools = build_pools(
        dataset, split, same_camera=same_camera_positives, distractors=distractor_negatives
    )
    n_strata = pools.num_cams * pools.num_cams

    pos_i, pos_j = enumerate_positives(pools, same_camera_positives)
    pos_strata = pools.strata(pos_i, pos_j)
    pos_cap = np.bincount(pos_strata, minlength=n_strata)
    if positives > pos_i.size:
        raise _too_many_positives(dataset, pools, positives, int(pos_i.size))
    pos_alloc = waterfill(pos_cap, positives, StableRng(seed, "positives/split"))
    chosen = pick_by_strata(pos_strata, pos_alloc, StableRng(seed, "positives/pick"))
    pos_keys = pools.key(pos_i[chosen], pos_j[chosen])

    neg_cap = negative_capacity(pools)
    if negatives > int(neg_cap.sum()):
        raise _too_many_negatives(dataset, pools, negatives, int(neg_cap.sum()))
    neg_alloc = waterfill(neg_cap, negatives, StableRng(seed, "negatives/split"))
    neg_keys, neg_hard = _choose_negatives(
        pools, neg_alloc, neg_cap, seed, negative_miner, hard_fraction
    )

    # Rows before shuffling: (space, i, j), label, hard flag.
    base_i, base_j = pools.unkey(np.concatenate([pos_keys, neg_keys]))
    rows: list[tuple[int, int, int]] = [
        (SPACE_AB, int(i), int(j)) for i, j in zip(base_i, base_j, strict=True)
    ]
    hard_flags = [False] * pos_keys.size + [bool(h) for h in neg_hard]
    trips = sample_triplets(pools, pos_i, pos_j, triplets, StableRng(seed, "triplets"))
    index = {row: k for k, row in enumerate(rows)} if trips else {}
    trip_rows: list[list[int]] = []
    for t in trips:
        ids = []
        for pair in t.pairs:
            if pair not in index:
                index[pair] = len(rows)
                rows.append(pair)
                hard_flags.append(False)
            ids.append(index[pair])
        trip_rows.append(ids)
    added = len(rows) - pos_keys.size - neg_keys.size

    order = StableRng(seed, "order").permutation(len(rows))
    new_id = np.empty(len(rows), dtype=np.int64)
    new_id[order] = np.arange(len(rows))
    table = _build_table(pools, [rows[k] for k in order])
    label = table.column("label").to_numpy()
    hard_ids = sorted(int(new_id[k]) for k, h in enumerate(hard_flags) if h)

    meta: dict[str, Any] = {
        "format": PAIRS_FORMAT,
        "dataset": {
            "name": dataset.name,
            "root": str(dataset.root),
            "synthetic": bool(dataset.synthetic),
            "records_hash": _records_hash(pools),
        },
        "split": split,
        "seed": int(seed),
        "rules": _rules(pools, distractor_negatives, triplet_pairs=added),
        "requested": {"positives": positives, "negatives": negatives, "triplets": triplets},
        "counts": {
            "pairs": table.num_rows,
            "positives": int(label.sum()),
            "negatives": int(table.num_rows - label.sum()),
            "base_positives": positives,
            "base_negatives": negatives,
            "triplet_pairs_added": added,
            "distractor_negatives": int((table.column("pid_b").to_numpy() == 0).sum()),
            "hard_negatives": len(hard_ids),
        },
        "available": {"positives": int(pos_i.size), "negatives": int(neg_cap.sum())},
        "camera_pairs": {
            "positives": _named_counts(pools, pos_alloc),
            "negatives": _named_counts(pools, neg_alloc),
        },
        "camera_pairs_available": {
            "positives": _named_counts(pools, pos_cap),
            "negatives": _named_counts(pools, neg_cap),
        },
        "triplets": [[int(new_id[k]) for k in ids] for ids in trip_rows],
        "triplet_kinds": {
            ALL_SAME: sum(t.kind == ALL_SAME for t in trips),
            TWO_SAME: sum(t.kind == TWO_SAME for t in trips),
        },
        "hard_negatives": None
        if negative_miner is None
        else {
            "miner": str(negative_miner.name),
            "fraction": float(hard_fraction),
            "selection": "per camera pair, anchors in seeded order, each taking its most "
            "similar unused different-identity partner in turn (cosine of miner features)",
            "pair_ids": hard_ids,
        },
    }
    meta["content_hash"] = pairset_hash(table)
    return PairSet(table, meta)


def _rules(pools: Pools, distractors: bool, triplet_pairs: int = 0) -> dict[str, Any]:
    cams = "any camera" if pools.same_camera else "different cameras"
    if pools.unordered:
        orientation = (
            "each unordered pair stored once; a is the image whose path sorts first, "
            "except that a distractor is always b"
        )
    else:
        orientation = "a is the query image, b the gallery image"
        if triplet_pairs:  # a triangle needs one gallery-gallery side (issue #9 item 7)
            orientation += (
                "; except the (b, c) pairs that triplets add, which are gallery-gallery "
                "(a is the gallery image with the lower index)"
            )
    return {
        "positives": f"same pid, {cams}",
        "negatives": f"different pids, {cams}",
        "same_camera_positives": pools.same_camera,
        "distractor_negatives": bool(distractors),
        "distractors_available": pools.distractors,
        "orientation": orientation,
        "balance": "positives and negatives each spread evenly over unordered camera pairs "
        "{cam_a, cam_b} (water-filling; 0-based camids)",
        "triplets": "alternating all-same (three positives) and two-same (one positive, two "
        "negatives); triplet pairs come on top of the requested counts",
        "row_order": "seeded shuffle; pair_id = row index",
    }


def _build_table(pools: Pools, rows: list[tuple[int, int, int]]) -> pa.Table:
    space = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    i = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
    j = np.fromiter((r[2] for r in rows), dtype=np.int64, count=len(rows))
    a_paths = np.array(pools.a.paths + pools.b.paths, dtype=object)
    a_pid = np.concatenate([pools.a.pid, pools.b.pid])
    a_cam = np.concatenate([pools.a.cam, pools.b.cam])
    ai = np.where(space == SPACE_AB, i, i + len(pools.a))  # BB pairs take a from side B
    b_paths = np.array(pools.b.paths, dtype=object)
    pid_a, pid_b = a_pid[ai], pools.b.pid[j]
    return pa.table(
        {
            "pair_id": np.arange(len(rows), dtype=np.int64),
            "path_a": pa.array(a_paths[ai].tolist(), pa.string()),
            "path_b": pa.array(b_paths[j].tolist(), pa.string()),
            "pid_a": pid_a,
            "pid_b": pid_b,
            "cam_a": a_cam[ai],
            "cam_b": pools.b.cam[j],
            "label": (pid_a == pid_b).astype(np.int8),
        },
        schema=PAIRS_SCHEMA,
    )
