"""Rate limits (requests and tokens per minute) and budget caps (calls, USD) for one run.

Hand-written because they are small and must cooperate with the runner's
asyncio loop: token buckets that wait FIFO, a shared pause when a provider
answers 429 with Retry-After, and a budget that reserves the worst-case cost
of a call before it starts, so concurrent calls cannot overshoot the cap.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
_EPS = 1e-9  # float slack, so a refill that lands a hair short of `need` does not spin


class TokenBucket:
    """`rate` units per second, bursts up to `capacity`; waiters are served in arrival order."""

    def __init__(
        self,
        rate: float,
        capacity: float,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rate <= 0 or capacity <= 0:
            raise ValueError("rate and capacity must be positive")
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._sleep = sleep
        self._level = capacity
        self._t = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._level = min(self.capacity, self._level + (now - self._t) * self.rate)
        self._t = now

    async def acquire(self, n: float = 1.0) -> None:
        """Take `n` units; a request larger than the bucket waits for a full bucket."""
        async with self._lock:
            need = min(n, self.capacity)
            self._refill()
            while self._level + _EPS < need:
                await self._sleep((need - self._level) / self.rate)
                self._refill()
            self._level -= n

    def adjust(self, n: float) -> None:
        """Give back (n > 0) or take more (n < 0) once the true usage is known."""
        self._refill()
        self._level = min(self.capacity, self._level + n)


class RateLimiter:
    """Requests-per-minute and tokens-per-minute buckets plus a shared Retry-After pause."""

    def __init__(
        self,
        rpm: float | None,
        tpm: float | None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        # One second of burst for requests (smooth pacing); a full minute for tokens,
        # because one request can be large compared with the per-second token rate.
        self.requests = (
            TokenBucket(rpm / 60.0, max(1.0, rpm / 60.0), clock=clock, sleep=sleep) if rpm else None
        )
        self.tokens = TokenBucket(tpm / 60.0, tpm, clock=clock, sleep=sleep) if tpm else None
        self._clock = clock
        self._sleep = sleep
        self._paused_until = 0.0

    def pause(self, seconds: float) -> None:
        """Hold every new call for `seconds` (a 429 applies to the whole key, not one request)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    async def acquire(self, tokens: float) -> None:
        while (wait := self._paused_until - self._clock()) > 0:
            await self._sleep(wait)
        if self.requests:
            await self.requests.acquire(1.0)
        if self.tokens:
            await self.tokens.acquire(tokens)

    def settle(self, reserved_tokens: float, used_tokens: float | None) -> None:
        if self.tokens and used_tokens is not None:
            self.tokens.adjust(reserved_tokens - used_tokens)


class Budget:
    """`max_calls` (requests, retries included) and `max_cost_usd` for a system's answers.

    The caps cover the whole run, resumes included: `prior_calls` and
    `prior_spent` are what the answers already in the response cache cost, so
    a run killed after spending most of its budget cannot spend it again.
    `start` reserves a call's worst-case cost; `finish` replaces the reservation
    with the real cost. When a call would not fit, `start` waits for calls in
    flight to settle, then decides; once the cap is reached it stays reached.
    """

    def __init__(
        self,
        max_calls: int | None,
        max_cost_usd: float | None,
        *,
        prior_calls: int = 0,
        prior_spent: float = 0.0,
    ) -> None:
        self.max_calls = max_calls
        self.max_cost = max_cost_usd
        self.prior_calls = prior_calls
        self.prior_spent = prior_spent
        self.calls = prior_calls
        self.spent = prior_spent
        self.reserved = 0.0
        self.exhausted = False
        self._changed = asyncio.Condition()

    async def start(self, worst_cost: float) -> bool:
        """True: the call may go ahead (counted and reserved). False: a cap is reached."""
        async with self._changed:
            while True:
                if self.exhausted:
                    return False
                if self.max_calls is not None and self.calls >= self.max_calls:
                    self.exhausted = True
                    return False
                if (
                    self.max_cost is None
                    or self.spent + self.reserved + worst_cost <= self.max_cost
                ):
                    self.calls += 1
                    self.reserved += worst_cost
                    return True
                if self.reserved <= 0 or self.spent + worst_cost > self.max_cost:
                    self.exhausted = True
                    return False
                await self._changed.wait()  # calls in flight may cost less than reserved

    async def finish(self, worst_cost: float, cost: float | None) -> None:
        async with self._changed:
            self.reserved = max(0.0, self.reserved - worst_cost)
            # Unknown cost of a call that did complete: count the reservation, to stay safe.
            self.spent += worst_cost if cost is None else cost
            self._changed.notify_all()

    async def cancel(self, worst_cost: float) -> None:
        """A call that failed before being billed (error status, timeout): release it."""
        async with self._changed:
            self.reserved = max(0.0, self.reserved - worst_cost)
            self._changed.notify_all()
