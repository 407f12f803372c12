"""One LVLM system served by several OpenAI-compatible endpoints (a `base_url` list).

Typical case: one vLLM server per node, all serving the same model. The pool wraps one
provider per endpoint and sends each request to the endpoint with the fewest requests in
flight (ties: the one sent the fewest so far), never more than `concurrency` to any one of
them (the runner runs `concurrency` workers per endpoint, see `ResolvedSystem.workers`).

A connection that could not be made (refused, unreachable) means the request never left,
so the pool resends it at once to another endpoint in rotation; the runner sees neither
the failure nor a retry, and its budget, statuses and cache are untouched. A connection
reset mid-request goes to the runner like any retryable error (it may have been billed).
An endpoint with `OUT_AFTER` connection failures of either kind in a row leaves the
rotation (one log line) while the others keep serving; after `REST_S` it gets one trial
request again. When every endpoint is out, requests still go out and their errors reach
the runner, whose circuit breaker stops the system as for a single URL.
Timeouts and HTTP errors are not resent here: the server may have worked on them, and the
runner's retry rules (and breaker) own them.

Hand-written because no library balances asyncio SDK clients by in-flight count with this
failover rule; it is a few dozen lines over `asyncio.Condition`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reidbench.judges.breaker import safe_url
from reidbench.judges.providers.base import (
    Provider,
    ProviderError,
    ProviderReply,
    ProviderRequest,
)

if TYPE_CHECKING:
    from reidbench.judges.settings import ResolvedSystem

log = logging.getLogger(__name__)

OUT_AFTER = 2  # connection failures in a row that take an endpoint out of rotation
REST_S = 30.0  # seconds out of rotation before one trial request


@dataclass
class Endpoint:
    url: str
    provider: Provider
    in_flight: int = 0
    sent: int = 0  # requests sent (ties between equally busy endpoints go to the least used)
    answered: int = 0  # replies received (any HTTP answer counts as reached)
    failures: int = 0  # connection failures in a row
    out_until: float = 0.0  # monotonic time until which it is out of rotation
    out: bool = False  # left the rotation (see `in_rotation`)

    def in_rotation(self, now: float) -> bool:
        return not self.out or now >= self.out_until


def never_sent(exc: BaseException) -> bool:
    """True when no connection was made (refused, unreachable, DNS): the request never left.

    The SDK's `APIConnectionError` wraps the transport's `ConnectError`; the class is
    matched by name so that httpx and its forks are recognised alike.
    """
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ConnectionRefusedError) or type(cur).__name__ == "ConnectError":
            return True
        cur = cur.__cause__ or cur.__context__
    return False


class PoolProvider:
    """A `Provider` over several endpoints; see the module docstring for the rules."""

    def __init__(self, endpoints: Sequence[tuple[str, Provider]], *, per_endpoint: int) -> None:
        if not endpoints:
            raise ValueError("a pool needs at least one endpoint")
        self.endpoints = [Endpoint(url, provider) for url, provider in endpoints]
        self.per_endpoint = max(1, per_endpoint)
        self._changed = asyncio.Condition()

    async def _take(self, tried: set[int]) -> int | None:
        """The index of the least busy endpoint with room, waiting for room; None if none left.

        Endpoints in rotation first; only when none is left (untried), the others, so
        that the runner's breaker sees their errors.
        """
        async with self._changed:
            while True:
                now = time.monotonic()
                untried = [i for i in range(len(self.endpoints)) if i not in tried]
                if not untried:
                    return None
                live = [i for i in untried if self.endpoints[i].in_rotation(now)]
                pool = live or untried
                free = [i for i in pool if self.endpoints[i].in_flight < self.per_endpoint]
                if free:
                    best = min(free, key=lambda i: self._load(i))
                    self.endpoints[best].in_flight += 1
                    self.endpoints[best].sent += 1
                    return best
                await self._changed.wait()

    def _load(self, index: int) -> tuple[int, int]:
        ep = self.endpoints[index]
        return ep.in_flight, ep.sent

    async def _give_back(self, index: int) -> None:
        self.endpoints[index].in_flight -= 1  # first: even a cancelled wake-up frees the slot
        async with self._changed:
            self._changed.notify_all()

    def _reached(self, ep: Endpoint) -> None:
        if ep.out:
            log.warning("endpoint %s answers again: back in rotation", safe_url(ep.url))
        ep.out, ep.failures = False, 0
        ep.answered += 1

    def _refused(self, ep: Endpoint, error: ProviderError) -> None:
        ep.failures += 1
        if ep.failures >= OUT_AFTER:
            if not ep.out or time.monotonic() >= ep.out_until:
                live = sum(e.in_rotation(time.monotonic()) for e in self.endpoints) - 1
                log.warning(
                    "endpoint %s out of rotation for %g s after %d connection failures in a "
                    "row (%s); %d other endpoint(s) keep serving",
                    safe_url(ep.url),
                    REST_S,
                    ep.failures,
                    error.message,
                    max(0, live),
                )
            ep.out, ep.out_until = True, time.monotonic() + REST_S

    async def complete(self, request: ProviderRequest) -> ProviderReply:
        tried: set[int] = set()
        error: ProviderError | None = None
        while True:
            index = await self._take(tried)
            if index is None:  # every endpoint refused this request
                assert error is not None
                raise error
            ep = self.endpoints[index]
            try:
                reply = await ep.provider.complete(request)
            except ProviderError as exc:
                if exc.kind != "connection":
                    if exc.status is not None:
                        self._reached(ep)
                    raise
                self._refused(ep, exc)
                if not never_sent(exc):  # reset mid-request: the runner's retry rules decide
                    raise
                error = exc
                tried.add(index)
                now = time.monotonic()
                others = [
                    i for i, e in enumerate(self.endpoints) if i not in tried and e.in_rotation(now)
                ]
                if not others:
                    raise
                continue
            finally:
                await self._give_back(index)
            self._reached(ep)
            return reply

    def counts(self) -> dict[str, int]:
        """Replies received per endpoint URL (for logs and tests)."""
        return {e.url: e.answered for e in self.endpoints}

    async def aclose(self) -> None:
        await asyncio.gather(*(e.provider.aclose() for e in self.endpoints))


def make_pool(
    system: ResolvedSystem, api_key: str, make_one: Callable[[ResolvedSystem, str], Provider]
) -> PoolProvider:
    """A pool of `make_one` providers, one per URL of the system's `base_url` list."""
    from reidbench.judges.settings import host_of

    singles = [
        (
            url,
            make_one(
                dataclasses.replace(
                    system, base_url=url, base_urls=(url,), endpoint_host=host_of(url)
                ),
                api_key,
            ),
        )
        for url in system.base_urls
    ]
    return PoolProvider(singles, per_endpoint=system.config.concurrency)
