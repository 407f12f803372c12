"""The response cache: SQLite in WAL mode, one row per answered request, committed on arrival.

The key hashes everything that determines an answer (provider, model,
endpoint host, prompt id/version/content, generation parameters, image mode
and the exact bytes sent, order and repeat index), so a hit is always the same
question. Only answers (`ok`, `refusal`, `safety_block`) are stored; errors
never are. Each `put` is its own transaction: with `journal_mode=WAL` and
`synchronous=NORMAL` a committed row survives the process being killed
(SIGKILL); only an OS crash or power loss can lose the last commits.

The cache also holds in-flight claims (key, owner, lease expiry), so several
writers on one file ask each request once: see `judges/claims.py`.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reidbench.errors import UserError
from reidbench.judges.result import JudgeResult, storable
from reidbench.sqlite_wal import open_wal, select_in

SCHEMA_VERSION = "1"
DEFAULT_CLAIM_LEASE_S = 30.0  # a dead writer's claims lapse (and are taken over) after this

_DDL = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    system TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    endpoint_host TEXT NOT NULL,
    prompt_id TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    status TEXT NOT NULL,
    result TEXT NOT NULL,
    raw TEXT,
    tokens_in INTEGER,
    tokens_out INTEGER,
    cost_usd REAL,
    images TEXT NOT NULL,
    request_order TEXT NOT NULL,
    repeat INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sent_images (derivation TEXT PRIMARY KEY, shas TEXT NOT NULL);
"""
# A request being asked right now: `owner` renews `expires` (unix seconds) while its call lives.
# One clustered b-tree and no index on owner (the table holds only the calls in flight, so
# renewals may scan it): each claim and its drop touch one b-tree, which halves their cost.
_CLAIMS_DDL = """
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires REAL NOT NULL
) WITHOUT ROWID;
"""


