"""`judge_pairs`: ask one LVLM system about every pair, resumably, and return a scores table.

Planning happens before any call: every request (pair x order x repeat) gets
its cache key from the source files' hashes and the recorded derivation of
the bytes sent, so a finished run is answered from the cache without decoding
an image or creating a client. Only what has no committed answer is asked.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa

from reidbench.config import LVLMSystemConfig
from reidbench.errors import UserError
from reidbench.judges import served
from reidbench.judges.cache import ResponseCache
from reidbench.judges.claims import DEFAULT_LEASE_S
from reidbench.judges.presets import NO_KEY
from reidbench.judges.providers import make_provider
from reidbench.judges.result import JudgeResult, storable
from reidbench.judges.runner import Job, Runner, derivation_key, request_key
from reidbench.judges.settings import ResolvedSystem, resolve_system
from reidbench.progress import Progress, reporting
from reidbench.tables import SCORES_SCHEMA

REQUIRED_COLUMNS = ("pair_id", "path_a", "path_b")


def _file_hashes(root: Path, paths: set[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for rel in sorted(paths):
        path = root / rel
        try:
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        except FileNotFoundError as exc:
            raise UserError(
                f"{path}: image not found; check the dataset root and the pairs file"
            ) from exc
        except OSError as exc:
            raise UserError(f"{path}: cannot read image ({exc})") from exc
    return out


def plan_jobs(
    system: ResolvedSystem, pairs: pa.Table, root: Path, cache: ResponseCache
) -> list[Job]:
    """All requests in output order; identical requests point at one leader job."""
    missing = [c for c in REQUIRED_COLUMNS if c not in pairs.column_names]
    if missing:
        raise UserError(f"pairs table lacks columns {missing}; create it with `reidbench pairs`")
    pair_ids = pairs.column("pair_id").to_pylist()
    path_a = pairs.column("path_a").to_pylist()
    path_b = pairs.column("path_b").to_pylist()
    if any(p is None for p in pair_ids + path_a + path_b):
        raise UserError("pairs table has empty pair_id/path_a/path_b values; re-create it")
    hashes = _file_hashes(root, set(path_a) | set(path_b))
    c, spec = system.config, system.image_spec
    orders = ("ab", "ba") if c.both_orders else ("ab",)
    jobs: list[Job] = []
    for pid, a, b in zip(pair_ids, path_a, path_b, strict=True):
        for order in orders:
            first, second = (a, b) if order == "ab" else (b, a)
            if spec.mode == "composite":
                derivs = [derivation_key([hashes[first], hashes[second]], spec)]
            else:
                derivs = [
                    derivation_key([hashes[first]], spec),
                    derivation_key([hashes[second]], spec),
                ]
            for repeat in range(c.repeats):
                jobs.append(Job(len(jobs), int(pid), first, second, order, repeat, derivs))
    known = cache.sent_shas(d for job in jobs for d in job.derivations)
    for job in jobs:
        if all(d in known for d in job.derivations):
            sent = [h for d in job.derivations for h in known[d]]
            job.key = request_key(system, sent, job.order, job.repeat)
    return jobs


def _rederive(result: JudgeResult, system: ResolvedSystem) -> JudgeResult:
    """Score prompts: the decision follows the score at this run's threshold."""
    scored = system.prompt.answer in ("score", "probability")
    if scored and result.status == "ok" and result.score is not None:
        result.decision = "same" if result.score >= system.config.threshold else "different"
    return result


def _follow(leader: JudgeResult) -> JudgeResult:
    """The result for a request identical to another in this run: no call of its own."""
    data = leader.to_dict()
    data.update(cached=storable(leader), attempts=0)
    return JudgeResult.from_dict(data)


def _table(system: ResolvedSystem, jobs: list[Job], results: dict[int, JudgeResult]) -> pa.Table:
    rows = [results[j.index].to_row(j.pair_id, system.name, j.order, j.repeat) for j in jobs]
    table = pa.Table.from_pylist(rows, schema=SCORES_SCHEMA)
    return served.attach(table, served.served_summary(results[j.index] for j in jobs))


