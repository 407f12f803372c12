"""A pair of images with a few facts: the card both new galleries (embedder errors,
LVLM-ReID disagreements) show. Paths and scores only; no model text."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reidbench.report import format as fmt
from reidbench.report.thumbnails import Thumbnails

Facts = list[tuple[str, str]]


@dataclass
class PairCard:
    title: str
    pair_id: Any
    label: str  # "same person" | "different people"
    path_a: str
    path_b: str
    img_a: str | None
    img_b: str | None
    facts: Facts = field(default_factory=list)


@dataclass
class CardGroup:
    title: str
    cards: list[PairCard]
    note: str = ""


@dataclass
class CardGallery:
    name: str
    colour: str
    groups: list[CardGroup]


def truth(label: Any) -> str:
    return "same person" if label == 1 else "different people" if label == 0 else "unknown"


def score_text(score: Any, threshold: Any, scale: Any = None) -> str:
    """`0.8401 (threshold 0.8008)` on the system's own scale."""
    if not fmt.is_num(score):
        return "no score"
    text = fmt.threshold(score, scale if fmt.is_num(scale) else 1.0)
    if fmt.is_num(threshold):
        text += f" (threshold {fmt.threshold(threshold, scale if fmt.is_num(scale) else 1.0)})"
    return text


def card(
    title: str, ex: Mapping[str, Any], thumbs: Thumbnails, facts: Facts | None = None
) -> PairCard:
    return PairCard(
        title=title,
        pair_id=ex.get("pair_id"),
        label=truth(ex.get("label")),
        path_a=str(ex.get("path_a") or ""),
        path_b=str(ex.get("path_b") or ""),
        img_a=thumbs.get(ex.get("path_a")),
        img_b=thumbs.get(ex.get("path_b")),
        facts=facts or [],
    )
