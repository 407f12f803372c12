"""The pre-flight's endpoint probe: one cheap request per LVLM endpoint, through the same SDK
the runner uses, so the URL, auth header and error classes are exactly the run's.

- OpenAI-compatible servers (OpenAI, vLLM, Ollama, LM Studio, SGLang, DashScope, Gemini's
  compatible mode): `GET {base_url}/models`, once per (base_url, key), for every URL of a
  `base_url` list; every system's model must be listed (when the server lists any).
- Anthropic: `GET /v1/models/{model}`; Gemini: `models.get(model)`.
None of these generates tokens, so they cost nothing; the pre-flight still counts and
reports them. Refusals: no connection, timeout, 401/403, unknown model. A server that does
not implement the listing (404/405/501 on it) or answers 429/5xx is noted, not refused.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from reidbench.judges.breaker import safe_url
from reidbench.judges.providers.base import ProviderError, short, status_error
from reidbench.judges.settings import ResolvedSystem

_PROBE_TIMEOUT_S = 15.0  # at most this long per probe, whatever the system's timeout_s


def _timeout(system: ResolvedSystem) -> float:
    return min(float(system.config.timeout_s), _PROBE_TIMEOUT_S)


def _sdk_mapped(sdk: Any, exc: BaseException) -> ProviderError:
    from reidbench.judges.providers.base import sdk_error

    mapped = sdk_error(sdk, exc)
    if mapped is None:
        return ProviderError(f"{type(exc).__name__}: {short(exc)}", kind="connection")
    return mapped


async def _openai_models(system: ResolvedSystem, key: str) -> list[str]:
    import openai

    client = openai.AsyncOpenAI(
        api_key=key, base_url=system.base_url, max_retries=0, timeout=_timeout(system)
    )
    try:
        page = await client.models.list()
        return [str(m.id) for m in page.data]
    except Exception as exc:
        raise _sdk_mapped(openai, exc) from None
    finally:
        await client.close()


async def _anthropic_model(system: ResolvedSystem, key: str) -> None:
    import anthropic

    client = anthropic.AsyncAnthropic(
        api_key=key, base_url=system.base_url, max_retries=0, timeout=_timeout(system)
    )
    try:
        await client.models.retrieve(system.model)
    except Exception as exc:
        raise _sdk_mapped(anthropic, exc) from None
    finally:
        await client.close()


async def _gemini_model(system: ResolvedSystem, key: str) -> None:
    from reidbench.judges.providers.gemini import _import_genai

    genai, types, errors = _import_genai()
    options = types.HttpOptions(
        base_url=system.base_url,
        timeout=int(_timeout(system) * 1000),
        retry_options=types.HttpRetryOptions(attempts=1),
    )
    client = genai.Client(api_key=key, vertexai=False, http_options=options)
    try:
        await client.aio.models.get(model=system.model)
    except errors.APIError as exc:
        raise status_error(int(exc.code or 0), short(exc.message or exc), None) from None
    except Exception as exc:
        kind = "timeout" if "Timeout" in type(exc).__name__ else "connection"
        raise ProviderError(f"{type(exc).__name__}: {short(exc)}", kind=kind) from None
    finally:
        await client.aio.aclose()


def _listed(model: str, ids: list[str]) -> bool:
    return not ids or any(i in (model, f"models/{model}") or i.endswith("/" + model) for i in ids)


def _problem(names: list[str], url: str, env: str | None, exc: ProviderError) -> str | None:
    """The refusal line for a failed probe, or None when it only deserves a note."""
    who = "system " + ", ".join(repr(n) for n in names)
    if exc.kind == "timeout":
        return (
            f"{who}: no answer from {url} within {_PROBE_TIMEOUT_S:g} s ({exc.message}); "
            "check that the server is up and base_url is right"
        )
    if exc.status is None:
        return f"{who}: cannot reach {url} ({exc.message}); start the server or fix base_url"
    if exc.status in (401, 403):
        return (
            f"{who}: {url} rejected the API key from {env} (HTTP {exc.status}); "
            f"export a valid key in {env}"
        )
    return None


async def _probe_openai(systems: list[ResolvedSystem], key: str) -> tuple[list[str], list[str]]:
    first = systems[0]
    url = safe_url(first.base_url)
    names = [s.name for s in systems]
    try:
        ids = await _openai_models(first, key)
    except ProviderError as exc:
        problem = _problem(names, url, first.api_key_env, exc)
        if problem is not None:
            return [problem], []
        return [], [f"{url}/models answered {exc.message}; model names not verified"]
    problems = [
        f"system {s.name!r}: model {s.model!r} is not served at {url} (it serves "
        f"{', '.join(ids[:6])}{', ...' if len(ids) > 6 else ''}); fix model or base_url"
        for s in systems
        if not _listed(s.model, ids)
    ]
    return problems, []


async def _probe_one(system: ResolvedSystem, key: str) -> tuple[list[str], list[str]]:
    url = safe_url(system.base_url)
    try:
        if system.client == "anthropic":
            await _anthropic_model(system, key)
        else:
            await _gemini_model(system, key)
    except ProviderError as exc:
        problem = _problem([system.name], url, system.api_key_env, exc)
        if problem is not None:
            return [problem], []
        if exc.status == 404:
            return [
                f"system {system.name!r}: model {system.model!r} not found at {url} "
                f"({exc.message}); fix model (see the provider's model list)"
            ], []
        return [], [f"{url}: model lookup answered {exc.message}; model not verified"]
    return [], []


async def probe_all(
    systems: list[ResolvedSystem], keys: dict[str, str]
) -> tuple[list[str], list[str], int]:
    """Probe every endpoint concurrently: (problems, notes, requests made)."""
    groups: dict[tuple[str, str | None, str], list[ResolvedSystem]] = {}
    singles: list[ResolvedSystem] = []
    for s in systems:
        if s.client == "openai":  # every endpoint of a base_url list, each on its own
            for url in s.base_urls:
                one = dataclasses.replace(s, base_url=url)
                groups.setdefault((s.client, url, keys[s.name]), []).append(one)
        else:
            singles.append(s)
    coros = [_probe_openai(g, k) for (_c, _u, k), g in groups.items()]
    coros += [_probe_one(s, keys[s.name]) for s in singles]
    results = await asyncio.gather(*coros)
    problems = [p for ps, _ in results for p in ps]
    notes = [n for _, ns in results for n in ns]
    return problems, notes, len(coros)
