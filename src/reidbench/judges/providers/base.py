"""The one small interface every provider implements, and its two error types.

A provider turns one request into one reply and classifies failures as
retryable or permanent. Everything else (rate limits, retries, timeouts,
budgets, caching, parsing, cost) lives in the runner, once.
"""

from __future__ import annotations

import copy
import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from reidbench.judges.images import EncodedImage


@dataclass(frozen=True)
class ProviderRequest:
    system: str  # system prompt text
    text: str  # user text (images are attached before it)
    images: list[EncodedImage]
    schema: dict[str, Any] | None  # JSON schema of the answer when structured output is used
    structured: str  # "off" or the client's mechanism (json_schema, tool, response_schema, ...)
    max_tokens: int
    temperature: float | None
    seed: int | None
    timeout_s: float
    extra: Mapping[str, Any] = field(default_factory=dict)
    # > 0: return the first answer token's top-N log-probabilities (judges/logprobs.py)
    top_logprobs: int = 0


@dataclass
class ProviderReply:
    text: str  # model text (for tool/structured answers: the JSON it produced)
    refusal: str | None = None  # the provider's own refusal field / stop reason
    safety: str | None = None  # why the provider blocked the request or answer
    tokens_in: int | None = None
    tokens_out: int | None = None
    finish_reason: str | None = None
    raw: Any = None  # the JSON-able response body, as stored in the cache
    # The first answer token's alternatives as (token text, natural-log probability), when
    # the request asked for them and the provider returned them; None otherwise.
    top_logprobs: list[tuple[str, float]] | None = None


class ProviderError(Exception):
    """A failed call; `message` must never contain the API key (the runner also redacts).

    `kind` says why no answer came when there was no HTTP status: "connection" (refused,
    reset, DNS) or "timeout"; the circuit breaker (judges/breaker.py) counts them.
    """

    def __init__(self, message: str, *, status: int | None = None, kind: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.kind = kind


class RetryableError(ProviderError):
    """429, 5xx, timeouts, connection errors, malformed bodies: worth another try."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(message, status=status, kind=kind)
        self.retry_after = retry_after


class PermanentError(ProviderError):
    """Other 4xx (bad request, auth, not found): retrying would only repeat it."""


class Provider(Protocol):
    async def complete(self, request: ProviderRequest) -> ProviderReply: ...

    async def aclose(self) -> None: ...


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds asked by `retry-after-ms` / `retry-after` (delta seconds or HTTP date)."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def is_retryable_status(status: int) -> bool:
    return status in (408, 429) or 500 <= status <= 599


def status_error(status: int, message: str, headers: Mapping[str, str] | None) -> ProviderError:
    """The runner's error for an HTTP error status."""
    if is_retryable_status(status):
        return RetryableError(
            f"HTTP {status}: {message}", status=status, retry_after=retry_after_seconds(headers)
        )
    return PermanentError(f"HTTP {status}: {message}", status=status)


def sdk_error(sdk: Any, exc: BaseException) -> ProviderError | None:
    """The runner's error for an exception of a Stainless-generated SDK (openai, anthropic).

    Both SDKs raise the same family of classes; one mapping keeps retry rules identical:
    HTTP statuses by `status_error`; timeouts, connection errors and malformed or
    truncated bodies are retryable. None: not an SDK error, let it propagate.
    """
    if isinstance(exc, sdk.APIStatusError):
        return status_error(exc.status_code, short(exc.message), exc.response.headers)
    if isinstance(exc, sdk.APITimeoutError):  # a subclass of APIConnectionError: test it first
        return RetryableError("request timed out", kind="timeout")
    if isinstance(exc, sdk.APIConnectionError):
        return RetryableError(f"connection error: {short(exc.message)}", kind="connection")
    if isinstance(exc, sdk.APIResponseValidationError):
        return RetryableError(f"malformed response: {short(exc.message)}")
    if isinstance(exc, ValueError):  # json.JSONDecodeError: a truncated or broken JSON body
        return RetryableError(f"malformed response body: {short(exc)}")
    return None


def short(text: object, limit: int = 300) -> str:
    s = str(text)
    return s if len(s) <= limit else s[:limit] + "..."


def closed_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Strict-mode schema: every object closed and fully required, range keywords dropped.

    OpenAI strict `json_schema` and Anthropic `output_config` want closed objects;
    `minimum`/`maximum` are not accepted everywhere, and the parser enforces the
    0-100 range anyway.
    """
    out = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            node.pop("minimum", None)
            node.pop("maximum", None)
            if node.get("type") == "object" and "properties" in node:
                node["additionalProperties"] = False
                node["required"] = list(node["properties"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(out)
    return out
