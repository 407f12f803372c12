"""Presets: which client, endpoint, key variable, price, lifecycle and capabilities a name means.

A preset only fills the fields a system left unset. Prices are per million
tokens, in USD, as listed by the provider on the date given (`as_of`); they
change, so every run records them and a config can override them with
`price_in_per_mtok` / `price_out_per_mtok`. Models are retired too: each preset
says whether it still answers (`Lifecycle`, checked by `judges.lifecycle` before
any work) and what it accepts (`Capabilities`). `reidbench presets` lists them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Family:
    """A kind of endpoint: the SDK that talks to it and its defaults."""

    name: str
    client: str  # openai | anthropic | gemini | hf: which provider module is used
    base_url: str | None
    api_key_env: str | None  # None: no key needed (local servers)
    structured_auto: str  # structured mode used when structured = "auto"
    structured_on: str  # structured mode used when structured = "on"
    local: bool = False  # local servers cost nothing
    note: str = ""


@dataclass(frozen=True)
class Price:
    in_per_mtok: float
    out_per_mtok: float
    as_of: str  # "as listed by the provider on" this date (YYYY-MM-DD)
    source: str  # the price page it was taken from
    verified: bool = True  # False: the stored provider page did not show it; see note
    note: str = ""


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "openai",
            "openai",
            "https://api.openai.com/v1",
            "OPENAI_API_KEY",
            "json_schema",
            "json_schema",
            note="OpenAI Chat Completions",
        ),
        Family(
            "anthropic",
            "anthropic",
            "https://api.anthropic.com",
            "ANTHROPIC_API_KEY",
            "tool",
            "tool",
            note="Anthropic Messages API",
        ),
        Family(
            "gemini",
            "gemini",
            "https://generativelanguage.googleapis.com",
            "GEMINI_API_KEY",
            "response_schema",
            "response_schema",
            note="native google-genai SDK",
        ),
        Family(
            "gemini-openai",
            "openai",
            "https://generativelanguage.googleapis.com/v1beta/openai/",
            "GEMINI_API_KEY",
            "json_schema",
            "json_schema",
            note="Gemini's OpenAI-compatible endpoint",
        ),
        Family(
            "dashscope",
            "openai",
            "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
            "DASHSCOPE_API_KEY",
            "off",
            "json_object",
            note="Alibaba Cloud Model Studio (DashScope), OpenAI-compatible mode",
        ),
        Family(
            "vllm",
            "openai",
            "http://localhost:8000/v1",
            None,
            "json_schema",
            "json_schema",
            local=True,
            note="local vLLM server",
        ),
        Family(
            "ollama",
            "openai",
            "http://localhost:11434/v1",
            None,
            "json_schema",
            "json_schema",
            local=True,
            note="local Ollama server",
        ),
        Family(
            "lmstudio",
            "openai",
            "http://localhost:1234/v1",
            None,
            "json_schema",
            "json_schema",
            local=True,
            note="local LM Studio server",
        ),
        Family(
            "sglang",
            "openai",
            "http://localhost:30000/v1",
            None,
            "json_schema",
            "json_schema",
            local=True,
            note="local SGLang server",
        ),
        Family(
            "hf",
            "hf",
            None,
            None,
            "off",
            "off",
            local=True,
            note="local Hugging Face transformers model",
        ),
    )
}

# Key used for local servers that need none: the SDKs insist on some string. Not a secret.
NO_KEY = "no-key-needed"

# -- lifecycle and capabilities ------------------------------------------------------------
# Every figure below was checked on 2026-12-04 against the copies of the providers' pages
# held by the project's search index (the build machine reaches no provider site). Where
# the provider's own page did not show a figure, `verified` is False and `note` names what
# did; docs/judges.md explains the procedure. Re-check before quoting a price in a paper.

_OPENAI_PRICES = "https://developers.openai.com/api/docs/pricing"
_OPENAI_DEPRECATIONS = "https://developers.openai.com/api/docs/deprecations"
_ANTHROPIC_PRICES_2025 = "https://docs.anthropic.com/en/docs/about-claude/pricing"
_ANTHROPIC_MODELS = "https://platform.claude.com/docs/en/about-claude/models/overview"
_ANTHROPIC_DEPRECATIONS = "https://platform.claude.com/docs/en/about-claude/model-deprecations"
_GEMINI_PRICES = "https://ai.google.dev/gemini-api/docs/pricing"
_GEMINI_DEPRECATIONS = "https://ai.google.dev/gemini-api/docs/deprecations"
_DASHSCOPE_MODELS = "https://www.alibabacloud.com/help/en/model-studio/models"
_QWEN_WEIGHTS = "https://huggingface.co/Qwen"

STATUSES = ("active", "deprecated", "retired")


@dataclass(frozen=True)
class Capabilities:
    """What a model accepts; the settings leave out what it would reject (docs/judges.md)."""

    logprobs: bool  # token log-probabilities (the yes-no-probability prompt needs them)
    temperature: bool  # accepts a non-default temperature
    seed: bool  # accepts a sampling seed
    max_tokens_param: str  # the request field that caps the answer's length
    structured_mode: str | None = (
        None  # structured-output mechanism it needs, when not the family's
    )
    note: str = ""


@dataclass(frozen=True)
class Lifecycle:
    """Whether a model still answers, by the provider's own terms."""

    status: str  # active | deprecated | retired
    date: str | None  # deprecated: announced shutdown date; retired: the day it stopped answering
    source: str  # the page that says so
    successor: str | None = None  # the provider's recommended replacement (family:model)
    verified: bool = True  # False: the stored provider page did not show this; see note
    note: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")
        if self.status != "active" and not self.date:
            raise ValueError(f"a {self.status} model needs its date")


