"""The experiment config (`reidbench run CONFIG.toml`), validated with pydantic.

One place for every knob a run has, so the run manifest can record the exact
settings and a typo in a config is a clear error instead of a silent default.
Secrets never live here: a system names the environment variable that holds
its key (`api_key_env`), and only the runner reads it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from reidbench.datasets.base import Dataset
from reidbench.errors import UserError
from reidbench.tasks.config import PairsTask, TaskConfig

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
    options: dict[str, Any] = {}  # the format's own options (docs/datasets.md)

    def load(self) -> Dataset:
        from reidbench.datasets import load_dataset

        return load_dataset(
            self.root,
            self.format,
            options=self.options,
            msmt17_val_in_train=self.msmt17_val_in_train,
            cuhk03_variant=self.cuhk03_variant,
        )


class PairsConfig(_Strict):
    """`[pairs]`; `reidbench pairs` takes its flags' help, bounds and defaults from here."""

    positives: int = Field(250, ge=0, description="Same-person pairs.")
    negatives: int = Field(250, ge=0, description="Different-person pairs.")
    seed: int = Field(0, description="Random seed.")
    split: Literal["query-gallery", "test", "train"] = Field(
        "query-gallery",
        description="query-gallery (a = query, b = gallery), test (query and gallery pooled) "
        "or train.",
    )
    same_camera_positives: bool = Field(
        False, description="Allow pairs from one camera (positives and negatives alike)."
    )
    distractor_negatives: bool = Field(
        False, description="Allow gallery distractors (pid 0) as negative b images."
    )
    triplets: int = Field(0, ge=0, description="Image triplets added for the transitivity check.")
    hard_negatives: str | None = Field(
        None, description="Mine hard negatives with this embedder (e.g. personvit-s, handcrafted)."
    )
    weights: str | None = Field(
        None,
        description="The miner's checkpoint: a local file, hf://REPO/FILE@COMMIT#sha256=HEX or "
        "https://...#sha256=HEX.",
    )
    hard_fraction: float = Field(
        0.5, ge=0, le=1, description="Share of negatives mined as hard ones."
    )
    device: str = Field("auto", description="Where the miner runs: auto, cpu, cuda or cuda:N.")

    @model_validator(mode="after")
    def _weights_need_a_miner(self) -> PairsConfig:
        if self.weights is not None and self.hard_negatives is None:
            raise ValueError("weights needs hard_negatives = MODEL (the miner it belongs to)")
        return self


class ReIDSystemConfig(_Strict):
    name: str
    type: Literal["reid"]
    model: str  # load_embedder name, e.g. "personvit-b", "handcrafted", "efficientnet-lite0"
    weights: str | None = None
    device: str = "auto"
    batch_size: int = Field(64, ge=1)
    threshold: float | None = None  # None: chosen on the calibration split by best F1
    require_pinned: bool = False  # refuse Hub weights not pinned by commit + sha256
    options: dict[str, Any] = Field(default_factory=dict)  # load_embedder options


class LVLMSystemConfig(_Strict):
    """One LVLM judge. Unset fields are filled from the preset (see docs/judges.md)."""

    name: str
    type: Literal["lvlm"]
    preset: str | None = None  # e.g. "openai:gpt-4o"; fills the fields left unset
    provider: str | None = None  # openai | anthropic | gemini | hf | dashscope | vllm | ...
    model: str | None = None
    # A list: several OpenAI-compatible servers of one model, load-balanced (docs/judges.md).
    base_url: str | list[str] | None = None
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
    # Circuit breaker (docs/errors.md): stop this system after this many attempts in a row
    # without an answer, or when more than this share of at least stop_min_calls attempts
    # timed out. Any 401/403 or unknown model stops it at once.
    stop_after_connection_errors: int = Field(5, ge=1)
    stop_timeout_rate: float = Field(0.5, gt=0, le=1)
    stop_min_calls: int = Field(10, ge=1)
    max_calls: int | None = Field(None, ge=0)
    max_cost_usd: float | None = Field(None, ge=0)
    both_orders: bool = False  # also ask (b, a): symmetry analysis
    repeats: int = Field(1, ge=1)  # ask each pair n times: repeat stability
    price_in_per_mtok: float | None = Field(None, ge=0)  # overrides the preset's price
    price_out_per_mtok: float | None = Field(None, ge=0)
    threshold: float = 50.0
    extra: dict[str, Any] = Field(default_factory=dict)  # provider-specific options


