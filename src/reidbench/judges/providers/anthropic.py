"""Anthropic Messages API through the official `anthropic` SDK.

Structured answers use a forced tool call (`record_judgement`), which every
Claude 3+ model supports; `extra.structured_mode = "output_config"` uses the
newer JSON-schema output format instead. SDK retries are off.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import anthropic
from anthropic.types import Message

from reidbench.judges.providers.base import (
    ProviderReply,
    ProviderRequest,
    RetryableError,
    closed_schema,
    sdk_error,
    short,
)

TOOL_NAME = "record_judgement"


class AnthropicProvider:
    def __init__(self, *, base_url: str, api_key: str, model: str, timeout_s: float) -> None:
        self.model = model
        self.client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s
        )

    def _kwargs(self, req: ProviderRequest) -> dict[str, Any]:
        content: list[dict[str, Any]] = [
            {
                "type": "image",
                "source": {
                    "type": "base64",
                    "media_type": img.mime,
                    "data": base64.b64encode(img.data).decode("ascii"),
                },
            }
            for img in req.images
        ]
        content.append({"type": "text", "text": req.text})
        kwargs: dict[str, Any] = {
            "model": self.model,
            "max_tokens": req.max_tokens,
            "system": req.system,
            "messages": [{"role": "user", "content": content}],
        }
        # This SDK version has no `temperature` argument; the API still accepts the field.
        if req.temperature is not None:
            kwargs["extra_body"] = {"temperature": req.temperature}
        if req.structured == "tool" and req.schema is not None:
            kwargs["tools"] = [
                {
                    "name": TOOL_NAME,
                    "description": "Record your comparison of the two pedestrian crops.",
                    "input_schema": req.schema,
                }
            ]
            kwargs["tool_choice"] = {"type": "tool", "name": TOOL_NAME}
        elif req.structured == "output_config" and req.schema is not None:
            kwargs["output_config"] = {
                "format": {"type": "json_schema", "schema": closed_schema(req.schema)}
            }
        return kwargs

    async def complete(self, req: ProviderRequest) -> ProviderReply:
        try:
            resp = await self.client.messages.create(**self._kwargs(req), timeout=req.timeout_s)
        except Exception as exc:
            mapped = sdk_error(anthropic, exc)
            if mapped is None:
                raise
            raise mapped from None
        return self._reply(resp)

    def _reply(self, resp: Any) -> ProviderReply:
        if not isinstance(resp, Message) or not isinstance(getattr(resp, "content", None), list):
            raise RetryableError(f"malformed response: not a message ({short(resp, 120)})")
        texts: list[str] = []
        tool_input: Any = None
        for block in resp.content:
            kind = getattr(block, "type", None)
            if kind == "text":
                texts.append(str(getattr(block, "text", "")))
            elif kind == "tool_use" and getattr(block, "name", None) == TOOL_NAME:
                tool_input = getattr(block, "input", None)
        text = json.dumps(tool_input) if tool_input is not None else "".join(texts)
        stop = getattr(resp, "stop_reason", None)
        refusal = None
        if stop == "refusal":
            refusal = "".join(texts).strip() or "stop_reason=refusal"
        usage = getattr(resp, "usage", None)
        tokens_in = getattr(usage, "input_tokens", None) if usage else None
        tokens_out = getattr(usage, "output_tokens", None) if usage else None
        if isinstance(tokens_in, int) and usage is not None:
            # Cache reads and writes are input tokens too (billed at other rates; counted here).
            for extra in ("cache_creation_input_tokens", "cache_read_input_tokens"):
                value = getattr(usage, extra, None)
                if isinstance(value, int):
                    tokens_in += value
        return ProviderReply(
            text=text,
            refusal=refusal,
            tokens_in=tokens_in if isinstance(tokens_in, int) else None,
            tokens_out=tokens_out if isinstance(tokens_out, int) else None,
            finish_reason=stop if isinstance(stop, str) else None,
            raw=json.loads(json.dumps(resp.to_dict(mode="json"), default=str)),
        )

    async def aclose(self) -> None:
        await self.client.close()
