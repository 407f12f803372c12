"""The asyncio runner: the one place with concurrency, rate limits, retries, timeouts and budgets.

Each job is one request (pair x order x repeat). Workers (as many as the
system's `concurrency`) take jobs in order; every call waits for the rate
limiter and the budget, runs under `timeout_s`, and is retried with
exponential backoff and jitter (honouring Retry-After) on 429, 5xx,
timeouts, connection errors and malformed bodies, up to `max_retries`. Every
answer is parsed, priced and committed to the cache the moment it arrives.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reidbench.judges.breaker import Breaker, BreakerRules, safe_url
from reidbench.judges.cache import ResponseCache, canonical_hash
from reidbench.judges.claims import Claims
from reidbench.judges.images import EncodedImage, EncodeMemo, ImageSpec, prepare, prepare_many
from reidbench.judges.limits import Budget, RateLimiter
from reidbench.judges.logprobs import TOP_LOGPROBS, parse_probability
from reidbench.judges.parse import parse_answer
from reidbench.judges.providers.base import (
    PermanentError,
    Provider,
    ProviderError,
    ProviderReply,
    ProviderRequest,
    RetryableError,
)
from reidbench.judges.result import JudgeResult, storable
from reidbench.judges.served import reported_version
from reidbench.judges.settings import ResolvedSystem
from reidbench.progress import Progress

log = logging.getLogger(__name__)
_RETRY_AFTER_CAP_S = 3600.0  # a Retry-After longer than an hour is treated as an hour
_PREPARERS = 4  # image-preparation tasks running ahead of the requests (Pillow frees the GIL)


@dataclass
class Job:
    """One request: pair `pair_id`, image `first` shown as A and `second` as B."""

    index: int
    pair_id: int
    first: str
    second: str
    order: str  # "ab" or "ba"
    repeat: int
    derivations: list[str]  # how the sent images derive from the source files (see judge.py)
    key: str | None = None  # cache key, when the sent-image hashes are already known
    followers: list[int] = field(default_factory=list)  # identical requests answered by this one
    # Multiple choice: every crop sent (query, then candidates) and the composite's labels;
    # empty for a pair, which sends `first` and `second`.
    paths: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()


@dataclass
class Prepared:
    """A job ready to be asked: the images as sent, their hashes and the cache key."""

    images: list[EncodedImage]
    sent: list[str]
    key: str
    derivations: dict[str, list[str]]


@dataclass
class Outcome:
    """A call that came back with a reply, and what was reserved for it."""

    reply: ProviderReply
    latency: float
    attempts: int
    worst: float
    reserve_tokens: int


def derivation_key(sources: list[str], spec: ImageSpec) -> str:
    """Names one sent image (or composite) by its source file hashes and preparation settings."""
    return canonical_hash({"src": sources, "spec": spec.key()})


def request_key(system: ResolvedSystem, sent: list[str], order: str, repeat: int) -> str:
    """The cache key: a hash of everything that determines the answer (never the API key)."""
    return canonical_hash(
        {
            "v": 1,
            "provider": system.family,
            "model": system.model,
            "endpoint": system.endpoint_host,
            "prompt": [system.prompt.id, system.prompt.version, system.prompt.sha256],
            "params": system.params(),
            "images": system.image_spec.key(),
            "sent": sent,
            "order": order,
            "repeat": repeat,
        }
    )


def estimate_tokens_in(text: str, images: list[EncodedImage]) -> int:
    """A generous input-token estimate used for TPM pacing and cost reservations.

    The largest of the providers' published image formulas (OpenAI 512-px
    tiles, Anthropic w*h/750, Gemini 258 per image) plus one token per 3
    characters of text. Replaced by the largest usage reported once known.
    """
    total = math.ceil(len(text) / 3)
    for img in images:
        tiles = math.ceil(img.width / 512) * math.ceil(img.height / 512)
        total += max(85 + 170 * tiles, math.ceil(img.width * img.height / 750), 258)
    return total


class Runner:
    def __init__(
        self,
        system: ResolvedSystem,
        provider: Provider,
        cache: ResponseCache,
        root: Path,
        *,
        progress: Progress,
        redact: Callable[[str], str],
        prior_calls: int = 0,
        prior_spent: float = 0.0,
    ) -> None:
        c = system.config
        self.system = system
        self.provider = provider
        self.cache = cache
        self.root = root
        self.progress = progress
        self.redact = redact
        self.limiter = RateLimiter(c.rpm, c.tpm)
        self.budget = Budget(
            c.max_calls, c.max_cost_usd, prior_calls=prior_calls, prior_spent=prior_spent
        )
        self.calls = 0  # requests sent in this run, retries included
        self.spent = 0.0  # USD of the answers received in this run
        self.results: dict[int, JudgeResult] = {}
        self.claims = Claims(cache, cache.claim_lease_s)  # one caller per request across writers
        self._seen_tokens_in = 0
        self._memo = EncodeMemo()
        self._structured_schema = (
            system.prompt.json_schema() if system.structured != "off" else None
        )
        rules = BreakerRules(c.stop_after_connection_errors, c.stop_timeout_rate, c.stop_min_calls)
        self.breaker = Breaker(rules, system.name, system.endpoint_urls, redact)
        self._where = f" ({safe_url(system.endpoint_urls)})" if system.client != "hf" else ""

    # -- bookkeeping -----------------------------------------------------------------

    def _base(self) -> dict[str, Any]:
        s = self.system
        return {
            "provider": s.family,
            "model": s.model,
            "prompt_id": s.prompt.id,
            "prompt_version": s.prompt.version,
        }

    def _error(self, status: str, message: str, attempts: int) -> JudgeResult:
        return JudgeResult(
            score=None,
            decision="unknown",
            status=status,
            error=self.redact(message),
            attempts=attempts,
            **self._base(),
        )

    def _budget_message(self) -> str:
        c, b = self.system.config, self.budget
        earlier = (
            f", {b.prior_calls} answers (${b.prior_spent:.4f}) from earlier runs"
            if b.prior_calls
            else ""
        )
        if c.max_calls is not None and b.calls >= c.max_calls:
            return f"max_calls={c.max_calls} reached ({b.calls} calls{earlier})"
        return f"max_cost_usd={c.max_cost_usd} reached (spent ${b.spent:.4f}{earlier})"

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        c = self.system.config
        ceiling = min(c.retry_max_s, c.retry_base_s * 2 ** (attempt - 1))
        delay = ceiling / 2 + random.uniform(0, ceiling / 2)  # "equal jitter"
        if retry_after is not None:
            delay = max(delay, min(retry_after, _RETRY_AFTER_CAP_S) + random.uniform(0, 0.1))
        return delay

    # -- the work --------------------------------------------------------------------

    async def run(self, jobs: list[Job]) -> dict[int, JudgeResult]:
        """Answer `jobs`. Images are prepared ahead in threads, so no request slot waits on them."""
        todo = deque(jobs)
        n = max(1, min(self.system.workers, len(jobs)))
        ready: asyncio.Queue[tuple[Job, JudgeResult | Prepared] | None] = asyncio.Queue(n)
        n_prep = min(n, _PREPARERS)
        finished = 0

        async def preparer() -> None:
            nonlocal finished
            try:
                while todo:
                    job = todo.popleft()
                    await ready.put((job, await self._prepare(job)))
            finally:
                finished += 1
                if finished == n_prep:
                    for _ in range(n):
                        await ready.put(None)

        async def worker() -> None:
            while (item := await ready.get()) is not None:
                job, prepared = item
                if isinstance(prepared, JudgeResult):
                    result = prepared
                else:
                    ask = functools.partial(self._ask, job, prepared)
                    result = await self.claims.ask_once(prepared.key, ask)
                self.results[job.index] = result
                self.progress.advance(
                    1 + len(job.followers), calls=self.calls, cost=f"${self.spent:.4f}"
                )

        async with self.claims.renewing():
            await asyncio.gather(
                *(preparer() for _ in range(n_prep)), *(worker() for _ in range(n))
            )
        return self.results

    def _not_asked(self, attempts: int) -> JudgeResult:
        """A job left unasked because the breaker stopped the system (asked again next run)."""
        return self._error("api_error", f"not asked: {self.breaker.reason}", attempts)

    async def _prepare(self, job: Job) -> JudgeResult | Prepared:
        """The images for a job and its key, or its result when no call is needed."""
        if self.budget.exhausted:
            return self._error("budget_exceeded", self._budget_message(), 0)
        if self.breaker.tripped:
            return self._not_asked(0)
        s = self.system
        if job.paths:
            crops = [self.root / p for p in job.paths]
            images = await asyncio.to_thread(
                prepare_many, crops, s.image_spec, self._memo, job.labels
            )
        else:
            images = await asyncio.to_thread(
                prepare, self.root / job.first, self.root / job.second, s.image_spec, self._memo
            )
        sent = [img.sha256 for img in images]
        key = request_key(s, sent, job.order, job.repeat)
        if key != job.key:  # derivations were unknown (or stale): the answer may still be cached
            hit = self.cache.get(key)
            if hit is not None:
                return hit
        derivations = (
            dict(zip(job.derivations, ([h] for h in sent), strict=True))
            if len(job.derivations) == len(sent)
            else {}
        )
        return Prepared(images, sent, key, derivations)

    async def _ask(self, job: Job, prepared: Prepared) -> JudgeResult:
        s, c = self.system, self.system.config
        images = prepared.images
        text = s.prompt.user_text(s.image_spec.mode)
        request = ProviderRequest(
            system=s.prompt.system,
            text=text,
            images=images,
            schema=self._structured_schema,
            structured=s.structured,
            max_tokens=c.max_tokens,
            temperature=c.temperature,
            seed=c.seed,
            timeout_s=c.timeout_s,
            extra=c.extra,
            top_logprobs=(
                int(c.extra.get("top_logprobs", TOP_LOGPROBS))
                if s.prompt.answer == "probability"
                else 0
            ),
        )
        est_in = self._seen_tokens_in or estimate_tokens_in(s.prompt.system + text, images)
        reserve_tokens = est_in + c.max_tokens
        worst = s.cost(est_in, c.max_tokens) or 0.0
        attempts = 0
        while True:
            if self.breaker.tripped:
                return self._not_asked(attempts)
            if not await self.budget.start(worst):
                return self._error("budget_exceeded", self._budget_message(), attempts)
            await self.limiter.acquire(reserve_tokens)
            attempts += 1
            self.calls += 1
            started = time.perf_counter()
            try:
                reply = await asyncio.wait_for(self.provider.complete(request), c.timeout_s)
            except asyncio.TimeoutError:
                error: ProviderError = RetryableError(
                    f"no answer within timeout_s={c.timeout_s:g}", kind="timeout"
                )
            except RetryableError as exc:
                error = exc
            except PermanentError as exc:
                await self.budget.cancel(worst)
                self.limiter.settle(reserve_tokens, 0)
                self.breaker.failed(exc)
                return self._error("api_error", exc.message + self._where, attempts)
            except Exception as exc:  # an SDK surprise must cost one row, not the whole run
                await self.budget.cancel(worst)
                self.limiter.settle(reserve_tokens, 0)
                log.warning("unexpected %s from %s", type(exc).__name__, s.family)
                return self._error("api_error", f"unexpected {type(exc).__name__}: {exc}", attempts)
            else:
                self.breaker.answered()
                latency = time.perf_counter() - started
                outcome = Outcome(reply, latency, attempts, worst, reserve_tokens)
                return await self._answered(job, prepared, outcome)
            # Retryable failure. Without an HTTP status (timeout, cut body) it may have been billed.
            if error.status is None:
                await self.budget.finish(worst, None)
            else:
                await self.budget.cancel(worst)
            self.limiter.settle(reserve_tokens, 0)
            retry_after = getattr(error, "retry_after", None)
            if retry_after:
                self.limiter.pause(min(retry_after, _RETRY_AFTER_CAP_S))
            stop = self.breaker.failed(error)
            if stop or attempts > c.max_retries:
                why = "system stopped" if stop else "gave up"
                return self._error(
                    "api_error",
                    f"{error.message}{self._where} ({why} after {attempts} attempts)",
                    attempts,
                )
            await asyncio.sleep(self._backoff(attempts, retry_after))

    async def _answered(self, job: Job, prepared: Prepared, outcome: Outcome) -> JudgeResult:
        s = self.system
        reply, latency, attempts = outcome.reply, outcome.latency, outcome.attempts
        worst, reserve_tokens = outcome.worst, outcome.reserve_tokens
        cost = s.cost(reply.tokens_in, reply.tokens_out)
        await self.budget.finish(worst, cost)
        used = (
            reply.tokens_in + reply.tokens_out
            if reply.tokens_in is not None and reply.tokens_out is not None
            else None
        )
        self.limiter.settle(reserve_tokens, used)
        if reply.tokens_in:
            self._seen_tokens_in = max(self._seen_tokens_in, reply.tokens_in)
        self.spent += cost or 0.0
        if s.prompt.answer == "probability":
            parsed = parse_probability(reply, threshold=s.config.threshold)
        else:
            parsed = parse_answer(
                reply.text,
                s.prompt,
                threshold=s.config.threshold,
                refusal=reply.refusal,
                safety=reply.safety,
            )
        result = JudgeResult(
            score=parsed.score,
            decision=parsed.decision,
            status=parsed.status,
            raw=self.redact(reply.text or reply.refusal or ""),
            reasons=self.redact(parsed.reasons) if parsed.reasons else None,
            latency_s=latency,
            tokens_in=reply.tokens_in,
            tokens_out=reply.tokens_out,
            cost_usd=cost,
            error=self.redact(parsed.error) if parsed.error else None,
            attempts=attempts,
            choice=parsed.choice,
            **self._base(),
        )
        result.served_model, result.served_fingerprint = reported_version(reply.raw)
        if storable(result):
            self.cache.put(
                prepared.key,
                result,
                system=s.name,
                endpoint_host=s.endpoint_host,
                images=prepared.sent,
                order=job.order,
                repeat=job.repeat,
                raw=_redact_json(reply.raw, self.redact),
                derivations=prepared.derivations,
            )
        return result


def _redact_json(obj: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, list):
        return [_redact_json(v, redact) for v in obj]
    if isinstance(obj, dict):
        return {k: _redact_json(v, redact) for k, v in obj.items()}
    return obj