async def answer_jobs(
    resolved: ResolvedSystem,
    jobs: list[Job],
    root: Path,
    cache: ResponseCache,
    *,
    progress: Progress | None = None,
    environ: Mapping[str, str] = os.environ,
    stopped: list[str] | None = None,
) -> dict[int, JudgeResult]:
    """The result of every planned job (by `Job.index`): cache hits first, identical requests
    asked once, the rest through the `Runner` (limits, retries, budgets, claims).

    Shared by every task that asks an LVLM (pairs, multiple choice), so they all get the same
    caching, resume and budget rules."""
    hits = cache.get_many(j.key for j in jobs if j.key is not None)
    results: dict[int, JudgeResult] = {}
    leaders: dict[tuple[object, ...], Job] = {}
    todo: list[Job] = []
    for job in jobs:
        if job.key is not None and job.key in hits:
            results[job.index] = _rederive(hits[job.key], resolved)
            continue
        sig = (tuple(job.derivations), job.order, job.repeat)
        if sig in leaders:
            leaders[sig].followers.append(job.index)
        else:
            leaders[sig] = job
            todo.append(job)
    with reporting(progress, f"judge {resolved.name}", len(jobs)) as bar:
        bar.advance(len(results), calls=0, cost="$0.0000")
        if todo:
            api_key = resolved.api_key(environ)  # a missing key stops us before any call
            secret = api_key if api_key != NO_KEY and len(api_key) >= 6 else None

            def redact(text: str) -> str:
                return text.replace(secret, "[redacted]") if secret and text else text

            provider = make_provider(resolved, api_key)
            try:
                # Budget caps cover the run directory's answers, earlier runs included.
                runner = Runner(
                    resolved,
                    provider,
                    cache,
                    root,
                    progress=bar,
                    redact=redact,
                    prior_calls=len(hits),
                    prior_spent=sum(float(h.cost_usd or 0.0) for h in hits.values()),
                )
                answered = await runner.run(todo)
            finally:
                await provider.aclose()
            if runner.breaker.reason is not None and stopped is not None:
                stopped.append(runner.breaker.reason)
            for job in todo:
                results[job.index] = _rederive(answered[job.index], resolved)
                for idx in job.followers:
                    results[idx] = _follow(results[job.index])
    return results


async def ajudge_pairs(
    system: LVLMSystemConfig,
    pairs: pa.Table,
    root: Path,
    *,
    cache_path: Path,
    progress: Progress | None = None,
    environ: Mapping[str, str] = os.environ,
    stopped: list[str] | None = None,
    claim_lease_s: float | None = None,
) -> pa.Table:
    """`judge_pairs` for callers already inside an event loop."""
    resolved = resolve_system(system)
    root = Path(root)
    lease = DEFAULT_LEASE_S if claim_lease_s is None else claim_lease_s
    with ResponseCache(cache_path, claim_lease_s=lease) as cache:
        jobs = plan_jobs(resolved, pairs, root, cache)
        results = await answer_jobs(
            resolved, jobs, root, cache, progress=progress, environ=environ, stopped=stopped
        )
    return _table(resolved, jobs, results)


def judge_pairs(
    system: LVLMSystemConfig,
    pairs: pa.Table,
    root: Path,
    *,
    cache_path: Path,
    progress: Progress | None = None,
    environ: Mapping[str, str] = os.environ,
    stopped: list[str] | None = None,
    claim_lease_s: float | None = None,
) -> pa.Table:
    """Judge every pair (x order x repeat) with one LVLM system; rows follow `SCORES_SCHEMA`.

    Rows come in pair order, then order ("ab", "ba"), then repeat. Every answer
    is committed to the cache at `cache_path` as it arrives, so a killed run
    loses only the calls in flight, and a re-run asks only what has no answer.
    Requests not sent because a budget cap was reached get `budget_exceeded`. When the
    circuit breaker stops the system (judges/breaker.py), its reason is appended to
    `stopped` and the requests not sent get `api_error` (asked again by the next run).
    Several writers may share `cache_path`: each request is claimed before it is
    asked, with leases of `claim_lease_s` (docs/judges.md), so none is paid twice.
    """
    return asyncio.run(
        ajudge_pairs(
            system,
            pairs,
            root,
            cache_path=cache_path,
            progress=progress,
            environ=environ,
            stopped=stopped,
            claim_lease_s=claim_lease_s,
        )
    )
