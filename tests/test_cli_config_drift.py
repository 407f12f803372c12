"""`reidbench pairs` and `reidbench fuse` mirror [pairs], [fusion] and [cascade]: every field
of those models has a flag, with the field's description as help and its default and bounds."""

from __future__ import annotations

from typing import Any

import pytest
import typer

from reidbench.cli import app
from reidbench.config import CascadeConfig, FusionConfig, PairsConfig

# config field -> CLI parameter name, per command; None: deliberately not a flag (why).
PAIRS_FLAGS = {
    "positives": "positives",
    "negatives": "negatives",
    "seed": "seed",
    "split": "split",
    "same_camera_positives": "same_camera",
    "distractor_negatives": "distractors",
    "triplets": "triplets",
    "hard_negatives": "hard_negatives",
    "weights": "weights",
    "hard_fraction": "hard_fraction",
    "device": "device",
}
# Shared flags whose help text is written once for every command that loads weights.
SHARED_HELP = {"weights", "device"}
FUSE_FLAGS = {
    FusionConfig: {
        "systems": "systems",  # comma-separated on the command line
        "method": "method",  # the CLI also offers cascade
        "name": "name",
        "cv_folds": "cv_folds",
        "cs": "cs",
        "select_inputs": "select",
    },
    CascadeConfig: {
        "reid": None,  # given as --systems REID,LVLM
        "lvlm": None,
        "fraction": "fraction",
        "budget_usd_per_1k": "budget",
        "live": None,  # live cascades need a run's judge settings: `reidbench run` only
        "fractions": "fractions",
        "name": "name",
    },
}
# Flags that take text (lists) or None (tri-state) so the command can tell "not given".
TEXT_OR_SENTINEL = {"systems", "method", "cs", "select", "fractions", "name"}


def _params(command: str) -> dict[str, Any]:
    group: Any = typer.main.get_command(app)  # typer's own (vendored) click group
    cmd = group.commands[command]
    return {p.name: p for p in cmd.params if p.name}


def _check(model, field: str, param: Any, *, help_too: bool, default_too: bool):
    info = model.model_fields[field]
    if help_too and info.description is not None:
        assert getattr(param, "help", None) == info.description, (model.__name__, field)
    if default_too and not info.is_required():
        assert param.default == info.get_default(call_default_factory=True), (
            model.__name__,
            field,
        )
    for rule in info.metadata:
        if getattr(rule, "ge", None) is not None:
            assert getattr(param, "min", None) == rule.ge, (model.__name__, field)
        if getattr(rule, "le", None) is not None:
            assert getattr(param, "max", None) == rule.le, (model.__name__, field)


def test_every_pairs_field_is_a_pairs_flag_with_its_help_default_and_bounds() -> None:
    assert set(PAIRS_FLAGS) == set(PairsConfig.model_fields), "a [pairs] field has no flag"
    params = _params("pairs")
    for field, name in PAIRS_FLAGS.items():
        assert name in params, f"reidbench pairs lacks a flag for [pairs] {field}"
        required = PairsConfig.model_fields[field].is_required() or field in (
            "positives",
            "negatives",
        )  # the command asks for counts explicitly
        _check(
            PairsConfig,
            field,
            params[name],
            help_too=field not in SHARED_HELP,
            default_too=not required,
        )


@pytest.mark.parametrize("model", list(FUSE_FLAGS))
def test_every_fusion_and_cascade_field_is_a_fuse_flag_or_says_why_not(model) -> None:
    mapping = FUSE_FLAGS[model]
    assert set(mapping) == set(model.model_fields), f"a {model.__name__} field is unmapped"
    params = _params("fuse")
    for field, name in mapping.items():
        if name is None:
            continue
        assert name in params, f"reidbench fuse lacks a flag for {model.__name__}.{field}"
        _check(
            model,
            field,
            params[name],
            help_too=name not in {"systems", "method", "name"},
            default_too=name not in TEXT_OR_SENTINEL,
        )
