"""Presets: which client, endpoint, key variable and prices a `family:model` name means.

A preset only fills the fields a system left unset. Prices are per million
tokens, in USD, as listed by the provider on the date given (`as_of`); they
change, so every run records them and a config can override them with
`price_in_per_mtok` / `price_out_per_mtok`.
"""

from __future__ import annotations

from dataclasses import dataclass


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

_OPENAI_PRICES = "https://openai.com/api/pricing/"
_GEMINI_PRICES = "https://ai.google.dev/gemini-api/docs/pricing"
_ANTHROPIC_PRICES = "https://www.anthropic.com/pricing#api"
_DASHSCOPE_PRICES = "https://www.alibabacloud.com/help/en/model-studio/models"

#: The study's four models. Prices: USD per million tokens (images are billed as input tokens).
PRICES: dict[str, Price] = {
    "openai:gpt-4o": Price(2.50, 10.00, "2025-01-30", _OPENAI_PRICES),
    "gemini:gemini-2.0-flash": Price(0.10, 0.40, "2025-02-05", _GEMINI_PRICES),
    "gemini-openai:gemini-2.0-flash": Price(0.10, 0.40, "2025-02-05", _GEMINI_PRICES),
    "anthropic:claude-3-5-sonnet-latest": Price(3.00, 15.00, "2025-01-30", _ANTHROPIC_PRICES),
    "dashscope:qwen-vl-max": Price(0.80, 3.20, "2025-02-01", _DASHSCOPE_PRICES),
}

#: The names `reidbench` documents as presets (family:model); any `local-family:model` works too.
STUDY_PRESETS = (
    "openai:gpt-4o",
    "gemini:gemini-2.0-flash",
    "anthropic:claude-3-5-sonnet-latest",
    "dashscope:qwen-vl-max",
)


def split_preset(name: str) -> tuple[str, str]:
    """ "family:model" -> (family, model); the model may itself contain ':' (Ollama tags)."""
    family, sep, model = name.partition(":")
    return family.strip(), model.strip() if sep else ""


def price_for(family: str, model: str) -> Price | None:
    if family in FAMILIES and FAMILIES[family].local:
        return Price(0.0, 0.0, "local", "runs on your own hardware")
    return PRICES.get(f"{family}:{model}")
