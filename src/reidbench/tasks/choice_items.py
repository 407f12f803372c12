"""Multiple-choice items: a query and N candidates, exactly one of them the same person.

Curated like pairs (reidbench/pairs.py): seeded draws from `StableRng` streams over sorted
image lists, so a seed gives the same items on every install; the stored table carries a
content hash that is checked on every read. Rules (docs/tasks.md, Multiple choice):

- queries come from side A of the split (the query set for "query-gallery"), at most one
  per identity per round, so items spread over as many people as the split has;
- the true candidate shows the query's identity from another camera;
- the N-1 negatives are N-1 different other identities, also never from the query's
  camera (a camera shared with the query only would give the answer away), drawn at
  random or, with a miner (`hard_negatives`), the most alike such images;
- the true slot is balanced: slot k is true in floor or ceil of items/N items, the
  assignment shuffled by the seed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from reidbench.datasets.base import Dataset
from reidbench.errors import UserError
from reidbench.pairs.hard import NegativeMiner, miner_features
from reidbench.pairs.pools import Pools, build_pools
from reidbench.pairs.rng import StableRng
from reidbench.tables import read_meta, read_table, write_table

LABELS = "ABCDEFGHIJ"  # candidate labels, slot 0 = "A"
ITEMS_SCHEMA = pa.schema(
    [
        ("item_id", pa.int64()),
        ("query_path", pa.string()),
        ("query_pid", pa.int64()),
        ("query_cam", pa.int64()),
        ("cand_paths", pa.list_(pa.string())),
        ("cand_pids", pa.list_(pa.int64())),
        ("cand_cams", pa.list_(pa.int64())),
        ("true_slot", pa.int64()),
    ]
)
_HASH_DOMAIN = "reidbench-choice-items-v1"


@dataclass(frozen=True)
class ChoiceItems:
    """A curated item table (`ITEMS_SCHEMA`, item_id = row index) and its provenance."""

    table: pa.Table
    meta: dict[str, Any]

    def __len__(self) -> int:
        return self.table.num_rows

    @property
    def n_candidates(self) -> int:
        return len(self.table.column("cand_paths")[0].as_py()) if self.table.num_rows else 0

    @property
    def true_slot(self) -> np.ndarray:
        return np.asarray(self.table.column("true_slot").to_numpy(), dtype=np.int64)

    @property
    def query_pid(self) -> np.ndarray:
        return np.asarray(self.table.column("query_pid").to_numpy(), dtype=np.int64)

    def labels(self) -> list[str]:
        return list(LABELS[: self.n_candidates])


def items_hash(table: pa.Table) -> str:
    """sha256 of the item rows in order (every column, as canonical JSON lines)."""
    h = hashlib.sha256(_HASH_DOMAIN.encode() + b"\n")
    for row in table.select(ITEMS_SCHEMA.names).to_pylist():
        h.update(json.dumps(row, sort_keys=True).encode() + b"\n")
    return h.hexdigest()


def write_items(path: Path, items: ChoiceItems) -> str:
    """Write atomically (Parquet with the meta); return the content hash stored with it."""
    table = items.table.select(ITEMS_SCHEMA.names).cast(ITEMS_SCHEMA)
    digest = items_hash(table)
    write_table(path, table, {**items.meta, "content_hash": digest})
    return digest


def read_items(path: Path) -> ChoiceItems:
    """Read stored items and check their content hash (a mismatch is a UserError)."""
    table = read_table(path)
    meta = read_meta(table)
    missing = [n for n in ITEMS_SCHEMA.names if n not in table.column_names]
    if missing:
        raise UserError(f"{path}: choice items lack columns {missing}; delete the file to redo")
    table = table.select(ITEMS_SCHEMA.names).cast(ITEMS_SCHEMA)
    actual = items_hash(table)
    if meta.get("content_hash") != actual:
        raise UserError(
            f"{path}: content hash mismatch (the items changed after curation); "
            "delete the file (or use a new --out) to curate them again"
        )
    return ChoiceItems(table, meta)


def _query_order(pools: Pools, eligible: np.ndarray, rng: StableRng) -> np.ndarray:
    """Eligible query indices in rounds: a seeded identity order, one image per identity per
    round (each identity's images in a seeded order), so items spread over people."""
    shuffled = eligible[rng.permutation(eligible.size)]
    pids = pools.a.pid[shuffled]
    rank = np.zeros(shuffled.size, dtype=np.int64)  # how many of its identity came before
    seen: dict[int, int] = {}
    for k, pid in enumerate(pids.tolist()):
        rank[k] = seen.get(pid, 0)
        seen[pid] = rank[k] + 1
    first = {pid: k for k, pid in reversed(list(enumerate(pids.tolist())))}
    pid_pos = np.array([first[p] for p in pids.tolist()], dtype=np.int64)
    order = np.lexsort((pid_pos, rank))
    return shuffled[order]


def curate_choice_items(
    dataset: Dataset,
    *,
    items: int,
    candidates: int,
    seed: int = 0,
    split: str = "query-gallery",
    negative_miner: NegativeMiner | None = None,
) -> ChoiceItems:
    """Curate `items` items of `candidates` candidates each (1 true + N-1 negatives)."""
    if not 2 <= candidates <= len(LABELS):
        raise UserError(f"candidates = {candidates}: use 2 to {len(LABELS)} ([[tasks]] choice)")
    pools = build_pools(dataset, split, same_camera=False, distractors=False)
    a, b = pools.a, pools.b
    # True partners: same identity, other camera (and not the image itself).
    partners: list[np.ndarray] = []
    for i in range(len(a)):
        ok = (b.pid == a.pid[i]) & (b.cam != a.cam[i])
        if pools.unordered:
            ok[i] = False
        partners.append(np.flatnonzero(ok))
    eligible = np.array([i for i in range(len(a)) if partners[i].size], dtype=np.int64)
    if eligible.size < items:
        raise UserError(
            f"{dataset.root}: the {split} split has {eligible.size} query images with a "
            f"cross-camera match, fewer than items = {items}; lower items in [[tasks]] choice"
        )
    chosen = _query_order(pools, eligible, StableRng(seed, "choice/queries"))[:items]
    slots = np.tile(np.arange(candidates), -(-items // candidates))[:items]
    slots = slots[StableRng(seed, "choice/slots").permutation(items)]
    rng_true = StableRng(seed, "choice/true")
    rng_neg = StableRng(seed, "choice/negatives")
    feats_a = feats_b = None
    if negative_miner is not None:
        feats_a = miner_features(negative_miner, a.records)
        feats_b = feats_a if pools.unordered else miner_features(negative_miner, b.records)
    rows: list[dict[str, Any]] = []
    for item_id, (i, slot) in enumerate(zip(chosen.tolist(), slots.tolist(), strict=True)):
        qpid, qcam = int(a.pid[i]), int(a.cam[i])
        true_j = int(partners[i][rng_true.below(partners[i].size, 1)[0]])
        pool = np.flatnonzero((b.pid != qpid) & (b.pid > 0) & (b.cam != qcam))
        if feats_a is not None and feats_b is not None:
            sims = feats_b[pool] @ feats_a[i]
            pool = pool[np.argsort(-sims, kind="stable")]  # most alike first
        else:
            pool = pool[rng_neg.permutation(pool.size)]
        negatives: list[int] = []
        used: set[int] = set()
        for j in pool.tolist():  # one image per other identity
            if int(b.pid[j]) not in used:
                used.add(int(b.pid[j]))
                negatives.append(j)
                if len(negatives) == candidates - 1:
                    break
        if len(negatives) < candidates - 1:
            raise UserError(
                f"{dataset.root}: query {a.records[i].path} has only {len(negatives)} other "
                f"identities on other cameras, fewer than candidates - 1 = {candidates - 1}; "
                "lower candidates in [[tasks]] choice"
            )
        cands = [*negatives[:slot], true_j, *negatives[slot:]]
        rows.append(
            {
                "item_id": item_id,
                "query_path": a.records[i].path,
                "query_pid": qpid,
                "query_cam": qcam,
                "cand_paths": [b.records[j].path for j in cands],
                "cand_pids": [int(b.pid[j]) for j in cands],
                "cand_cams": [int(b.cam[j]) for j in cands],
                "true_slot": int(slot),
            }
        )
    table = pa.Table.from_pylist(rows, schema=ITEMS_SCHEMA)
    meta: dict[str, Any] = {
        "kind": "choice",
        "items": items,
        "candidates": candidates,
        "seed": seed,
        "split": split,
        "negatives": "hard" if negative_miner is not None else "random",
        "miner": negative_miner.name if negative_miner is not None else None,
        "n_identities": int(np.unique(table.column("query_pid").to_numpy()).size),
        "slot_counts": np.bincount(slots, minlength=candidates).tolist(),
    }
    return ChoiceItems(table, meta)
