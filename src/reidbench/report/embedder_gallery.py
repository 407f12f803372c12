"""The embedders' failure gallery: each ReID model's worst false accepts and false rejects
(metrics.json `embedder_failures`), with thumbnails."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reidbench.report import format as fmt
from reidbench.report import plots
from reidbench.report.model import as_map
from reidbench.report.pair_cards import CardGallery, CardGroup, card, score_text
from reidbench.report.thumbnails import Thumbnails


def embedder_galleries(
    metrics: Mapping[str, Any], colours: Mapping[str, str], thumbs: Thumbnails
) -> list[CardGallery]:
    out = []
    systems = as_map(metrics.get("systems"))
    for name, w in as_map(as_map(metrics.get("embedder_failures")).get("systems")).items():
        if not isinstance(w, Mapping):
            continue
        scale = as_map(systems.get(name)).get("scale")
        groups = []
        for key, title, n_key, of_key, what in (
            (
                "false_accepts",
                "Worst false accepts",
                "n_false_accepts",
                "n_different",
                "different-person",
            ),
            ("false_rejects", "Worst false rejects", "n_false_rejects", "n_same", "same-person"),
        ):
            items = [e for e in w.get(key) or [] if isinstance(e, Mapping)]
            cards = [
                card(
                    title[6:-1].capitalize(),
                    e,
                    thumbs,
                    [("Score", score_text(e.get("score"), e.get("threshold"), scale))],
                )
                for e in items
            ]
            note = (
                f"{fmt.integer(w.get(n_key))} of {fmt.integer(w.get(of_key))} {what} pairs; "
                f"{len(cards)} shown"
            )
            groups.append(CardGroup(title, cards, note))
        if any(g.cards for g in groups):
            out.append(CardGallery(str(name), colours.get(name, plots.INK), groups))
    return out