@dataclass(frozen=True)
class Preset:
    """One documented `family:model`: its lifecycle, capabilities and price (None: not known)."""

    name: str
    lifecycle: Lifecycle
    capabilities: Capabilities
    price: Price | None = None


_CHAT = Capabilities(logprobs=True, temperature=True, seed=True, max_tokens_param="max_tokens")
_OPENAI_REASONING = Capabilities(
    logprobs=False,
    temperature=False,
    seed=False,
    max_tokens_param="max_completion_tokens",
    note="reasoning model: temperature only with reasoning_effort=none; no logprobs",
)
_CLAUDE_3 = Capabilities(
    logprobs=False, temperature=True, seed=False, max_tokens_param="max_tokens"
)
_CLAUDE_5 = Capabilities(
    logprobs=False,
    temperature=False,
    seed=False,
    max_tokens_param="max_tokens",
    structured_mode="output_config",
    note="Sonnet 5 and later answer 400 to non-default temperature and to forced tool use",
)
_GEMINI = Capabilities(
    logprobs=False, temperature=True, seed=True, max_tokens_param="max_output_tokens"
)
_DASHSCOPE = Capabilities(
    logprobs=False, temperature=True, seed=True, max_tokens_param="max_tokens"
)
_VLLM = Capabilities(logprobs=True, temperature=True, seed=True, max_tokens_param="max_tokens")
_OPEN_WEIGHTS = Lifecycle("active", None, _QWEN_WEIGHTS, note="open weights on your own server")

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        # -- OpenAI ------------------------------------------------------------------------
        Preset(
            "openai:gpt-4o",
            Lifecycle(
                "deprecated",
                "2027-01-14",
                _OPENAI_DEPRECATIONS,
                successor="openai:gpt-6-luna",
                verified=False,
                note="shutdown date and replacement as quoted from the deprecations page by "
                "ImportStatic (2026-10-15) and codersera.com; the stored official copy did not "
                "show that row",
            ),
            _CHAT,
            Price(
                2.50,
                10.00,
                "2025-01-30",
                "https://openai.com/api/pricing/",
                verified=False,
                note="the study-era price; third-party copies of the pricing page (2026) list "
                "the same; the stored official page did not show gpt-4o",
            ),
        ),
        Preset(
            "openai:gpt-6-luna",
            Lifecycle(
                "active",
                None,
                _OPENAI_DEPRECATIONS,
                verified=False,
                note="released 2026-09-22; named as the replacement of gpt-4o; no shutdown seen",
            ),
            _OPENAI_REASONING,
            Price(
                0.10,
                0.50,
                "2026-09-22",
                _OPENAI_PRICES,
                verified=False,
                note="launch prices as quoted by docs.litellm.ai (GPT-6 Sol and Luna) and "
                "codersera.com; the stored official pricing page did not show them",
            ),
        ),
        Preset(
            "openai:gpt-6-sol",
            Lifecycle(
                "active", None, _OPENAI_DEPRECATIONS, verified=False, note="released 2026-09-22"
            ),
            _OPENAI_REASONING,
            Price(
                2.00,
                10.00,
                "2026-09-22",
                _OPENAI_PRICES,
                verified=False,
                note="launch prices as quoted by docs.litellm.ai (GPT-6 Sol and Luna); the "
                "stored official pricing page did not show them",
            ),
        ),
        # -- Anthropic ---------------------------------------------------------------------
        Preset(
            "anthropic:claude-3-5-sonnet-latest",
            Lifecycle(
                "retired",
                "2025-10-22",
                _ANTHROPIC_DEPRECATIONS,
                successor="anthropic:claude-sonnet-5-5",
                verified=False,
                note="deprecated 2025-08-13, retired 2025-10-22, as quoted from the "
                "deprecations page by gitlab-org/gitlab#572012; successor: the current Sonnet "
                "(the stored deprecations page did not render its table)",
            ),
            _CLAUDE_3,
            Price(
                3.00,
                15.00,
                "2025-01-30",
                _ANTHROPIC_PRICES_2025,
                note="listed there as 'Claude Sonnet 3.5 (deprecated)' at $3 / $15",
            ),
        ),
        Preset(
            "anthropic:claude-sonnet-5-5",
            Lifecycle(
                "active",
                None,
                _ANTHROPIC_MODELS,
                note="the current Sonnet on the models overview; model ID follows "
                "claude-opus-5-5 (the stored page did not render its ID table)",
            ),
            _CLAUDE_5,
            Price(
                2.00,
                10.00,
                "2026-12-04",
                "https://platform.claude.com/docs/en/models/sonnet-5-5/overview",
                note="the model page is undated; read from the stored copy on 2026-12-04",
            ),
        ),
        Preset(
            "anthropic:claude-opus-5-5",
            Lifecycle("active", None, _ANTHROPIC_MODELS, note="released 2026-09-22"),
            _CLAUDE_5,
            Price(
                4.00,
                20.00,
                "2026-09-22",
                _ANTHROPIC_MODELS,
                note="$4 / $20 on the models overview; effective at its 2026-09-22 release",
            ),
        ),
        # -- Gemini ------------------------------------------------------------------------
        Preset(
            "gemini:gemini-2.0-flash",
            Lifecycle(
                "retired",
                "2026-06-01",
                _GEMINI_DEPRECATIONS,
                successor="gemini:gemini-2.5-flash",
                verified=False,
                note="Google's page listed 'earliest February 2026' with gemini-2.5-flash as "
                "replacement; the 2026-06-01 shutdown (404) is recorded by third-party docs "
                "(embabel-agent, morphllm.com)",
            ),
            _GEMINI,
            Price(
                0.10,
                0.40,
                "2025-02-05",
                _GEMINI_PRICES,
                verified=False,
                note="the study-era price; morphllm.com's 2026 copy of the page lists the same",
            ),
        ),
        Preset(
            "gemini:gemini-2.5-flash",
            Lifecycle(
                "retired",
                "2026-12-01",
                _GEMINI_DEPRECATIONS,
                successor="gemini:gemini-3.5-flash-lite",
                verified=False,
                note="as quoted from the deprecations page (read 2026-11-10) by "
                "aideprecations.com; since then its requests are answered by "
                "gemini-3.5-flash-lite at that model's rates",
            ),
            _GEMINI,
        ),
        Preset(
            "gemini:gemini-3.5-flash-lite",
            Lifecycle(
                "active",
                None,
                _GEMINI_DEPRECATIONS,
                verified=False,
                note="Google's named replacement of gemini-2.5-flash; no shutdown announced",
            ),
            _GEMINI,
            None,  # price not found in the stored pages: set price_in/out_per_mtok
        ),
        Preset(
            "gemini:gemini-3.5-flash",
            Lifecycle(
                "active", None, _GEMINI_DEPRECATIONS, verified=False, note="GA since 2026-05-19"
            ),
            _GEMINI,
            Price(
                1.50,
                9.00,
                "2026-05-19",
                _GEMINI_PRICES,
                verified=False,
                note="launch prices as transcribed from Google's page by morphllm.com and "
                "geotoolbox.ai (July 2026); the stored official page did not show them",
            ),
        ),
        Preset(
            "gemini:gemini-3.8-flash",
            Lifecycle(
                "active",
                None,
                _GEMINI_DEPRECATIONS,
                verified=False,
                note="named as the replacement of gemini-2.5-pro",
            ),
            _GEMINI,
            None,  # input $0.75/M 'through December 31, 2026' (a launch rate); output not found
        ),
        Preset(
            "gemini:gemini-3.1-pro",
            Lifecycle(
                "active",
                None,
                _GEMINI_DEPRECATIONS,
                verified=False,
                note="listed as current by third-party copies of Google's pages (2026); no "
                "shutdown seen",
            ),
            _GEMINI,
            Price(
                2.00,
                12.00,
                "2026-07-01",
                _GEMINI_PRICES,
                verified=False,
                note="prompts up to 200k tokens, as transcribed from Google's page by "
                "geotoolbox.ai (prices as of July 2026) and morphllm.com",
            ),
        ),
        # -- Qwen on DashScope -------------------------------------------------------------
        Preset(
            "dashscope:qwen-vl-max",
            Lifecycle(
                "active",
                None,
                _DASHSCOPE_MODELS,
                verified=False,
                note="an alias that moves to new snapshots; no retirement found",
            ),
            _DASHSCOPE,
            Price(
                0.80,
                3.20,
                "2025-02-01",
                _DASHSCOPE_MODELS,
                verified=False,
                note="the study-era price, cross-checked then; not in the stored pages now",
            ),
        ),
        Preset(
            "dashscope:qwen3-vl-plus",
            Lifecycle(
                "active",
                None,
                _DASHSCOPE_MODELS,
                verified=False,
                note="listed among Model Studio's models by third-party copies (2026-05)",
            ),
            _DASHSCOPE,
            None,  # input $0.20/M up to 32K per a generated third-party sheet; output not found
        ),
        # -- Qwen on your own vLLM server (no price: local) ---------------------------------
        Preset("vllm:Qwen/Qwen2.5-VL-7B-Instruct", _OPEN_WEIGHTS, _VLLM),
        Preset("vllm:Qwen/Qwen2.5-VL-72B-Instruct", _OPEN_WEIGHTS, _VLLM),
        Preset("vllm:Qwen/Qwen3-VL-8B-Instruct", _OPEN_WEIGHTS, _VLLM),
        Preset("vllm:Qwen/Qwen3-VL-32B-Instruct", _OPEN_WEIGHTS, _VLLM),
    )
}

