"""Gemini through the native `google-genai` SDK (the optional `gemini` extra).

Structured answers use `response_schema` (or `response_json_schema` via
`extra.structured_mode`). Safety blocks come from `prompt_feedback.block_reason`
and from the candidate's `finish_reason`. SDK retries are off.
"""

from __future__ import annotations

import json
from typing import Any

from reidbench.errors import UserError
from reidbench.judges.providers.base import (
    ProviderReply,
    ProviderRequest,
    RetryableError,
    short,
    status_error,
)

# Finish reasons that mean the answer was withheld by a safety or policy filter.
SAFETY_FINISH = {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "IMAGE_SAFETY", "MODEL_ARMOR"}


def _import_genai() -> tuple[Any, Any, Any]:
    try:
        from google import genai
        from google.genai import errors, types
    except ImportError as exc:
        raise UserError(
            "the gemini provider needs the google-genai package; "
            "reinstall reidbench (it depends on google-genai) or: pip install google-genai"
        ) from exc
    return genai, types, errors


def _enum_name(value: Any) -> str | None:
    if value is None:
        return None
    name = getattr(value, "name", None) or getattr(value, "value", None) or str(value)
    return str(name)


def _first_token_alternatives(cand: Any) -> list[tuple[str, float]] | None:
    """candidates[0].logprobs_result.top_candidates[0].candidates as (token, logprob)."""
    result = getattr(cand, "logprobs_result", None)
    if result is None:
        return None
    steps = result.top_candidates or []
    if steps and steps[0].candidates:
        return [
            (c.token, float(c.log_probability))
            for c in steps[0].candidates
            if isinstance(c.token, str) and c.log_probability is not None
        ]
    chosen = result.chosen_candidates or []
    if chosen and isinstance(chosen[0].token, str) and chosen[0].log_probability is not None:
        return [(chosen[0].token, float(chosen[0].log_probability))]
    return None


class GeminiProvider:
    def __init__(self, *, base_url: str, api_key: str, model: str, timeout_s: float) -> None:
        genai, self.types, self.errors = _import_genai()
        self.model = model
        options = self.types.HttpOptions(
            base_url=base_url,
            timeout=int(timeout_s * 1000),
            retry_options=self.types.HttpRetryOptions(attempts=1),
        )
        self.client = genai.Client(api_key=api_key, vertexai=False, http_options=options)

    def _config(self, req: ProviderRequest) -> Any:
        types = self.types
        fields: dict[str, Any] = {
            "system_instruction": req.system,
            "max_output_tokens": req.max_tokens,
            "automatic_function_calling": types.AutomaticFunctionCallingConfig(disable=True),
            "automatic_continuation": False,
        }
        if req.temperature is not None:
            fields["temperature"] = req.temperature
        if req.seed is not None:
            fields["seed"] = req.seed
        if req.top_logprobs:
            fields["response_logprobs"] = True
            fields["logprobs"] = req.top_logprobs
        if req.structured in ("response_schema", "response_json_schema") and req.schema:
            fields["response_mime_type"] = "application/json"
            fields[req.structured] = req.schema
        return types.GenerateContentConfig(**fields)

    async def complete(self, req: ProviderRequest) -> ProviderReply:
        types, errors = self.types, self.errors
        parts = [types.Part.from_bytes(data=img.data, mime_type=img.mime) for img in req.images]
        parts.append(types.Part.from_text(text=req.text))
        contents = [types.Content(role="user", parts=parts)]
        try:
            resp = await self.client.aio.models.generate_content(
                model=self.model, contents=contents, config=self._config(req)
            )
        except errors.APIError as exc:
            headers = getattr(getattr(exc, "response", None), "headers", None)
            raise status_error(int(exc.code or 0), short(exc.message or exc), headers) from None
        except ValueError as exc:  # json.JSONDecodeError: truncated or broken JSON body
            raise RetryableError(f"malformed response body: {short(exc)}") from None
        except Exception as exc:
            # httpx2 timeouts and connection errors surface as transport exceptions.
            name = type(exc).__name__
            if "Timeout" in name:
                raise RetryableError("request timed out", kind="timeout") from None
            if any(k in name for k in ("Connect", "Network", "Protocol", "ReadError", "Remote")):
                raise RetryableError(
                    f"connection error: {name}: {short(exc)}", kind="connection"
                ) from None
            raise
        return self._reply(resp)

    def _reply(self, resp: Any) -> ProviderReply:
        raw = resp.model_dump(mode="json", exclude_none=True, exclude={"sdk_http_response"})
        usage = resp.usage_metadata
        tokens_in = usage.prompt_token_count if usage else None
        tokens_out = usage.candidates_token_count if usage else None
        if usage and tokens_out is not None and usage.thoughts_token_count:
            tokens_out += usage.thoughts_token_count  # thinking tokens are billed as output
        feedback = resp.prompt_feedback
        block = _enum_name(feedback.block_reason) if feedback else None
        if block and block != "BLOCKED_REASON_UNSPECIFIED":
            return ProviderReply(
                text="",
                safety=f"prompt_feedback.block_reason={block}",
                tokens_in=tokens_in,
                tokens_out=tokens_out or 0,
                raw=raw,
            )
        if not resp.candidates:
            raise RetryableError("malformed response: no candidates and no block reason")
        cand = resp.candidates[0]
        finish = _enum_name(cand.finish_reason)
        texts = [
            p.text
            for p in ((cand.content.parts or []) if cand.content else [])
            if isinstance(p.text, str) and not p.thought
        ]
        safety = f"finish_reason={finish}" if finish in SAFETY_FINISH else None
        return ProviderReply(
            text="".join(texts),
            safety=safety,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            finish_reason=finish,
            raw=json.loads(json.dumps(raw, default=str)),
            top_logprobs=_first_token_alternatives(cand),
        )

    async def aclose(self) -> None:
        await self.client.aio.aclose()
