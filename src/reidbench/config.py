"""The experiment config (`reidbench run CONFIG.toml`), validated with pydantic.

One place for every knob a run has, so the run manifest can record the exact
settings and a typo in a config is a clear error instead of a silent default.
Secrets never live here: a system names the environment variable that holds
its key (`api_key_env`), and only the runner reads it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reidbench.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatasetConfig(_Strict):
    root: Path
    format: str | None = None  # auto-detected when absent
    msmt17_val_in_train: bool = True
    cuhk03_variant: Literal["detected", "labeled"] = "detected"


class PairsConfig(_Strict):
    positives: int = Field(250, ge=0)
    negatives: int = Field(250, ge=0)
    seed: int = 0
    split: Literal["query-gallery", "test", "train"] = "query-gallery"
    same_camera_positives: bool = False
    distractor_negatives: bool = False
    triplets: int = Field(0, ge=0)  # extra pair triplets for transitivity checks
    hard_negatives: str | None = None  # embedder name used to mine hard negatives


class ReIDSystemConfig(_Strict):
    name: str
    type: Literal["reid"]
    model: str  # load_embedder name, e.g. "personvit-b", "handcrafted", "efficientnet-lite0"
    weights: str | None = None
    device: str = "auto"
    batch_size: int = Field(64, ge=1)
    threshold: float | None = None  # None: chosen on the calibration split by best F1


class LVLMSystemConfig(_Strict):
    """One LVLM judge. Unset fields are filled from the preset (see docs/judges.md)."""

    name: str
    type: Literal["lvlm"]
    preset: str | None = None  # e.g. "openai:gpt-4o"; fills the fields left unset
    provider: str | None = None  # openai | anthropic | gemini | hf | dashscope | vllm | ...
    model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    prompt: str = "similarity-0-100"  # a bundled prompt id, or a path to a prompt .toml file
    image_mode: Literal["pair", "composite"] = "pair"
    image_size: int = Field(256, ge=32)  # crops shorter than this are upscaled to this height
    image_format: Literal["jpeg", "png", "webp"] = "jpeg"
    jpeg_quality: int = Field(90, ge=1, le=100)
    structured: Literal["auto", "on", "off"] = "auto"
    temperature: float | None = Field(0.0, ge=0)  # None: leave it to the provider's default
    max_tokens: int = Field(512, ge=1)
    seed: int | None = 0
    concurrency: int = Field(8, ge=1)
    rpm: float | None = Field(None, gt=0)  # requests per minute
    tpm: float | None = Field(None, gt=0)  # tokens per minute
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(6, ge=0)
    retry_base_s: float = Field(1.0, gt=0)  # first backoff; doubles per retry, full jitter
    retry_max_s: float = Field(60.0, gt=0)  # longest single backoff (Retry-After may ask more)
    max_calls: int | None = Field(None, ge=0)
    max_cost_usd: float | None = Field(None, ge=0)
    both_orders: bool = False  # also ask (b, a): symmetry analysis
    repeats: int = Field(1, ge=1)  # ask each pair n times: repeat stability
    price_in_per_mtok: float | None = Field(None, ge=0)  # overrides the preset's price
    price_out_per_mtok: float | None = Field(None, ge=0)
    threshold: float = 50.0
    extra: dict[str, Any] = Field(default_factory=dict)  # provider-specific options


SystemConfig = Annotated[ReIDSystemConfig | LVLMSystemConfig, Field(discriminator="type")]


class ExperimentConfig(_Strict):
    name: str | None = None
    dataset: DatasetConfig
    pairs: PairsConfig = PairsConfig()
    systems: list[SystemConfig]
    retrieval: bool = False  # also report retrieval metrics for embedder systems
    bootstrap: int = Field(1000, ge=0)
    seed: int = 0
    fusion: dict[str, Any] | None = None  # filled in by the fusion stage
    cascade: dict[str, Any] | None = None


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate a TOML config. Relative paths are relative to the working directory."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: config file not found; pass a .toml experiment config")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML ({exc}); fix the syntax") from exc
    try:
        cfg = ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UserError(
            f"{path}: {where}: {first['msg']} ({exc.error_count()} problem(s)); fix the config"
        ) from exc
    names = [s.name for s in cfg.systems]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UserError(f"{path}: duplicate system names {dupes}; give each system its own name")
    return cfg
