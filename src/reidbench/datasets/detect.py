"""Which dataset is this folder? Decided from its structure, then `load_dataset`.

Rules by priority, first match wins (documented in docs/datasets.md):
1. (10) ROOT is a `.csv` file, or holds `manifest.csv`             -> custom
2. (30) list_{train,query,gallery}.txt with MSMT17 image folders   -> msmt17
3. (40) `detected/` or `labeled/` variant folders (cuhk03-np)      -> cuhk03np
4. (50) ROOT holds `reidbench-synthetic.json`                      -> market1501 (synthetic)
5. (50) bounding_box_train/, query/, bounding_box_test/ (directly or in a known subfolder):
   a. file names in query/ in one dataset's style: Market `0002_c1s1_000451_03.jpg`,
      Duke `0005_c2_f0046985.jpg`, CUHK03-NP `0003_c1_22.png`
   b. else a folder name on the way says market / duke / cuhk03
   c. else market1501 rules with relaxed ranges, cameras counted from the data
Anything else is an unknown layout: the error lists the formats and suggests --format.
Each rule belongs to a registered `DatasetFormat` (datasets/registry.py); plugins add theirs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from reidbench.datasets.base import Dataset
from reidbench.datasets.cuhk03np import VARIANTS, find_cuhk03np_dir, load_cuhk03np
from reidbench.datasets.custom import MANIFEST_NAME, find_manifest, load_custom
from reidbench.datasets.folders import child_dir, first_dir_with, resolve_root
from reidbench.datasets.market1501 import (
    DUKEMTMCREID,
    MARKET1501,
    SPLIT_FOLDERS,
    SYNTHETIC_MARKER,
    load_market_layout,
)
from reidbench.datasets.msmt17 import find_msmt17_dir, load_msmt17
from reidbench.datasets.naming import looks_like_image
from reidbench.datasets.registry import (
    DatasetFormat,
    Detection,
    dataset_formats,
    detection_rules,
    get_dataset_format,
    parse_options,
    register_dataset_format,
)
from reidbench.datasets.verify import require_readable
from reidbench.errors import UserError
from reidbench.progress import Progress

NAME_STYLES = (
    ("market1501", re.compile(r"^(-1|\d+)_c\ds\d+_\d+_\d+\.jpe?g$", re.IGNORECASE)),
    ("dukemtmcreid", re.compile(r"^\d+_c\d_f\d+\.jpe?g$", re.IGNORECASE)),
    ("cuhk03np", re.compile(r"^\d+_c\d_\d+\.png$", re.IGNORECASE)),
)
FOLDER_HINTS = (("market", "market1501"), ("duke", "dukemtmcreid"), ("cuhk03", "cuhk03np"))
SAMPLE = 50


def normalise_format(name: str) -> str:
    """The canonical name of a registered format or alias."""
    return get_dataset_format(name).name


def name_style(folder: Path) -> str | None:
    """The dataset whose naming style most of the first few image names follow."""
    votes = dict.fromkeys((f for f, _ in NAME_STYLES), 0)
    seen = 0
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if not looks_like_image(entry.name):
                    continue
                seen += 1
                for fmt, pattern in NAME_STYLES:
                    if pattern.match(entry.name):
                        votes[fmt] += 1
                        break
                if seen >= SAMPLE:
                    break
    except OSError:
        return None
    best = max(votes, key=lambda f: votes[f])
    return best if seen and votes[best] * 2 > seen else None


def folder_hint(root: Path, folder: Path) -> str | None:
    """A dataset name in the path from ROOT's own name down to the layout folder."""
    parts = [root.name, *folder.relative_to(root).parts]
    for part in reversed(parts):
        for needle, fmt in FOLDER_HINTS:
            if needle in part.lower():
                return fmt
    return None


def detect_format(root: Path) -> tuple[str, str, bool]:
    """(format, reason, generic): `generic` relaxes Market ranges for a tree of unknown origin.

    The registered formats' detect rules are tried in priority order; first match wins.
    """
    rules = detection_rules()
    for spec in rules:
        if root.is_file() and not spec.accepts_file:
            continue
        assert spec.detect is not None
        found = spec.detect(root)
        if found is not None:
            return found.format, found.reason, found.generic
    if root.is_file():
        raise UserError(
            f"{root} is a file; pass the dataset folder, or a .csv manifest for --format custom"
        )
    names = ",".join(dataset_formats())
    raise UserError(
        f"unknown dataset layout at {root}: expected bounding_box_train/, query/ and "
        "bounding_box_test/ (market1501, dukemtmcreid, cuhk03np), list_*.txt (msmt17) or "
        f"{MANIFEST_NAME} (custom); check the path or pass --format {{{names}}}"
    )


def _detect_custom(root: Path) -> Detection | None:
    if find_manifest(root) is None:
        return None
    return Detection("custom", f"{MANIFEST_NAME} manifest" if root.is_dir() else "CSV manifest")


def _detect_msmt17(root: Path) -> Detection | None:
    return Detection("msmt17", "MSMT17 list files") if find_msmt17_dir(root) is not None else None


def _detect_cuhk03np(root: Path) -> Detection | None:
    if not _is_layout(root) and any(find_cuhk03np_dir(root, v) is not None for v in VARIANTS):
        return Detection("cuhk03np", "detected/labeled variant folders")
    return None