# Families that reach another family's models through a second API (same model names).
_SAME_MODELS = {"gemini-openai": "gemini"}

#: Prices by preset name (images are billed as input tokens), kept for callers of the old table.
PRICES: dict[str, Price] = {
    **{name: p.price for name, p in PRESETS.items() if p.price is not None},
    "gemini-openai:gemini-2.0-flash": PRESETS["gemini:gemini-2.0-flash"].price,  # type: ignore[dict-item]
}

#: The study's four models, exactly as the study named them (configs/paper-market1501.toml).
STUDY_PRESETS = (
    "openai:gpt-4o",
    "gemini:gemini-2.0-flash",
    "anthropic:claude-3-5-sonnet-latest",
    "dashscope:qwen-vl-max",
)


def preset_for(family: str, model: str) -> Preset | None:
    """The documented preset for this family and model (Gemini's OpenAI endpoint included)."""
    found = PRESETS.get(f"{family}:{model}")
    if found is None and family in _SAME_MODELS:
        found = PRESETS.get(f"{_SAME_MODELS[family]}:{model}")
    return found


def successor_chain(name: str) -> list[Preset]:
    """The recommended successors of `name`, followed until one is not retired."""
    chain: list[Preset] = []
    current = PRESETS.get(name)
    while current is not None and current.lifecycle.successor:
        nxt = PRESETS.get(current.lifecycle.successor)
        if nxt is None or nxt in chain:
            break
        chain.append(nxt)
        if nxt.lifecycle.status != "retired":
            break
        current = nxt
    return chain


def split_preset(name: str) -> tuple[str, str]:
    """ "family:model" -> (family, model); the model may itself contain ':' (Ollama tags)."""
    family, sep, model = name.partition(":")
    return family.strip(), model.strip() if sep else ""


def price_for(family: str, model: str) -> Price | None:
    if family in FAMILIES and FAMILIES[family].local:
        return Price(0.0, 0.0, "local", "runs on your own hardware")
    preset = preset_for(family, model)
    return preset.price if preset is not None else None


def preset_record(preset: Preset) -> dict[str, Any]:
    """A preset as plain JSON-able data (`reidbench presets --json`)."""
    family, model = split_preset(preset.name)
    chain = successor_chain(preset.name)
    local = FAMILIES[family].local
    return {
        "name": preset.name,
        "family": family,
        "model": model,
        "lifecycle": dataclasses.asdict(preset.lifecycle),
        "active_successor": chain[-1].name if chain else None,
        "capabilities": dataclasses.asdict(preset.capabilities),
        "price": (
            {"local": True}
            if local
            else (dataclasses.asdict(preset.price) if preset.price is not None else None)
        ),
    }
