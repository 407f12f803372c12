"""Per-identity attribute ground truth: what each person wears and carries.

One vocabulary for every source, taken from Market-1501_Attribute (Lin et al.,
"Improving Person Re-identification by Attribute and Identity Learning", 2017/2019),
so that an LVLM's perception is scored the same way on the synthetic set and on
Market-1501. Two sources:

- `reidbench synth` writes `attributes.json` at the dataset root (the generator knows
  every identity's look; only what it really controls is written);
- Market-1501: the public `market_attribute.mat`, when the user names it with
  ``[dataset.options] attributes = "path/market_attribute.mat"``. Only the attributes
  the file has are used.

A value missing for an identity means "not annotated" (e.g. a synthetic beige shirt has
no Market colour name): such answers are left out of the accuracy, never counted right.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reidbench.datasets.base import Dataset
from reidbench.errors import UserError
from reidbench.files import write_json_atomic

ATTRIBUTES_FILE = "attributes.json"
FORMAT = "reidbench.attributes/1"

# attribute -> allowed values, in the order of the Market-1501_Attribute codes (1, 2, ...)
VOCABULARY: dict[str, tuple[str, ...]] = {
    "gender": ("male", "female"),
    "hair_length": ("short", "long"),
    "sleeve_length": ("long", "short"),
    "lower_length": ("long", "short"),
    "lower_type": ("dress", "pants"),
    "hat": ("no", "yes"),
    "backpack": ("no", "yes"),
    "bag": ("no", "yes"),
    "handbag": ("no", "yes"),
    "upper_colour": ("black", "white", "red", "purple", "yellow", "gray", "blue", "green"),
    "lower_colour": (
        "black", "white", "pink", "purple", "yellow", "gray", "blue", "green", "brown",
    ),
}  # fmt: skip
COLOUR_ATTRIBUTES = ("upper_colour", "lower_colour")
# Our attribute -> the Market-1501_Attribute field holding it (codes 1, 2 = VOCABULARY order).
MARKET_FIELDS = {
    "gender": "gender",
    "hair_length": "hair",
    "sleeve_length": "up",
    "lower_length": "down",
    "lower_type": "clothes",
    "hat": "hat",
    "backpack": "backpack",
    "bag": "bag",
    "handbag": "handbag",
}
MARKET_COLOUR_PREFIX = {"upper_colour": "up", "lower_colour": "down"}

Truth = dict[int, dict[str, str]]

# -- the synthetic generator's attributes in this vocabulary ------------------------------

_SYNTH_UPPER = {
    "black": "black", "white": "white", "grey": "gray", "navy": "blue", "blue": "blue",
    "light blue": "blue", "red": "red", "green": "green", "dark green": "green",
    "yellow": "yellow", "purple": "purple",
}  # fmt: skip  # pink, brown, beige, orange: no Market upper colour -> not annotated
_SYNTH_LOWER = {
    "black": "black", "denim": "blue", "light denim": "blue", "grey": "gray",
    "white": "white", "brown": "brown",
}  # fmt: skip  # khaki, olive, red: no Market lower colour -> not annotated
_SYNTH_HAIR = {"short": "short", "bald": "short", "long": "long"}  # medium: not annotated
_SYNTH_LENGTH = {"trousers": "long", "shorts": "short", "skirt": "short"}  # knee-high skirt
_SYNTH_TYPE = {"trousers": "pants", "shorts": "pants", "skirt": "dress"}
SYNTHETIC_NOT_CONTROLLED = ("gender",)  # the generator draws no gender: never written


def synthetic_attributes(person: Mapping[str, Any]) -> dict[str, str]:
    """One synthetic identity (`Identity.to_dict()`) in the Market-1501 vocabulary."""
    out: dict[str, str | None] = {
        "hair_length": _SYNTH_HAIR.get(str(person["hair_length"])),
        "sleeve_length": str(person["sleeves"]),
        "lower_length": _SYNTH_LENGTH.get(str(person["lower_kind"])),
        "lower_type": _SYNTH_TYPE.get(str(person["lower_kind"])),
        "hat": "no" if person["hat"] == "none" else "yes",
        "backpack": "yes" if person["bag"] == "backpack" else "no",
        "bag": "yes" if person["bag"] == "shoulder bag" else "no",
        "handbag": "yes" if person["bag"] == "handbag" else "no",
        "upper_colour": _SYNTH_UPPER.get(str(person["upper"])),
        "lower_colour": _SYNTH_LOWER.get(str(person["lower"])),
    }
    return {k: v for k, v in out.items() if v is not None and v in VOCABULARY[k]}


# -- reading and writing ------------------------------------------------------------------


def write_attributes(path: Path, truth: Truth, source: str) -> None:
    """`attributes.json`: {format, source, vocabulary, identities: {pid: {attr: value}}}."""
    payload = {
        "format": FORMAT,
        "source": source,
        "vocabulary": {k: list(v) for k, v in VOCABULARY.items()},
        "identities": {f"{pid:04d}": dict(truth[pid]) for pid in sorted(truth)},
    }
    write_json_atomic(path, payload)


def read_attributes_json(path: Path) -> tuple[Truth, str]:
    """A reidbench `attributes.json` (ours or a user's); values outside the vocabulary refused."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: unreadable attributes file ({exc}); fix or remove it") from exc
    people = data.get("identities") if isinstance(data, dict) else None
    if not isinstance(people, dict):
        raise UserError(
            f"{path}: expected {{'identities': {{pid: {{attribute: value}}}}}}; see docs/tasks.md"
        )
    truth: Truth = {}
    for key, attrs in people.items():
        try:
            pid = int(key)
        except ValueError as exc:
            raise UserError(f"{path}: identity {key!r} is not a number (a pid)") from exc
        if not isinstance(attrs, dict):
            raise UserError(f"{path}: identity {key!r} must map attribute names to values")
        row: dict[str, str] = {}
        for name, value in attrs.items():
            allowed = VOCABULARY.get(name)
            if allowed is None:
                raise UserError(
                    f"{path}: unknown attribute {name!r} (identity {key}); use {list(VOCABULARY)}"
                )
            if value is None:
                continue
            if value not in allowed:
                raise UserError(
                    f"{path}: {name} = {value!r} (identity {key}) is not one of {list(allowed)}"
                )
            row[name] = str(value)
        truth[pid] = row
    return truth, str(data.get("source") or path.name)


def _vector(values: Any) -> list[Any]:
    """A MATLAB 1xN array or cell as a flat Python list (squeezed by `simplify_cells`)."""
    import numpy as np

    arr = np.asarray(values, dtype=object).ravel()
    return [a.item() if hasattr(a, "item") and getattr(a, "size", 1) == 1 else a for a in arr]


def _code(value: Any) -> int | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return int(out) if math.isfinite(out) and out == int(out) else None


def _split_truth(split: Mapping[str, Any], where: str) -> Truth:
    if "image_index" not in split:
        raise UserError(f"{where}: no image_index field; is this market_attribute.mat?")
    try:
        pids = [int(str(s).strip()) for s in _vector(split["image_index"])]
    except ValueError as exc:
        raise UserError(f"{where}: image_index holds a value that is not a pid ({exc})") from exc
    n = len(pids)
    fields: dict[str, list[Any]] = {}
    for name, values in split.items():
        if name == "image_index":
            continue
        vec = _vector(values)
        if len(vec) != n:
            raise UserError(f"{where}: field {name!r} has {len(vec)} values for {n} identities")
        fields[str(name)] = vec
    truth: Truth = {pid: {} for pid in pids}
    for attr, name in MARKET_FIELDS.items():
        if name not in fields:
            continue  # only the attributes the file has
        for pid, code in zip(pids, fields[name], strict=True):
            c = _code(code)
            if c in (1, 2):
                truth[pid][attr] = VOCABULARY[attr][c - 1]
    for attr, prefix in MARKET_COLOUR_PREFIX.items():
        colours = {
            name[len(prefix) :].replace("grey", "gray"): vec
            for name, vec in fields.items()
            if name.startswith(prefix) and name not in MARKET_FIELDS.values()
        }
        if not colours:
            continue
        for i, pid in enumerate(pids):
            yes = [c for c, vec in colours.items() if _code(vec[i]) == 2]
            # The annotation marks exactly one colour; none, several or an unknown one: no value.
            if len(yes) == 1 and yes[0] in VOCABULARY[attr]:
                truth[pid][attr] = yes[0]
    return truth


def read_market_mat(path: Path) -> Truth:
    """Market-1501_Attribute `market_attribute.mat`: a struct with `train` and `test`, each
    with one 1xN array per attribute (codes 1/2, age 1-4) over identities and `image_index`
    (the pids). Train and test identities are disjoint; both are returned."""
    from scipy.io import loadmat

    try:
        data = loadmat(str(path), simplify_cells=True)
    except Exception as exc:  # scipy raises several types for a file that is not a .mat
        raise UserError(f"{path}: not a readable MATLAB .mat file ({exc})") from exc
    roots = [v for k, v in data.items() if not k.startswith("__") and isinstance(v, dict)]
    root = next((r for r in roots if "train" in r or "test" in r), None)
    if root is None:
        raise UserError(
            f"{path}: no struct with train/test fields; expected Market-1501_Attribute's "
            "market_attribute.mat"
        )
    truth: Truth = {}
    for split in ("train", "test"):
        if isinstance(root.get(split), dict):
            truth.update(_split_truth(root[split], f"{path} ({split})"))
    return truth


def read_attributes_file(path: Path) -> tuple[Truth, str]:
    """A `.mat` (Market-1501_Attribute) or a reidbench `attributes.json`."""
    if not path.is_file():
        raise UserError(f"{path}: attributes file not found; fix [dataset.options] attributes")
    if path.suffix.lower() == ".mat":
        return read_market_mat(path), f"Market-1501_Attribute ({path.name})"
    return read_attributes_json(path)


def _from_synthetic_identities(root: Path) -> Truth | None:
    """Older synthetic sets (made before attributes.json existed): derive from the
    generator's identities file."""
    from reidbench.datasets.synthetic.names import IDENTITIES_FILE

    path = root / IDENTITIES_FILE
    if not path.is_file():
        return None
    try:
        people = json.loads(path.read_text(encoding="utf-8")).get("people", {})
    except (OSError, ValueError, AttributeError) as exc:
        raise UserError(f"{path}: unreadable ({exc}); regenerate with `reidbench synth`") from exc
    return {
        int(p["pid"]): synthetic_attributes(p)
        for p in people.values()
        if p.get("kind") == "identity"
    }


def load_attributes_with_source(dataset: Dataset) -> tuple[Truth, str] | None:
    """(pid -> {attribute: value}, where it came from), or None when the dataset has none."""
    named = dataset.extra.get("attributes_file")
    if named:
        return read_attributes_file(Path(str(named)))
    own = dataset.root / ATTRIBUTES_FILE
    if own.is_file():
        return read_attributes_json(own)
    if dataset.synthetic:
        derived = _from_synthetic_identities(dataset.root)
        if derived is not None:
            return derived, "reidbench synth (identities file)"
    return None


def load_attributes(dataset: Dataset) -> Truth | None:
    """Per-identity attributes of `dataset` (pid -> {attribute: value}), or None."""
    found = load_attributes_with_source(dataset)
    return None if found is None else found[0]
