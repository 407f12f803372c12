"""In-flight claims: several writers on one response cache pay at most once per request.

The cache records answers after they arrive, so without claims two writers
(two processes, two run directories sharing a cache, a restarted job beside
the old one) both ask every request neither has answered yet. Before a call
the runner claims the request's key in the cache with a lease; while the call
lives (retries and backoff can take minutes) a background task renews the
lease of every claim the writer holds. A writer that finds a live claim waits,
polling, until the answer is stored (it uses it, as a cache hit) or the claim
is gone: released after an error (it then asks itself) or lapsed because its
owner died (taken over, and said so). SQLite in WAL mode with short
transactions is enough; each claim is one small write transaction.

The lease must outlast the longest stall of the owner's event loop: a claim
whose owner cannot renew in time is taken over and may be paid twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable

from reidbench.judges.cache import DEFAULT_CLAIM_LEASE_S, ResponseCache
from reidbench.judges.result import JudgeResult, storable

log = logging.getLogger(__name__)

DEFAULT_LEASE_S = DEFAULT_CLAIM_LEASE_S  # a dead owner's requests wait this long, at most
_RENEWALS_PER_LEASE = 3  # renew three times per lease: two renewals may miss before it lapses
_MAX_POLL_S = 0.25  # how often a waiter looks for the answer


def new_owner() -> str:
    """A claim owner id: host and PID for people reading the cache, a random tail for uniqueness."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Claims:
    """One writer's claims on one cache (used from the runner's event loop thread only)."""

    def __init__(
        self, cache: ResponseCache, lease_s: float = DEFAULT_LEASE_S, owner: str | None = None
    ) -> None:
        if lease_s <= 0:
            raise ValueError("lease_s must be positive")
        self.cache = cache
        self.lease_s = lease_s
        self.owner = owner or new_owner()
        self.poll_s = min(_MAX_POLL_S, lease_s / 8)
        self.held: set[str] = set()
        self.taken_over = 0  # lapsed claims of other (dead) owners taken in this run
        self.answered_elsewhere = 0  # requests another writer answered while we waited

    async def ask_once(self, key: str, call: Callable[[], Awaitable[JudgeResult]]) -> JudgeResult:
        """`call()` under a claim on `key`, or the answer another writer stored for it."""
        waited = False
        while True:
            got = self.cache.claim(key, self.owner, self.lease_s)
            if got.state == "answered":
                assert got.answer is not None
                self.answered_elsewhere += waited
                return got.answer
            if got.state == "claimed":
                break
            waited = True
            await asyncio.sleep(self.poll_s)
        if got.took_over is not None:
            self.taken_over += 1
            log.warning(
                "took over request %s… from %s, whose claim lapsed (its owner stopped renewing)",
                key[:12],
                got.took_over,
            )
        self.held.add(key)
        result: JudgeResult | None = None
        try:
            result = await call()
            return result
        finally:
            self.held.discard(key)
            # `call` stores an answer with `ResponseCache.put`, which drops the claim in the
            # same transaction (a waiter never finds neither). An error is not stored: the
            # claim is released, and a waiter asks for itself.
            if result is None or not storable(result):
                self.cache.release(key, self.owner)

    @contextlib.asynccontextmanager
    async def renewing(self) -> AsyncIterator[Claims]:
        """Renew this writer's leases in the background for the block; release all after it."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(self.lease_s / _RENEWALS_PER_LEASE)
                if not self.held:
                    continue
                try:
                    self.cache.renew(self.owner, self.lease_s)
                except sqlite3.Error as exc:  # try again next time; the lease has slack
                    log.warning("could not renew claims in %s: %s", self.cache.path, exc)

        task = asyncio.create_task(renew())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.cache.release_all(self.owner)
