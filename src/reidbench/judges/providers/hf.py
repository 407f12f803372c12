"""A local Hugging Face transformers image-text-to-text model (e.g. Qwen2.5-VL), CPU or GPU.

The model is loaded once, when the provider is made (a bad model name is a
clear error before any pair is judged). Generation runs in a worker thread
so the runner's event loop stays responsive, one generation at a time.
Options come from the system's `extra`: `device` ("auto", "cpu", "cuda",
"cuda:1", ...), `dtype` ("auto", "float32", "bfloat16", "float16") and
`local_files_only` (default false: a model id not on disk is downloaded
from the Hugging Face Hub by transformers).
"""

from __future__ import annotations

import asyncio
import io
import threading
from typing import Any

from reidbench.errors import UserError
from reidbench.judges.providers.base import PermanentError, ProviderReply, ProviderRequest


def _device(choice: str) -> str:
    import torch

    if choice != "auto":
        return choice
    return "cuda" if torch.cuda.is_available() else "cpu"


class HFProvider:
    def __init__(self, *, model: str, options: dict[str, Any]) -> None:
        try:
            import torch
            from transformers import AutoModelForImageTextToText, AutoProcessor
        except ImportError as exc:
            raise UserError(
                "the hf provider needs transformers; install it with: pip install 'reidbench[hf]'"
            ) from exc
        self.model_id = model
        self.device = _device(str(options.get("device", "auto")))
        dtype_name = str(options.get("dtype", "auto"))
        dtype = "auto" if dtype_name == "auto" else getattr(torch, dtype_name, None)
        if dtype is None:
            raise UserError(
                f"hf provider: unknown dtype {dtype_name!r}; use auto, float32, bfloat16"
            )
        local_only = bool(options.get("local_files_only", False))
        try:
            self.processor = AutoProcessor.from_pretrained(model, local_files_only=local_only)
            self.model = AutoModelForImageTextToText.from_pretrained(
                model, dtype=dtype, local_files_only=local_only
            ).to(self.device)  # type: ignore[arg-type]  # transformers' stub types .to oddly
        except (OSError, ValueError) as exc:
            raise UserError(
                f"hf provider: cannot load model {model!r} ({str(exc).splitlines()[0]}); "
                "give a local model folder or a Hugging Face model id"
            ) from exc
        self.model.eval()
        self._lock = threading.Lock()  # one generation at a time, even after a timed-out call
        self._yes_no: list[tuple[str, int]] | None = None  # (decoded text, id), found once

    def yes_no_tokens(self) -> list[tuple[str, int]]:
        """Every vocabulary token that decodes to a yes/no spelling (judges/logprobs.py)."""
        if self._yes_no is None:
            from reidbench.judges.logprobs import yes_no

            tok = getattr(self.processor, "tokenizer", self.processor)
            found: list[tuple[str, int]] = []
            for piece, idx in tok.get_vocab().items():
                low = piece.lower()
                if ("yes" in low or "no" in low) and len(piece) <= 12:  # decode only candidates
                    text = tok.decode([idx])
                    if yes_no(text) is not None:
                        found.append((text, int(idx)))
            self._yes_no = sorted(found, key=lambda t: t[1])
        return self._yes_no

    def _generate(self, req: ProviderRequest) -> ProviderReply:
        import torch
        from PIL import Image

        images = [Image.open(io.BytesIO(img.data)).convert("RGB") for img in req.images]
        messages = [
            {"role": "system", "content": [{"type": "text", "text": req.system}]},
            {
                "role": "user",
                "content": [{"type": "image"} for _ in images]
                + [{"type": "text", "text": req.text}],
            },
        ]
        prompt = self.processor.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )
        inputs = self.processor(text=[prompt], images=images, return_tensors="pt").to(self.device)
        sample = bool(req.temperature)
        gen: dict[str, Any] = {"max_new_tokens": req.max_tokens, "do_sample": sample}
        if sample:
            gen["temperature"] = req.temperature
        if req.top_logprobs:  # the first generated position's raw logits, before any sampling
            gen.update(output_logits=True, return_dict_in_generate=True)
        alternatives = None
        with self._lock, torch.inference_mode():
            if req.seed is not None:
                torch.manual_seed(req.seed)
            out = self.model.generate(**inputs, **gen)
            if req.top_logprobs:
                # Exact: log-softmax over the whole vocabulary, every yes/no token kept.
                logp = torch.log_softmax(out.logits[0][0].float(), dim=-1)
                alternatives = [(text, float(logp[i])) for text, i in self.yes_no_tokens()]
                out = out.sequences
        prompt_len = inputs["input_ids"].shape[1]
        new_tokens = out[:, prompt_len:]
        text = self.processor.batch_decode(new_tokens, skip_special_tokens=True)[0]
        return ProviderReply(
            text=text,
            tokens_in=int(prompt_len),
            tokens_out=int(new_tokens.shape[1]),
            finish_reason="length" if new_tokens.shape[1] >= req.max_tokens else "stop",
            raw={
                "model": self.model_id,
                "device": self.device,
                "text": text,
                **({"yes_no_logprobs": alternatives} if alternatives is not None else {}),
            },
            top_logprobs=alternatives,
        )

    async def complete(self, req: ProviderRequest) -> ProviderReply:
        try:
            return await asyncio.to_thread(self._generate, req)
        except (RuntimeError, ValueError) as exc:  # e.g. CUDA out of memory, bad inputs
            raise PermanentError(f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from None

    async def aclose(self) -> None:
        self.model = None
        self.processor = None
