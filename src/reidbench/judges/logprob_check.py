"""The pre-flight refusal of a probability prompt on a model that returns no
log-probabilities (before any call). Apart from judges/logprobs.py, which the providers
import, so the provider registry can be consulted here without an import cycle."""

from __future__ import annotations

from reidbench.config import LVLMSystemConfig
from reidbench.errors import UserError


def check_logprobs(system: LVLMSystemConfig, family: str, client: str, model: str) -> None:
    """Refuse, before any call, a probability prompt on a model that returns no logprobs."""
    from reidbench.judges.lifecycle import preset_of
    from reidbench.judges.providers.registry import get_provider

    where = f"system {system.name!r}: prompt {system.prompt!r} scores by token log-probabilities"
    fix = (
        "use a verbalised prompt (e.g. similarity-0-100) for it, or a model that returns "
        "logprobs (OpenAI-compatible chat models, vLLM, SGLang, hf; see `reidbench presets`)"
    )
    if not get_provider(client).logprobs:
        raise UserError(f"{where}, and the {family} provider returns none; {fix}")
    preset = preset_of(system)
    if preset is not None and not preset.capabilities.logprobs:
        raise UserError(f"{where}, and {preset.name} does not return them; {fix}")
    if system.structured == "on":
        raise UserError(
            f'{where} of a one-word answer; set structured = "off" or "auto" (it is not used)'
        )
