"""`[[tasks]]` of a run config: one typed model per task kind, told apart by `kind`.

Kept apart from reidbench.config so a task module can import its own settings
without importing the whole experiment config.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Split = Literal["query-gallery", "test", "train"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PairsTask(_Strict):
    """The study's protocol: labelled pairs, settings in `[pairs]`."""

    kind: Literal["pairs"] = "pairs"


class ChoiceTask(_Strict):
    """A query and N candidates, exactly one of them the same person (MMReID-Bench style)."""

    kind: Literal["choice"]
    items: int = Field(100, ge=1)  # number of (query, candidates) items
    candidates: int = Field(4, ge=2, le=10)  # N = 1 true + N-1 negatives
    negatives: Literal["random", "hard"] = "random"
    hard_negatives: str | None = None  # embedder that mines hard negatives (negatives="hard")
    weights: str | None = None  # the miner's checkpoint
    seed: int = 0
    split: Split = "query-gallery"
    systems: list[str] | None = None  # None: every system of the run
    prompt: str = "choice"  # what LVLM systems are asked (a choice prompt id or .toml path)


class GalleryTask(_Strict):
    """Each query ranked against its own small gallery (VP-ReID's QGM), scored by CMC/mAP."""

    kind: Literal["gallery"]
    queries: int = Field(20, ge=1)  # Q queries
    gallery_size: int = Field(50, ge=2)  # G images per query: its true matches plus others
    seed: int = 0
    split: Split = "query-gallery"
    systems: list[str] | None = None  # None: every system of the run


TaskConfig = Annotated[PairsTask | ChoiceTask | GalleryTask, Field(discriminator="kind")]