def canonical_hash(obj: Any) -> str:
    """sha256 of a canonical JSON form (sorted keys, no whitespace)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


class ResponseCache:
    """One connection, used from one thread (the runner's event loop)."""

    def __init__(self, path: str | Path, *, claim_lease_s: float = DEFAULT_CLAIM_LEASE_S) -> None:
        self.path = Path(path)
        self.claim_lease_s = claim_lease_s  # this writer's claim leases (judges/claims.py)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Autocommit mode: every statement outside an explicit transaction commits at once.
            self._db = open_wal(self.path, timeout_s=30.0, autocommit=True)
            self._db.executescript(_DDL)
            self._db.executescript(_CLAIMS_DDL)
            row = self._db.execute("SELECT v FROM meta WHERE k='schema'").fetchone()
            if row is None:
                # OR IGNORE: another writer may be creating the same file right now.
                self._db.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,)
                )
            elif row[0] != SCHEMA_VERSION:
                raise UserError(
                    f"{self.path}: response cache schema {row[0]} is not {SCHEMA_VERSION}; "
                    "use another cache path or move this file away"
                )
        except sqlite3.DatabaseError as exc:
            raise UserError(
                f"{self.path}: not a usable response cache ({exc}); move the file away"
            ) from exc

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- answers -------------------------------------------------------------------------

    def get_many(self, keys: Iterable[str]) -> dict[str, JudgeResult]:
        """Cached results by key (those present), marked `cached` with no attempts this run."""
        wanted = sorted(set(keys))
        found: dict[str, JudgeResult] = {}
        for key, result in select_in(
            self._db, "SELECT key, result FROM responses WHERE key IN ({marks})", wanted
        ):
            found[key] = _loaded(result)
        return found

    def get(self, key: str) -> JudgeResult | None:
        row = self._db.execute("SELECT result FROM responses WHERE key=?", (key,)).fetchone()
        return _loaded(row[0]) if row else None

    def put(
        self,
        key: str,
        result: JudgeResult,
        *,
        system: str,
        endpoint_host: str,
        images: Sequence[str],
        order: str,
        repeat: int,
        raw: Any = None,
        derivations: dict[str, list[str]] | None = None,
    ) -> None:
        """Store one answer (and the image derivations it used) in one committed transaction."""
        if not storable(result):
            raise ValueError(f"{result.status} results are never cached")
        stored = result.to_dict()
        stored["cached"] = False
        stored["attempts"] = result.attempts
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute("DELETE FROM claims WHERE key=?", (key,))  # answered: claim done
            if derivations:
                self._db.executemany(
                    "INSERT OR REPLACE INTO sent_images VALUES (?, ?)",
                    [(d, json.dumps(s)) for d, s in derivations.items()],
                )
            self._db.execute(
                "INSERT OR REPLACE INTO responses VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    system,
                    result.provider,
                    result.model,
                    endpoint_host,
                    result.prompt_id,
                    result.prompt_version,
                    result.status,
                    json.dumps(stored, sort_keys=True),
                    json.dumps(raw, sort_keys=True, default=str) if raw is not None else None,
                    result.tokens_in,
                    result.tokens_out,
                    result.cost_usd,
                    json.dumps(list(images)),
                    order,
                    repeat,
                ),
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    # -- image derivations: source bytes + spec -> hashes of the bytes as sent -----------

    def sent_shas(self, derivations: Iterable[str]) -> dict[str, list[str]]:
        wanted = sorted(set(derivations))
        found: dict[str, list[str]] = {}
        for d, shas in select_in(
            self._db,
            "SELECT derivation, shas FROM sent_images WHERE derivation IN ({marks})",
            wanted,
        ):
            found[d] = json.loads(shas)
        return found

    # -- in-flight claims (see judges/claims.py) -----------------------------------------

    def claim(self, key: str, owner: str, lease_s: float, now: float | None = None) -> Claim:
        """Claim `key` for `owner` until `now + lease_s`, unless it is answered or held.

        A live claim (even `owner`'s own) is left alone; a lapsed one is taken over.
        One read, then one single-statement write transaction (an upsert that re-checks
        both conditions atomically), so a writer polling a busy key never writes.
        """
        now = time.time() if now is None else now
        answered, holder, expires = self._db.execute(
            "SELECT (SELECT result FROM responses WHERE key = ?1),"
            " (SELECT owner FROM claims WHERE key = ?1),"
            " (SELECT expires FROM claims WHERE key = ?1)",
            (key,),
        ).fetchone()
        if answered is not None:
            return Claim("answered", answer=_loaded(answered))
        if holder is not None and expires > now:
            return Claim("busy", holder=holder)
        cur = self._db.execute(
            "INSERT INTO claims (key, owner, expires)"
            " SELECT ?1, ?2, ?3 WHERE NOT EXISTS (SELECT 1 FROM responses WHERE key = ?1)"
            " ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, expires = excluded.expires"
            " WHERE claims.expires <= ?4",
            (key, owner, now + lease_s, now),
        )
        if cur.rowcount != 1:  # answered or claimed since the read: look again
            return self.claim(key, owner, lease_s, now)
        return Claim("claimed", took_over=holder if holder != owner else None)

    def renew(self, owner: str, lease_s: float, now: float | None = None) -> int:
        """Extend every claim `owner` holds to `now + lease_s`; returns how many it holds."""
        now = time.time() if now is None else now
        cur = self._db.execute("UPDATE claims SET expires=? WHERE owner=?", (now + lease_s, owner))
        return cur.rowcount

    def release(self, key: str, owner: str) -> None:
        """Drop `owner`'s claim on `key` (answered, or given up: others may ask it now)."""
        self._db.execute("DELETE FROM claims WHERE key=? AND owner=?", (key, owner))

    def release_all(self, owner: str) -> None:
        self._db.execute("DELETE FROM claims WHERE owner=?", (owner,))

    def claims(self) -> dict[str, tuple[str, float]]:
        """Every claim in the file: key -> (owner, expiry in unix seconds)."""
        rows = self._db.execute("SELECT key, owner, expires FROM claims")
        return {key: (owner, expires) for key, owner, expires in rows}


@dataclass(frozen=True)
class Claim:
    """What `ResponseCache.claim` found: `claimed` (ask it), `answered` or `busy` (wait)."""

    state: str
    answer: JudgeResult | None = None  # the stored answer, when `answered`
    holder: str | None = None  # the live claim's owner, when `busy`
    took_over: str | None = None  # the owner whose lapsed claim was taken, when `claimed`


def _loaded(text: str) -> JudgeResult:
    data = json.loads(text)
    data["cached"] = True
    data["attempts"] = 0  # no call was made for it in this run
    return JudgeResult.from_dict(data)