SystemConfig = Annotated[ReIDSystemConfig | LVLMSystemConfig, Field(discriminator="type")]

# Fractions of pairs sent to the LVLM at which a cascade curve is drawn.
CASCADE_FRACTIONS = tuple(round(i / 20, 2) for i in range(21))


class FusionConfig(_Strict):
    """`[fusion]`: logistic score fusion of two or more systems of the run (docs/fusion.md)."""

    systems: list[str] = Field(min_length=2, description="Systems to fuse.")
    method: Literal["logistic"] = "logistic"
    name: str | None = Field(
        None, description="Name of the fused system (default: from the method)."
    )
    cv_folds: int = Field(5, ge=2, description="logistic: cross-validation folds.")
    cs: int | list[float] = Field(
        10, description="logistic: LogisticRegressionCV Cs, a grid size or C values."
    )
    select_inputs: bool = Field(
        True,
        description="logistic: keep the input set with the best cross-validated AUC on the "
        "calibration half, or fit every input.",
    )


class CascadeConfig(_Strict):
    """`[cascade]`: ReID decides outside an uncertainty band, the LVLM inside (docs/fusion.md)."""

    reid: str
    lvlm: str
    fraction: float | None = Field(
        None, ge=0, le=1, description="cascade: share of pairs sent to the LVLM."
    )
    budget_usd_per_1k: float | None = Field(
        None,
        ge=0,
        description="cascade: pick the best operating point costing at most this (USD per "
        "1,000 pairs).",
    )
    live: bool = False  # ask the LVLM only for the pairs in the band
    fractions: list[float] = Field(
        default_factory=lambda: list(CASCADE_FRACTIONS),
        description="cascade: curve grid (default 0,0.05,...,1).",
    )
    name: str | None = None  # default "cascade(REID>LVLM)"


class EngineConfig(_Strict):
    """`[engine]`: where features and retrieval run; the driver keeps the caches (docs/scale.md)."""

    kind: Literal["local", "ray"] = "local"
    address: str | None = None  # Ray: "auto", "ray://HOST:10001"; unset starts a local instance


class CacheConfig(_Strict):
    """`[cache]`: where LVLM answers are kept and how concurrent writers share them.

    Several run directories may name one `responses` file: each request is
    claimed before it is asked, so none is paid twice (docs/judges.md).
    """

    responses: Path | None = None  # default: RUN/cache/responses.sqlite
    # A dead writer's claims lapse after this (= judges.cache.DEFAULT_CLAIM_LEASE_S).
    claim_lease_s: float = Field(30.0, gt=0)


class ExperimentConfig(_Strict):
    name: str | None = None
    dataset: DatasetConfig
    pairs: PairsConfig = PairsConfig()
    systems: list[SystemConfig]
    # what the systems are asked (docs/tasks.md); default: the pairs task alone
    tasks: list[TaskConfig] = Field(default_factory=lambda: list[TaskConfig]([PairsTask()]))
    retrieval: bool = False  # also report retrieval metrics for embedder systems
    bootstrap: int = Field(1000, ge=0)
    seed: int = 0
    # rule for cross-fitted decision thresholds (docs/metrics.md, Thresholds)
    threshold_rule: Literal["accuracy", "eer", "f1"] = "accuracy"
    fusion: FusionConfig | None = None
    cascade: CascadeConfig | None = None
    engine: EngineConfig = EngineConfig()
    cache: CacheConfig = CacheConfig()


def _read_toml(path: Path) -> dict[str, Any]:
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not a config file; pass a .toml config file")
    if not path.is_file():
        raise UserError(f"{path}: config file not found; pass a .toml config")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML ({exc}); fix the syntax") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the config ({exc})") from exc


