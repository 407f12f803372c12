"""Providers behind one interface (`base.Provider`); `make_provider` picks one per client kind."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reidbench.judges.providers.base import (
    PermanentError,
    Provider,
    ProviderError,
    ProviderReply,
    ProviderRequest,
    RetryableError,
)

if TYPE_CHECKING:
    from reidbench.judges.settings import ResolvedSystem

__all__ = [
    "PermanentError",
    "Provider",
    "ProviderError",
    "ProviderReply",
    "ProviderRequest",
    "RetryableError",
    "make_provider",
]


def make_provider(system: ResolvedSystem, api_key: str) -> Provider:
    """The provider for a resolved system. SDKs are imported only when used."""
    if system.pooled:  # a base_url list: one provider per endpoint, load-balanced
        from reidbench.judges.providers.pool import make_pool

        return make_pool(system, api_key, make_provider)
    # The SDK's own timeout is a backstop a little past the runner's, which governs.
    timeout = system.config.timeout_s + 1.0
    if system.client == "openai":
        from reidbench.judges.providers.openai_compat import OpenAICompatProvider

        assert system.base_url is not None
        return OpenAICompatProvider(
            base_url=system.base_url, api_key=api_key, model=system.model, timeout_s=timeout
        )
    if system.client == "anthropic":
        from reidbench.judges.providers.anthropic import AnthropicProvider

        assert system.base_url is not None
        return AnthropicProvider(
            base_url=system.base_url, api_key=api_key, model=system.model, timeout_s=timeout
        )
    if system.client == "gemini":
        from reidbench.judges.providers.gemini import GeminiProvider

        assert system.base_url is not None
        return GeminiProvider(
            base_url=system.base_url, api_key=api_key, model=system.model, timeout_s=timeout
        )
    if system.client == "hf":
        from reidbench.engine.context import current_engine
        from reidbench.judges.providers.hf import HFProvider

        options = dict(system.config.extra)
        if current_engine() is not None:  # one model per Ray actor, one actor per GPU
            import functools

            from reidbench.engine.ray_judges import RayProviderPool

            factory = functools.partial(HFProvider, model=system.model, options=options)
            return RayProviderPool(factory, name=system.model)
        return HFProvider(model=system.model, options=options)
    raise ValueError(f"unknown client {system.client!r}")