def _detect_market_layout(root: Path) -> Detection | None:
    """The synthetic marker, then the shared Market layout, told apart by names and folders."""
    if (root / SYNTHETIC_MARKER).is_file():
        return Detection("market1501", f"{SYNTHETIC_MARKER} (reidbench synth output)")
    subdirs = dict.fromkeys((*MARKET1501.subdirs, *DUKEMTMCREID.subdirs))
    folder = first_dir_with(root, subdirs, SPLIT_FOLDERS.values())
    if folder is None:
        return None
    query = child_dir(folder, SPLIT_FOLDERS["query"])
    style = name_style(query) if query is not None else None
    if style is not None:
        return Detection(style, f"file names in {style} style")
    hint = folder_hint(root, folder)
    if hint is not None:
        return Detection(hint, f"folder name ({hint})")
    return Detection(
        "market1501", "Market-1501 layout of unknown origin (relaxed ranges)", generic=True
    )


def _is_layout(folder: Path) -> bool:
    return all(child_dir(folder, sub) is not None for sub in SPLIT_FOLDERS.values())


def load_dataset(
    root: str | os.PathLike[str],
    format: str | None = None,
    *,
    options: Mapping[str, Any] | None = None,
    msmt17_val_in_train: bool = True,
    cuhk03_variant: str = "detected",
    verify: bool = False,
    progress: Progress | None = None,
) -> Dataset:
    """Load any registered dataset format; `format=None` auto-detects.

    `options` are the format's own options (`[dataset.options]`, `--dataset-option`),
    validated by its options model; `msmt17_val_in_train` and `cuhk03_variant` are the
    older spellings of the msmt17 `val_in_train` and cuhk03np `variant` options.
    Listing parses file names only; `verify=True` also decodes every image and
    raises a UserError naming unreadable ones.
    """
    path = resolve_root(root)
    generic = False
    if format is None:
        fmt, reason, generic = detect_format(path)
    else:
        fmt, reason = normalise_format(format), "--format"
    spec = get_dataset_format(fmt)
    if format is not None and path.is_file() and not spec.accepts_file:
        raise UserError(f"{path} is a file; {fmt} needs the dataset folder")
    if cuhk03_variant not in VARIANTS:
        raise UserError(
            f"unknown CUHK03-NP variant {cuhk03_variant!r}; use one of {', '.join(VARIANTS)}"
        )
    legacy: dict[str, Any] = {}
    if fmt == "msmt17":
        legacy = {"val_in_train": msmt17_val_in_train}
    elif fmt == "cuhk03np":
        legacy = {"variant": cuhk03_variant}
    parsed = parse_options(spec, {**legacy, **(options or {})})
    dataset = spec.load(path, parsed, generic)
    dataset.extra["detected_by"] = reason
    if verify:
        dataset.extra["verified_images"] = require_readable(dataset, progress=progress)
    return dataset


class MSMT17Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    val_in_train: bool = True  # torchreid's combineall-style: validation ids join train


class MarketOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Market-1501_Attribute's market_attribute.mat, or a reidbench attributes.json (docs/tasks.md)
    attributes: Path | None = None


def _load_market(path: Path, options: MarketOptions, generic: bool) -> Dataset:
    dataset = load_market_layout(path, MARKET1501, generic=generic)
    if options.attributes is not None:
        from reidbench.datasets.attributes import read_attributes_file

        named = options.attributes.expanduser().resolve()
        read_attributes_file(named)  # a bad file is refused now, not at report time
        dataset.extra["attributes_file"] = str(named)
    return dataset


class CUHK03NPOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    variant: Literal["detected", "labeled"] = "detected"


def _register_builtins() -> None:
    """The built-in formats register themselves like any plugin would."""
    for spec in (
        DatasetFormat(
            "market1501",
            "Market1501",
            _load_market,
            detect=_detect_market_layout,
            priority=50,
            aliases=("market",),
            options=MarketOptions,
        ),
        DatasetFormat(
            "dukemtmcreid",
            "DukeMTMCreID",
            lambda p, o, g: load_market_layout(p, DUKEMTMCREID),
            aliases=("duke", "dukemtmc"),
        ),
        DatasetFormat(
            "msmt17",
            "MSMT17",
            lambda p, o, g: load_msmt17(p, val_in_train=o.val_in_train),
            detect=_detect_msmt17,
            priority=30,
            aliases=("msmt",),
            options=MSMT17Options,
        ),
        DatasetFormat(
            "cuhk03np",
            "CUHK03-NP",
            lambda p, o, g: load_cuhk03np(p, variant=o.variant),
            detect=_detect_cuhk03np,
            priority=40,
            aliases=("cuhk03",),
            options=CUHK03NPOptions,
        ),
        DatasetFormat(
            "custom",
            "custom manifest",
            lambda p, o, g: load_custom(p),
            detect=_detect_custom,
            priority=10,
            accepts_file=True,
        ),
    ):
        register_dataset_format(spec, replace=True)


_register_builtins()


def __getattr__(name: str) -> Any:
    """FORMATS and TITLES, the names older code imports, read the live registry."""
    if name == "FORMATS":
        return tuple(dataset_formats())
    if name == "TITLES":
        return {n: s.title for n, s in dataset_formats().items()}
    raise AttributeError(name)
