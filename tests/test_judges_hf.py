"""The local Hugging Face provider with a tiny, randomly initialised image-text-to-text model.

The model and its processor are built here from configs (no download): a
LLaVA layout (CLIP vision tower + Llama text model) with a character-level
tokenizer. Qwen2-VL/Qwen2.5-VL processors are not used because transformers
5.x builds their video processor with torchvision, which this project does
not install; the provider code path (AutoProcessor +
AutoModelForImageTextToText + chat template) is the same for both.
A random model writes gibberish, so `parse_error` is the correct outcome.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from reidbench.config import LVLMSystemConfig
from reidbench.errors import UserError
from reidbench.judges import judge_pairs
from tests.optional import importorskip

transformers = importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llava(tmp_path_factory.mktemp("tiny-llava"))


def build_tiny_llava(out: Path, words: tuple[str, ...] = ()) -> Path:
    """Save a tiny random LLaVA-layout model and its processor in `out` (no download).

    `words` become whole-word vocabulary tokens (e.g. "Yes", " no") besides the characters.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    vocab = {chr(i): i - 32 for i in range(32, 127)}  # printable ASCII, one token per character
    for word in words:
        vocab[word] = len(vocab)
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=" "))
    backend.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    backend.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token=" ",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
    )
    tok.add_special_tokens({"additional_special_tokens": ["<image>", "\n"]})
    template = (
        "{% for m in messages %}{{ m['role'] }}: {% if m['content'] is string %}"
        "{{ m['content'] }}{% else %}{% for c in m['content'] %}{% if c['type'] == 'image' %}"
        "<image>{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}\n"
        "{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"
    )
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessorPil(
            size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}
        ),
        tokenizer=tok,
        patch_size=14,
        vision_feature_select_strategy="default",
        chat_template=template,
        image_token="<image>",
        num_additional_image_tokens=1,
    )
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=28,
            patch_size=14,
        ),
        text_config=LlamaConfig(
            vocab_size=len(tok),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=4096,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        ),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).save_pretrained(out)
    processor.save_pretrained(out)
    return out


def random_crop_pairs(tmp_path: Path) -> tuple[Path, pa.Table]:
    """Four random crops under tmp_path/crops and two pairs of them."""
    root = tmp_path / "crops"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (64, 32, 3), dtype=np.uint8)).save(root / f"{i}.png")
    pairs = pa.table(
        {"pair_id": [0, 1], "path_a": ["0.png", "1.png"], "path_b": ["2.png", "3.png"]}
    )
    return root, pairs


@pytest.mark.slow
def test_tiny_local_model_runs_and_its_gibberish_is_a_parse_error(
    tiny_model: Path, tmp_path: Path
) -> None:
    root, pairs = random_crop_pairs(tmp_path)
    system = LVLMSystemConfig.model_validate(
        {
            "name": "tiny",
            "type": "lvlm",
            "provider": "hf",
            "model": str(tiny_model),
            "max_tokens": 6,
            "image_size": 32,
            "extra": {"device": "cpu", "local_files_only": True},
        }
    )
    rows = judge_pairs(system, pairs, root, cache_path=tmp_path / "c.sqlite", environ={})
    for row in rows.to_pylist():
        assert row["status"] == "parse_error"
        assert row["score"] is None and row["decision"] == "unknown"
        assert row["tokens_out"] == 6 and row["tokens_in"] > 100  # prompt text + image tokens
        assert row["cost_usd"] == 0.0 and row["attempts"] == 1
        assert isinstance(row["raw"], str) and len(row["raw"]) > 0


@pytest.mark.slow
def test_missing_local_model_is_a_user_error(tmp_path: Path) -> None:
    root = tmp_path / "crops"
    root.mkdir()
    Image.new("RGB", (32, 64)).save(root / "a.png")
    pairs = pa.table({"pair_id": [0], "path_a": ["a.png"], "path_b": ["a.png"]})
    system = LVLMSystemConfig.model_validate(
        {
            "name": "x",
            "type": "lvlm",
            "provider": "hf",
            "model": str(tmp_path / "no-model"),
            "extra": {"local_files_only": True},
        }
    )
    with pytest.raises(UserError, match="cannot load model"):
        judge_pairs(system, pairs, root, cache_path=tmp_path / "c.sqlite", environ={})
