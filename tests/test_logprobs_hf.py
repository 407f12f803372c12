"""The hf provider's probability scores: exact next-token probabilities over the vocabulary.

A tiny random LLaVA-layout model (tests/test_judges_hf.py) whose tokenizer has whole-word
yes/no tokens; the provider's score is checked against a direct forward pass.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reidbench.config import LVLMSystemConfig
from reidbench.judges import judge_pairs
from reidbench.judges.images import EncodedImage
from reidbench.judges.logprobs import probability_score
from reidbench.judges.prompts import load_prompt
from reidbench.judges.providers.base import ProviderRequest
from tests.test_judges_hf import build_tiny_llava, random_crop_pairs

transformers = pytest.importorskip("transformers")

WORDS = ("Yes", " yes", "YES", "No", " no", "no.", "Noon", "yesterday")


@pytest.fixture(scope="module")
def tiny_yes_no(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llava(tmp_path_factory.mktemp("tiny-yes-no"), words=WORDS)


def _png(seed: int) -> EncodedImage:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (32, 16, 3), dtype=np.uint8)).save(buf, "PNG")
    return EncodedImage.of(buf.getvalue(), "image/png", 16, 32)


@pytest.mark.slow
def test_provider_probabilities_match_a_direct_forward_pass(tiny_yes_no: Path) -> None:
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from reidbench.judges.providers.hf import HFProvider

    provider = HFProvider(model=str(tiny_yes_no), options={"device": "cpu"})
    found = {text for text, _ in provider.yes_no_tokens()}
    assert found == {"Yes", " yes", "YES", "No", " no", "no."}  # not "Noon", "yesterday"
    prompt = load_prompt("yes-no-probability")
    images = [_png(1), _png(2)]
    req = ProviderRequest(
        system=prompt.system,
        text=prompt.user_text("pair"),
        images=images,
        schema=None,
        structured="off",
        max_tokens=3,
        temperature=None,
        seed=None,
        timeout_s=60.0,
        top_logprobs=20,
    )
    reply = provider._generate(req)
    assert reply.top_logprobs is not None and len(reply.top_logprobs) == 6

    # Direct: the same chat, one forward pass, softmax of the last position's logits.
    processor = AutoProcessor.from_pretrained(tiny_yes_no)
    model = AutoModelForImageTextToText.from_pretrained(tiny_yes_no).eval()
    pil = [Image.open(io.BytesIO(i.data)).convert("RGB") for i in images]
    messages = [
        {"role": "system", "content": [{"type": "text", "text": req.system}]},
        {
            "role": "user",
            "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": req.text}],
        },
    ]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=pil, return_tensors="pt")
    with torch.inference_mode():
        probs = torch.softmax(model(**inputs).logits[0, -1].double(), dim=-1)
    vocab = processor.tokenizer.get_vocab()
    p_yes = sum(float(probs[vocab[w]]) for w in ("Yes", " yes", "YES"))
    p_no = sum(float(probs[vocab[w]]) for w in ("No", " no", "no."))
    want = 100 * p_yes / (p_yes + p_no)
    got = probability_score(reply.top_logprobs)
    assert got == pytest.approx(want, rel=1e-4)
    for tok, lp in reply.top_logprobs:
        assert math.exp(lp) == pytest.approx(float(probs[vocab[tok]]), rel=1e-4)


def test_hf_system_scores_every_pair(tiny_yes_no: Path, tmp_path: Path) -> None:
    root, pairs = random_crop_pairs(tmp_path)
    system = LVLMSystemConfig.model_validate(
        {
            "name": "tiny",
            "type": "lvlm",
            "provider": "hf",
            "model": str(tiny_yes_no),
            "prompt": "yes-no-probability",
            "max_tokens": 2,
            "image_size": 32,
            "extra": {"device": "cpu", "local_files_only": True},
        }
    )
    rows = judge_pairs(system, pairs, root, cache_path=tmp_path / "c.sqlite", environ={})
    for row in rows.to_pylist():
        assert row["status"] == "ok"  # gibberish text, yet a score: the first token's odds
        assert 0.0 < row["score"] < 100.0
        assert "P(yes)=" in row["reasons"]
    assert len(set(rows.column("score").to_pylist())) == 2