def _config_error(path: Path, exc: ValidationError) -> UserError:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return UserError(
        f"{path}: {where}: {first['msg']} ({exc.error_count()} problem(s)); fix the config"
    )


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Read and validate a TOML config, `--set KEY.PATH=VALUE` overrides applied first.
    Relative paths are relative to the working directory."""
    from reidbench.overrides import apply_overrides, override_error

    path = Path(path)
    data = apply_overrides(_read_toml(path), overrides)
    try:
        cfg = ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        message = override_error(exc, overrides, ExperimentConfig)
        if message is not None:
            raise UserError(message) from exc
        raise _config_error(path, exc) from exc
    names = [s.name for s in cfg.systems]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UserError(f"{path}: duplicate system names {dupes}; give each system its own name")
    check_fusion_references(cfg, str(path))
    return cfg


def check_fusion_references(cfg: ExperimentConfig, where: str = "config") -> None:
    """`[fusion]` and `[cascade]` must name systems of the run, of the right kinds."""
    kinds = {s.name: s.type for s in cfg.systems}
    if cfg.fusion is not None:
        unknown = [n for n in cfg.fusion.systems if n not in kinds]
        if unknown:
            raise UserError(
                f"{where}: fusion.systems names {unknown}, which are not systems of this run "
                f"({sorted(kinds)}); use the systems' names"
            )
        if len(set(cfg.fusion.systems)) != len(cfg.fusion.systems):
            raise UserError(f"{where}: fusion.systems lists a system twice; list each once")
    c = cfg.cascade
    if c is not None:
        if kinds.get(c.reid) != "reid":
            raise UserError(
                f"{where}: cascade.reid = {c.reid!r} is not a reid system of this run; "
                f"name one of {sorted(n for n, k in kinds.items() if k == 'reid')}"
            )
        if kinds.get(c.lvlm) != "lvlm":
            raise UserError(
                f"{where}: cascade.lvlm = {c.lvlm!r} is not an lvlm system of this run; "
                f"name one of {sorted(n for n, k in kinds.items() if k == 'lvlm')}"
            )
        if c.live and c.fraction is None and c.budget_usd_per_1k is None:
            raise UserError(
                f"{where}: a live cascade needs cascade.fraction (share of pairs sent to the "
                "LVLM) or cascade.budget_usd_per_1k; set one"
            )
        if any(not 0.0 <= f <= 1.0 for f in c.fractions) or not c.fractions:
            raise UserError(f"{where}: cascade.fractions must be values in [0, 1]; fix the list")


class RerankSettings(_Strict):
    """`[rerank]` of `reidbench rerank CONFIG` (docs/fusion.md)."""

    top_k: int = Field(10, ge=1)
    queries: int | Literal["all"] = 50  # size of the seeded query subset, or "all"
    method: Literal["fuse", "confirm"] = "fuse"
    alpha: float = Field(0.5, ge=0, le=1)  # weight of the LVLM score in "fuse"
    seed: int = 0
    max_rank: int = Field(50, ge=1)


def _with_type(kind: str) -> Any:
    def fill(data: Any) -> Any:
        if isinstance(data, dict) and "type" not in data:
            return {**data, "type": kind}
        return data

    return fill


class RerankConfig(_Strict):
    """`reidbench rerank CONFIG.toml`: `[dataset]`, `[reid]`, `[lvlm]`, `[rerank]`."""

    name: str | None = None
    dataset: DatasetConfig
    reid: Annotated[ReIDSystemConfig, BeforeValidator(_with_type("reid"))]
    lvlm: Annotated[LVLMSystemConfig, BeforeValidator(_with_type("lvlm"))]
    rerank: RerankSettings = RerankSettings()


def load_rerank_config(path: str | Path) -> RerankConfig:
    """Read and validate a `reidbench rerank` TOML config."""
    path = Path(path)
    data = _read_toml(path)
    try:
        return RerankConfig.model_validate(data)
    except ValidationError as exc:
        raise _config_error(path, exc) from exc
