"""The multiple-choice prompt, its parser and the N-image composite."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from reidbench.judges.images import ImageSpec, composite, composite_row, prepare, prepare_many
from reidbench.judges.parse import parse_answer
from reidbench.judges.prompts import bundled_prompt_ids, load_prompt

LABELS = ["A", "B", "C", "D"]
CHOICE = load_prompt("choice").for_options(LABELS)


def test_choice_prompt_is_filled_in_for_its_labels() -> None:
    base = load_prompt("choice")
    assert "choice" in bundled_prompt_ids() and base.answer == "choice"
    assert CHOICE.options == tuple(LABELS)
    text = CHOICE.user_text("pair") + CHOICE.system
    assert "{n}" not in text and "{labels}" not in text
    assert "the 4 candidates (A, B, C, D)" in text
    assert "labelled Q" in CHOICE.user_text("composite")
    assert CHOICE.json_schema()["properties"]["answer"]["enum"] == LABELS
    # The hash (part of the cache key) differs per label set, and from the unfilled file.
    five = base.for_options([*LABELS, "E"])
    assert len({base.sha256, CHOICE.sha256, five.sha256}) == 3
    with pytest.raises(Exception, match="not a multiple-choice prompt"):
        load_prompt("similarity-0-100").for_options(LABELS)


@pytest.mark.parametrize(
    ("text", "slot"),
    [
        ('{"reasons": "same red coat", "answer": "C"}', 2),
        ('```json\n{"answer": "candidate b"}\n```', 1),
        ("Answer: D", 3),
        ("The answer is (A).", 0),
        ("**B**", 1),
        ("Candidate C.", 2),
    ],
)
def test_parser_reads_the_label(text: str, slot: int) -> None:
    parsed = parse_answer(text, CHOICE)
    assert (parsed.status, parsed.choice) == ("ok", slot)


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ('{"answer": "E"}', "parse_error"),  # not one of the labels
        ('{"answer": 2}', "parse_error"),  # a number is ambiguous (0- or 1-based?)
        ("Answer: A. Final answer: B", "parse_error"),  # conflicting
        ("They all look alike.", "parse_error"),
        ("", "parse_error"),
        ("I'm sorry, I can't help with identifying people.", "refusal"),
    ],
)
def test_parser_never_guesses(text: str, status: str) -> None:
    parsed = parse_answer(text, CHOICE)
    assert parsed.status == status and parsed.choice is None


def test_provider_refusal_and_safety_come_first() -> None:
    assert parse_answer('{"answer": "A"}', CHOICE, refusal="no").status == "refusal"
    assert parse_answer('{"answer": "A"}', CHOICE, safety="blocked").status == "safety_block"


@given(st.text(max_size=200))
def test_parser_total_on_any_text(text: str) -> None:
    parsed = parse_answer(text, CHOICE)
    assert parsed.status in ("ok", "refusal", "parse_error")
    assert (parsed.choice is not None) == (parsed.status == "ok")
    if parsed.choice is not None:
        assert 0 <= parsed.choice < len(LABELS)


def _crops(tmp_path: Path, n: int) -> list[Path]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        p = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 255, (40 + 8 * i, 20, 3), dtype=np.uint8)).save(p)
        out.append(p)
    return out


def test_composite_row_generalises_the_pair_composite(tmp_path: Path) -> None:
    a, b, c = (Image.open(p).convert("RGB") for p in _crops(tmp_path, 3))
    # The pair composite is unchanged (its bytes enter cached keys of earlier runs).
    assert np.array_equal(
        np.asarray(composite(a, b)), np.asarray(composite_row([a, b], ["A", "B"]))
    )
    row = composite_row([a, b, c], ["Q", "A", "B"])
    h = max(a.height, b.height, c.height)
    widths = [round(x.width * h / x.height) for x in (a, b, c)]
    assert row.size == (sum(widths) + 2 * 16, h + 24)
    # Each crop sits at its offset below the label band (the tallest one unscaled).
    x0 = widths[0] + 16 + widths[1] + 16
    assert np.array_equal(np.asarray(row)[24:, x0 : x0 + widths[2]], np.asarray(c))


def test_prepare_many_modes(tmp_path: Path) -> None:
    paths = _crops(tmp_path, 5)
    pair = ImageSpec(mode="pair", size=64, fmt="png")
    sep = prepare_many(paths, pair, labels=("Q", "A", "B", "C", "D"))
    assert [img.height for img in sep] == [64, 64, 64, 64, 72]  # upscaled, never down
    assert [i.sha256 for i in sep[:2]] == [i.sha256 for i in prepare(paths[0], paths[1], pair)]
    comp = prepare_many(
        paths, ImageSpec(mode="composite", size=64, fmt="png"), labels=tuple("QABCD")
    )
    assert len(comp) == 1 and comp[0].height == 72 + 24
