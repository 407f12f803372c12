"""Read the attribute values of an `attributes` prompt answer, normalised to the vocabulary.

The judge pipeline reads the same/different decision of that answer like any other
(`parse.py`); the attribute values stay in the raw text of the scores table and are
read here, at metrics time, so the scores schema and the cache need nothing new.

Normalisation is small and written down (docs/tasks.md, Attributes): case, spaces,
`_`/`-`, a few spellings ("grey" -> "gray", "skirt" -> "dress", "true" -> "yes").
A value outside the vocabulary after that is *unreadable*; "unclear" is an
abstention; "other" (a colour with no name in the vocabulary) is an answer, and a
wrong one wherever the ground truth names a colour. Nothing is guessed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from reidbench.datasets.attributes import COLOUR_ATTRIBUTES, VOCABULARY
from reidbench.judges.parse import find_json_object

SIDES = ("image_a", "image_b")
UNCLEAR = "unclear"
OTHER = "other"
UNREADABLE = "unreadable"

_SYNONYMS: dict[str, str] = {
    "grey": "gray",
    "true": "yes",
    "false": "no",
    "none": "no",
    "yes it does": "yes",
    "skirt": "dress",
    "skirt or dress": "dress",
    "trousers": "pants",
    "jeans": "pants",
    "shorts": "pants",
    "man": "male",
    "woman": "female",
    "not visible": UNCLEAR,
    "unknown": UNCLEAR,
    "n/a": UNCLEAR,
}
_PER_ATTRIBUTE: dict[str, dict[str, str]] = {
    # Length of the lower clothing: trousers are long, shorts short (not their type).
    "lower_length": {"trousers": "long", "shorts": "short"},
    "sleeve_length": {"sleeveless": "short", "no sleeves": "short"},
    "hair_length": {"bald": "short"},
}

Side = dict[str, str]  # attribute -> value in VOCABULARY, OTHER, UNCLEAR or UNREADABLE


def normalise_value(attribute: str, value: Any) -> str:
    """One answer value in the vocabulary of `attribute`, or OTHER / UNCLEAR / UNREADABLE."""
    if isinstance(value, bool):
        value = "yes" if value else "no"
    if not isinstance(value, str):
        return UNREADABLE
    text = " ".join(value.strip().lower().replace("_", " ").replace("-", " ").split())
    text = _PER_ATTRIBUTE.get(attribute, {}).get(text, text)
    text = _SYNONYMS.get(text, text)
    if text in VOCABULARY[attribute]:
        return text
    if text == UNCLEAR:
        return UNCLEAR
    if text == OTHER and attribute in COLOUR_ATTRIBUTES:
        return OTHER
    return UNREADABLE


def read_attribute_answer(raw: Any) -> tuple[Side, Side] | None:
    """(image A's values, image B's values) from a reply, or None when it holds no
    attribute answer (an attribute missing from a side reads as UNREADABLE)."""
    if not isinstance(raw, str) or "image_a" not in raw:
        return None
    obj = find_json_object(raw, SIDES)
    if obj is None:
        return None
    sides = []
    for side in SIDES:
        values = obj.get(side)
        values = values if isinstance(values, dict) else {}
        sides.append({a: normalise_value(a, values.get(a)) for a in VOCABULARY})
    return sides[0], sides[1]


def asks_attributes(prompt_name: str) -> bool:
    """Whether a prompt (bundled id or .toml path) asks for attribute values per image."""
    from reidbench.judges.prompts import load_prompt

    props = load_prompt(prompt_name).schema.get("properties", {})
    return all(side in props for side in SIDES)


def record_attribute_truth(
    systems: list[Any], dataset: Any, run_dir: Path, log: Callable[[str], None] = print
) -> bool:
    """Copy the dataset's attribute ground truth into `run_dir/attributes.json` when a judge
    asks for attributes, so the metrics (and a report made elsewhere) need not reach the
    dataset again. Returns whether it was written."""
    from reidbench.datasets.attributes import (
        ATTRIBUTES_FILE,
        load_attributes_with_source,
        write_attributes,
    )

    if not any(getattr(s, "type", "") == "lvlm" and asks_attributes(s.prompt) for s in systems):
        return False
    found = load_attributes_with_source(dataset)
    if found is None:
        log(
            "attributes: this dataset has no attribute ground truth, so attribute accuracy "
            "is not measured (Market-1501: set [dataset.options] attributes, docs/tasks.md)"
        )
        return False
    write_attributes(run_dir / ATTRIBUTES_FILE, *found)
    log(f"attributes: ground truth of {len(found[0])} identities from {found[1]}")
    return True
