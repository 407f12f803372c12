"""OpenAI Chat Completions through the official `openai` SDK, for any compatible endpoint.

Covers OpenAI itself, Gemini's and DashScope's OpenAI-compatible endpoints
and local vLLM / Ollama / LM Studio / SGLang servers (one `base_url` each).
SDK retries are off: the runner owns retries.
"""

from __future__ import annotations

import base64
from typing import Any

import openai
from openai.types.chat import ChatCompletion

from reidbench.judges.providers.base import (
    ProviderReply,
    ProviderRequest,
    RetryableError,
    closed_schema,
    sdk_error,
    short,
)

_SAFETY_CODES = {"datainspectionfailed", "data_inspection_failed"}


def _is_safety_block(exc: openai.APIStatusError) -> str | None:
    """DashScope rejects inputs its content inspection flags with `DataInspectionFailed`."""
    body = exc.body if isinstance(exc.body, dict) else {}
    for value in (exc.code, exc.type, body.get("code"), body.get("type")):
        if isinstance(value, str) and value.replace("-", "_").lower() in _SAFETY_CODES:
            return f"DataInspectionFailed: {short(exc.message, 200)}"
    if "DataInspectionFailed" in str(exc.message):
        return f"DataInspectionFailed: {short(exc.message, 200)}"
    return None


def _first_token_alternatives(choice: Any) -> list[tuple[str, float]] | None:
    """choices[0].logprobs.content[0].top_logprobs as (token, logprob); None when absent."""
    logprobs = getattr(choice, "logprobs", None)
    content = getattr(logprobs, "content", None) if logprobs is not None else None
    if not content:
        return None
    first = content[0]
    tops = getattr(first, "top_logprobs", None) or []
    out = [
        (t.token, float(t.logprob))
        for t in tops
        if isinstance(getattr(t, "token", None), str) and getattr(t, "logprob", None) is not None
    ]
    if not out and isinstance(first.token, str) and first.logprob is not None:
        out = [(first.token, float(first.logprob))]  # a server that gives the chosen one only
    return out


class OpenAICompatProvider:
    def __init__(self, *, base_url: str, api_key: str, model: str, timeout_s: float) -> None:
        self.model = model
        self._strict_for: tuple[dict[str, Any], dict[str, Any]] | None = None  # (schema, strict)
        self.client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s
        )

    def _kwargs(self, req: ProviderRequest) -> dict[str, Any]:
        detail = req.extra.get("image_detail")
        content: list[dict[str, Any]] = []
        for img in req.images:
            url = f"data:{img.mime};base64,{base64.b64encode(img.data).decode('ascii')}"
            image_url: dict[str, Any] = {"url": url}
            if detail:
                image_url["detail"] = detail
            content.append({"type": "image_url", "image_url": image_url})
        content.append({"type": "text", "text": req.text})
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": req.system},
                {"role": "user", "content": content},
            ],
            str(req.extra.get("max_tokens_param", "max_tokens")): req.max_tokens,
        }
        if req.temperature is not None:
            kwargs["temperature"] = req.temperature
        if req.seed is not None:
            kwargs["seed"] = req.seed
        if req.structured == "json_schema" and req.schema is not None:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": "judgement",
                    "strict": True,
                    "schema": self._strict(req.schema),
                },
            }
        elif req.structured == "json_object":
            kwargs["response_format"] = {"type": "json_object"}
        if req.top_logprobs:
            kwargs["logprobs"] = True
            kwargs["top_logprobs"] = req.top_logprobs
        return kwargs

    def _strict(self, schema: dict[str, Any]) -> dict[str, Any]:
        # The runner passes the same schema object on every call: convert it once.
        if self._strict_for is None or self._strict_for[0] is not schema:
            self._strict_for = (schema, closed_schema(schema))
        return self._strict_for[1]

    async def complete(self, req: ProviderRequest) -> ProviderReply:
        try:
            # The SDK's generic `post` (its documented way to send a raw body) instead of the
            # typed `chat.completions.create`: the same endpoint, auth, errors and
            # `ChatCompletion` result, without `create`'s recursive parameter transform,
            # the largest single cost per call in a profile (docs/benchmarks.md).
            resp = await self.client.post(
                "/chat/completions",
                cast_to=ChatCompletion,
                body=self._kwargs(req),
                options={"timeout": req.timeout_s, "security": {"bearer_auth": True}},
            )
        except Exception as exc:
            if isinstance(exc, openai.APIStatusError) and (safety := _is_safety_block(exc)):
                return ProviderReply(text="", safety=safety, raw={"error": exc.body})
            mapped = sdk_error(openai, exc)
            if mapped is None:
                raise
            raise mapped from None
        return self._reply(resp)

    def _reply(self, resp: Any) -> ProviderReply:
        if not isinstance(resp, ChatCompletion) or not getattr(resp, "choices", None):
            raise RetryableError(f"malformed response: not a chat completion ({short(resp, 120)})")
        raw = resp.to_dict(mode="json")
        choice = resp.choices[0]
        message = getattr(choice, "message", None)
        if message is None:
            raise RetryableError("malformed response: choice without message")
        usage = getattr(resp, "usage", None)
        tokens_in = getattr(usage, "prompt_tokens", None) if usage else None
        tokens_out = getattr(usage, "completion_tokens", None) if usage else None
        finish = getattr(choice, "finish_reason", None)
        text = message.content if isinstance(message.content, str) else ""
        refusal = getattr(message, "refusal", None)
        safety = None
        if finish == "content_filter":
            safety = "finish_reason=content_filter"
        return ProviderReply(
            text=text,
            refusal=refusal if isinstance(refusal, str) and refusal.strip() else None,
            safety=safety,
            tokens_in=tokens_in if isinstance(tokens_in, int) else None,
            tokens_out=tokens_out if isinstance(tokens_out, int) else None,
            finish_reason=finish if isinstance(finish, str) else None,
            raw=raw,
            top_logprobs=_first_token_alternatives(choice),
        )

    async def aclose(self) -> None:
        await self.client.close()
