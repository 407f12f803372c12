"""Resolve an `LVLMSystemConfig` into complete settings: preset filled in, prompt loaded.

The runner, the cache key and the run manifest all read this one resolved
view, so they cannot disagree about which model, endpoint or prompt a run used.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from reidbench.config import LVLMSystemConfig
from reidbench.errors import UserError
from reidbench.judges.images import ImageSpec
from reidbench.judges.lifecycle import effective_config
from reidbench.judges.logprob_check import check_logprobs
from reidbench.judges.presets import FAMILIES, NO_KEY, Price, price_for, split_preset
from reidbench.judges.prompts import Prompt, load_prompt
from reidbench.judges.providers.registry import get_provider, load_provider_plugins
from reidbench.rundir import DEFAULT_SCALE

SCALE = DEFAULT_SCALE["lvlm"]  # LVLM prompts answer on 0-100

# The cache key's endpoint for a `base_url` list: one value for the whole pool, whichever
# server answered, so a resume against more, fewer or other nodes reuses every answer.
POOL_HOST = "pool"


@dataclass(frozen=True)
class ResolvedSystem:
    config: LVLMSystemConfig
    family: str
    client: str
    model: str
    base_url: str | None
    endpoint_host: str
    api_key_env: str | None
    prompt: Prompt
    structured: str  # "off" or one of the client's ProviderSpec.structured_modes
    price: Price | None
    price_source: str  # preset | override | unknown
    image_spec: ImageSpec
    # Every endpoint: one for a single base_url, several for a pool (a base_url list).
    base_urls: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def pooled(self) -> bool:
        """True for a `base_url` list: requests go through the pool provider."""
        return self.endpoint_host == POOL_HOST

    @property
    def endpoint_urls(self) -> str | tuple[str, ...] | None:
        """What messages name: the URL, or every URL of a pool (see `breaker.safe_url`)."""
        return self.base_urls if self.pooled else self.base_url

    @property
    def workers(self) -> int:
        """Requests in flight at most: `concurrency` per endpoint of a pool."""
        return self.config.concurrency * (len(self.base_urls) if self.pooled else 1)

    def params(self) -> dict[str, Any]:
        """Generation parameters: everything besides prompt and images that shapes the answer."""
        c = self.config
        return {
            "temperature": c.temperature,
            "max_tokens": c.max_tokens,
            "seed": c.seed,
            "structured": self.structured,
            "extra": dict(sorted(c.extra.items())),
        }

    def api_key(self, environ: Mapping[str, str] = os.environ) -> str:
        """The key from the environment variable the system names; never stored anywhere."""
        if self.api_key_env is None:
            return NO_KEY
        key = environ.get(self.api_key_env, "")
        if not key.strip():
            raise UserError(
                f"system {self.name!r}: environment variable {self.api_key_env} is not set; "
                f"export your {self.family} API key in {self.api_key_env}"
            )
        return key.strip()

    def cost(self, tokens_in: int | None, tokens_out: int | None) -> float | None:
        if self.price is None or tokens_in is None or tokens_out is None:
            return None
        return (tokens_in * self.price.in_per_mtok + tokens_out * self.price.out_per_mtok) / 1e6


def _host(url: str | None) -> str:
    if not url:
        return "local"
    parts = urlsplit(url)
    if not parts.hostname:
        raise UserError(
            f"base_url {url!r} has no host; give a URL such as http://localhost:8000/v1"
        )
    # Host and port only: never a path, query or user:password that could hold a secret.
    return parts.hostname + (f":{parts.port}" if parts.port else "")


def _endpoints(system: LVLMSystemConfig, client: str, default: str | None) -> tuple[str, ...]:
    """The endpoint list; a `base_url` list is checked URL by URL (OpenAI-compatible only)."""
    if not isinstance(system.base_url, list):
        url = system.base_url or default
        return (url,) if url else ()
    urls = system.base_url
    where = f"system {system.name!r}: base_url list"
    if client != "openai":
        raise UserError(
            f"{where} is for OpenAI-compatible servers (vLLM, SGLang, ...), not the {client} "
            "client; give one URL"
        )
    if not urls:
        raise UserError(f"{where} is empty; give at least one URL, e.g. http://node1:8000/v1")
    for url in urls:
        _host(url)
    if len(set(urls)) != len(urls):
        dup = next(u for u in urls if urls.count(u) > 1)
        raise UserError(f"{where} names {dup!r} twice; list each server once")
    return tuple(urls)


host_of = _host  # public name: the pool's endpoints get their own host


def _structured(system: LVLMSystemConfig, family: str, client: str) -> str:
    fam = FAMILIES[family]
    if system.structured == "off":
        return "off"
    chosen = system.extra.get("structured_mode")
    if chosen is not None:
        modes = get_provider(client).structured_modes
        if chosen not in modes:
            raise UserError(
                f"system {system.name!r}: extra.structured_mode {chosen!r} is not available for "
                f"the {client} client; choose one of {list(modes) or ['(none)']}"
            )
        return str(chosen)
    if system.structured == "on" and fam.structured_on == "off":
        raise UserError(
            f"system {system.name!r}: the {family} provider has no structured output; "
            'set structured = "auto" or "off"'
        )
    return fam.structured_on if system.structured == "on" else fam.structured_auto


def _price(system: LVLMSystemConfig, family: str, model: str) -> tuple[Price | None, str]:
    preset = price_for(family, model)
    p_in, p_out = system.price_in_per_mtok, system.price_out_per_mtok
    if p_in is None and p_out is None:
        return preset, "preset" if preset else "unknown"
    p_in = p_in if p_in is not None else (preset.in_per_mtok if preset else None)
    p_out = p_out if p_out is not None else (preset.out_per_mtok if preset else None)
    if p_in is None or p_out is None:
        raise UserError(
            f"system {system.name!r}: no preset price for {family}:{model}; "
            "set both price_in_per_mtok and price_out_per_mtok"
        )
    return Price(p_in, p_out, "config", "price_in_per_mtok / price_out_per_mtok"), "override"


def resolve_system(system: LVLMSystemConfig) -> ResolvedSystem:
    """Fill unset fields from the preset and check that the result can run."""
    load_provider_plugins()  # plugin SDKs add their families
    pre_family, pre_model = split_preset(system.preset) if system.preset else ("", "")
    family = system.provider or pre_family
    model = system.model or pre_model
    if not family:
        raise UserError(
            f'system {system.name!r}: set preset (e.g. "openai:gpt-4o") or provider; '
            f"providers: {sorted(FAMILIES)}"
        )
    if family not in FAMILIES:
        raise UserError(
            f"system {system.name!r}: unknown provider {family!r}; choose one of {sorted(FAMILIES)}"
        )
    if not model:
        raise UserError(f'system {system.name!r}: no model; set model or preset = "{family}:MODEL"')
    fam = FAMILIES[family]
    prompt = load_prompt(system.prompt)
    if prompt.answer == "probability":  # before any call: the model must give logprobs
        check_logprobs(system, family, fam.client, model)
    system = effective_config(system, fam.client)  # what the model accepts (its capabilities)
    base_urls = _endpoints(system, fam.client, fam.base_url)
    pooled = isinstance(system.base_url, list)
    base_url = base_urls[0] if base_urls else None  # a pool's first URL (messages only)
    price, price_source = _price(system, family, model)
    if system.max_cost_usd is not None and price is None:
        raise UserError(
            f"system {system.name!r}: max_cost_usd needs prices, and {family}:{model} has no "
            "preset price; set price_in_per_mtok and price_out_per_mtok"
        )
    return ResolvedSystem(
        config=system,
        family=family,
        client=fam.client,
        model=model,
        base_url=base_url,
        endpoint_host=(
            POOL_HOST
            if pooled
            else _host(base_url)
            if get_provider(fam.client).needs_base_url
            else "local"
        ),
        api_key_env=system.api_key_env or fam.api_key_env,
        prompt=prompt,
        structured="off"
        if prompt.answer == "probability"
        else _structured(system, family, fam.client),
        price=price,
        price_source=price_source,
        image_spec=ImageSpec(
            mode=system.image_mode,
            size=system.image_size,
            fmt=system.image_format,
            quality=system.jpeg_quality,
        ),
        base_urls=base_urls,
    )


def system_manifest(system: LVLMSystemConfig | ResolvedSystem) -> dict[str, Any]:
    """What a run records about a judge. Names the key variable, never its value."""
    r = system if isinstance(system, ResolvedSystem) else resolve_system(system)
    c = r.config
    pool = {"endpoints": [_host(u) for u in r.base_urls]} if r.pooled else {}
    return {
        **pool,
        "name": c.name,
        "type": "lvlm",
        "provider": r.family,
        "client": r.client,
        "model": r.model,
        "endpoint_host": r.endpoint_host,
        "api_key_env": r.api_key_env,
        "prompt_id": r.prompt.id,
        "prompt_version": r.prompt.version,
        "prompt_answer": r.prompt.answer,
        "prompt_sha256": r.prompt.sha256,
        "params": {
            **r.params(),
            **r.image_spec.key(),
            "concurrency": c.concurrency,
            "rpm": c.rpm,
            "tpm": c.tpm,
            "timeout_s": c.timeout_s,
            "max_retries": c.max_retries,
            "max_calls": c.max_calls,
            "max_cost_usd": c.max_cost_usd,
        },
        "prices": {
            "in_per_mtok": r.price.in_per_mtok if r.price else None,
            "out_per_mtok": r.price.out_per_mtok if r.price else None,
            "as_of": r.price.as_of if r.price else None,
            "source": r.price_source,
        },
        "scale": SCALE,
        "threshold": c.threshold,
        # set in the config: used as is, not cross-fitted (docs/metrics.md, Thresholds)
        "threshold_fixed": "threshold" in c.model_fields_set,
        "both_orders": c.both_orders,
        "repeats": c.repeats,
    }
