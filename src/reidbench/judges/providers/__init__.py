"""Providers behind one interface (`base.Provider`); `make_provider` picks the registered
`ProviderSpec` of a system's client kind (providers/registry.py)."""

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
from reidbench.judges.providers.registry import (
    ProviderSpec,
    get_provider,
    provider_specs,
    register_provider,
)

if TYPE_CHECKING:
    from reidbench.judges.settings import ResolvedSystem

__all__ = [
    "PermanentError",
    "Provider",
    "ProviderError",
    "ProviderReply",
    "ProviderRequest",
    "ProviderSpec",
    "RetryableError",
    "get_provider",
    "make_provider",
    "provider_specs",
    "register_provider",
]


def make_provider(system: ResolvedSystem, api_key: str) -> Provider:
    """The provider for a resolved system, from the registered `ProviderSpec` of its client.
    SDKs are imported only when used."""
    if system.pooled:  # a base_url list: one provider per endpoint, load-balanced
        from reidbench.judges.providers.pool import make_pool

        return make_pool(system, api_key, make_provider)
    # The SDK's own timeout is a backstop a little past the runner's, which governs.
    timeout = system.config.timeout_s + 1.0
    return get_provider(system.client).factory(system, api_key, timeout)
