"""Provider SDKs: one `ProviderSpec` per client kind, registered by name.

A new LVLM SDK is one `providers/x.py` with a `Provider` class plus one
`register_provider` call (or an entry point in the `reidbench.providers` group
for a third-party package). The spec names the client factory, the structured
output mechanisms the SDK offers and its endpoint defaults; registering also
adds a provider family of the same name, so `provider = "x"` works in configs
(docs/extending.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reidbench.errors import UserError
from reidbench.judges.presets import FAMILIES, Family
from reidbench.judges.providers.base import Provider

if TYPE_CHECKING:
    from reidbench.judges.settings import ResolvedSystem


@dataclass(frozen=True)
class ProviderSpec:
    """name: the client kind; factory(system, api_key, timeout_s) -> Provider, importing its
    SDK only when called; structured_modes: values extra.structured_mode may take; the rest
    are defaults of the family registered under the same name."""

    name: str
    factory: Callable[[ResolvedSystem, str, float], Provider]
    structured_modes: tuple[str, ...] = ()
    base_url: str | None = None
    api_key_env: str | None = None
    structured_auto: str = "off"
    structured_on: str = "off"
    needs_base_url: bool = True
    local: bool = False
    note: str = ""
    # Returns the first answer token's log-probabilities (ProviderReply.top_logprobs): the
    # yes-no-probability prompt runs only on such clients (judges/logprobs.py).
    logprobs: bool = False


_PROVIDERS: dict[str, ProviderSpec] = {}


def register_provider(spec: ProviderSpec, *, replace: bool = False) -> ProviderSpec:
    """Add a client kind (and a family of the same name unless one exists)."""
    if spec.name in _PROVIDERS and not replace:
        raise ValueError(f"provider {spec.name!r} is already registered")
    for mode in {spec.structured_auto, spec.structured_on} - {"off"}:
        if mode not in spec.structured_modes:
            raise ValueError(f"provider {spec.name!r}: {mode!r} is not in its structured_modes")
    _PROVIDERS[spec.name] = spec
    family = Family(
        spec.name,
        spec.name,
        spec.base_url,
        spec.api_key_env,
        spec.structured_auto,
        spec.structured_on,
        local=spec.local,
        note=spec.note,
    )
    if replace:
        FAMILIES[spec.name] = family
    else:
        FAMILIES.setdefault(spec.name, family)
    return spec


def load_provider_plugins() -> None:
    """Third-party SDKs from the `reidbench.providers` entry points, once."""
    from reidbench.plugins import PROVIDERS, load_entry_points

    load_entry_points(PROVIDERS, register_provider)


def get_provider(client: str) -> ProviderSpec:
    load_provider_plugins()
    spec = _PROVIDERS.get(client)
    if spec is None:
        raise UserError(f"unknown provider client {client!r}; registered: {sorted(_PROVIDERS)}")
    return spec


def provider_specs() -> dict[str, ProviderSpec]:
    load_provider_plugins()
    return dict(_PROVIDERS)


def _openai(system: ResolvedSystem, api_key: str, timeout: float) -> Provider:
    from reidbench.judges.providers.openai_compat import OpenAICompatProvider

    assert system.base_url is not None
    return OpenAICompatProvider(
        base_url=system.base_url, api_key=api_key, model=system.model, timeout_s=timeout
    )


def _anthropic(system: ResolvedSystem, api_key: str, timeout: float) -> Provider:
    from reidbench.judges.providers.anthropic import AnthropicProvider

    assert system.base_url is not None
    return AnthropicProvider(
        base_url=system.base_url, api_key=api_key, model=system.model, timeout_s=timeout
    )


def _gemini(system: ResolvedSystem, api_key: str, timeout: float) -> Provider:
    from reidbench.judges.providers.gemini import GeminiProvider

    assert system.base_url is not None
    return GeminiProvider(
        base_url=system.base_url, api_key=api_key, model=system.model, timeout_s=timeout
    )


def _hf(system: ResolvedSystem, api_key: str, timeout: float) -> Provider:
    from reidbench.engine.context import current_engine
    from reidbench.judges.providers.hf import HFProvider

    options = dict(system.config.extra)
    if current_engine() is not None:  # one model per Ray actor, one actor per GPU
        import functools

        from reidbench.engine.ray_judges import RayProviderPool

        factory = functools.partial(HFProvider, model=system.model, options=options)
        return RayProviderPool(factory, name=system.model)
    return HFProvider(model=system.model, options=options)


# The built-in families (presets.py) already exist, so these add only the clients.
for _spec in (
    ProviderSpec(
        "openai",
        _openai,
        ("json_schema", "json_object"),
        "https://api.openai.com/v1",
        "OPENAI_API_KEY",
        "json_schema",
        "json_schema",
        logprobs=True,
    ),
    ProviderSpec(
        "anthropic",
        _anthropic,
        ("tool", "output_config"),
        "https://api.anthropic.com",
        "ANTHROPIC_API_KEY",
        "tool",
        "tool",
    ),
    ProviderSpec(
        "gemini",
        _gemini,
        ("response_schema", "response_json_schema"),
        "https://generativelanguage.googleapis.com",
        "GEMINI_API_KEY",
        "response_schema",
        "response_schema",
        logprobs=True,
    ),
    ProviderSpec("hf", _hf, (), needs_base_url=False, local=True, logprobs=True),
):
    register_provider(_spec)
