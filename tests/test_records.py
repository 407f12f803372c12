"""Typed run.json / metrics.json (schema versions, migration of older run directories) and
the MetricSpec table that every list of headline metrics reads."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

from reidbench.errors import UserError
from reidbench.metrics import specs
from reidbench.metrics.run import compute_metrics
from reidbench.records import (
    METRICS_SCHEMA_VERSION,
    RUN_SCHEMA_VERSION,
    checked_manifest,
    load_manifest,
    load_metrics,
    manifest_from_dict,
    metrics_from_dict,
)
from reidbench.report import format as fmt
from reidbench.report import render_report, summary_markdown
from reidbench.rundir import open_run
from tests.report_runs import make_run

FIXTURE = Path(__file__).parent / "fixtures" / "run_ed756d8"
SRC = Path(__file__).parents[1] / "src" / "reidbench"


@pytest.fixture
def old_run(tmp_path: Path) -> Path:
    """A copy of the run directory written by main at ed756d8 (no schema_version)."""
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    return run


# --- the fixture from before schema versions --------------------------------------------


def test_fixture_predates_schema_versions():
    for name in ("run.json", "metrics.json"):
        assert "schema_version" not in json.loads((FIXTURE / name).read_text())


def test_old_metrics_json_validates_through_the_migration():
    raw = json.loads((FIXTURE / "metrics.json").read_text())
    record = load_metrics(FIXTURE / "metrics.json")
    assert record.schema_version == METRICS_SCHEMA_VERSION
    assert record.run.name == "fixture-ed756d8"
    assert record.run.pairs.n_pairs == 45 and record.run.pairs.n_same == 23
    assert list(record.systems) == ["handcrafted", "efficientnet-lite0", "fake-gpt"]
    # Nothing is dropped or changed: the typed record dumps back to the file, plus the version.
    dumped = record.to_dict()
    assert dumped.pop("schema_version") == METRICS_SCHEMA_VERSION
    assert dumped == raw


def test_old_run_json_migrates_and_opens(old_run):
    raw = json.loads((FIXTURE / "run.json").read_text())
    manifest = load_manifest(old_run / "run.json")
    assert manifest.schema_version == RUN_SCHEMA_VERSION
    assert [(e.name, e.type) for e in manifest.systems] == [
        ("handcrafted", "reid"),
        ("efficientnet-lite0", "reid"),
        ("fake-gpt", "lvlm"),
    ]
    dumped = manifest.to_dict()
    dumped.pop("schema_version")
    assert dumped == raw
    run = open_run(old_run)
    assert run.manifest is not None and run.manifest.config.name == "fixture-ed756d8"
    assert sorted(run.systems) == sorted(["handcrafted", "efficientnet-lite0", "fake-gpt"])
    assert run.systems["fake-gpt"].scale == 100.0 and run.systems["handcrafted"].scale == 1.0


@pytest.mark.slow
def test_report_on_the_old_run_directory(old_run):
    old = json.loads((old_run / "metrics.json").read_text())
    proc = subprocess.run(
        [sys.executable, "-m", "reidbench", "report", str(old_run)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    html = (old_run / "report.html").read_text()
    new = json.loads((old_run / "metrics.json").read_text())
    assert new["schema_version"] == METRICS_SCHEMA_VERSION
    assert new["run"]["pairs"]["n_pairs"] == old["run"]["pairs"]["n_pairs"] == 45
    for name, block in old["systems"].items():
        # The ranking metrics do not depend on the threshold rules added since ed756d8:
        # the report of today shows the numbers that old main measured.
        for key in ("auc", "pr_auc", "eer"):
            assert new["systems"][name][key] == pytest.approx(block[key]), (name, key)
            assert fmt.num(block[key]) in html, (name, key)
        assert f"| {name}" in proc.stdout
    assert "fixture-ed756d8" in html and "45" in html


# --- migration rules ----------------------------------------------------------------------


def _manifest(**extra) -> dict:
    return {"config": {"name": "t"}, "systems": [{"name": "a"}], **extra}


def test_entries_without_type_were_lvlm_judges():
    m = manifest_from_dict(_manifest())
    assert m.systems[0].type == "lvlm" and not m.systems[0].threshold_recorded
    assert m.to_dict()["systems"] == [{"name": "a", "type": "lvlm"}]


def test_migration_leaves_the_input_untouched():
    data = _manifest()
    before = copy.deepcopy(data)
    manifest_from_dict(data)
    assert data == before


def test_newer_or_bad_schema_versions_are_user_errors():
    with pytest.raises(UserError, match="schema_version 99 is newer than this reidbench"):
        manifest_from_dict(_manifest(schema_version=99))
    with pytest.raises(UserError, match="schema_version must be a whole number"):
        metrics_from_dict({"schema_version": "one"})
    with pytest.raises(UserError, match=r"run manifest field systems\.0\.name"):
        manifest_from_dict({"systems": [{"type": "reid"}]})
    with pytest.raises(UserError, match="no 'systems' list"):
        manifest_from_dict({"config": {}})


def test_unknown_keys_are_kept_at_every_level():
    data = {
        "format": "reidbench.metrics/1",
        "schema_version": METRICS_SCHEMA_VERSION,
        "run": {"name": "x", "pairs": {"n_pairs": 2, "brand_new": [1]}, "later": True},
        "systems": {"a": {"auc": 1, "a_block_added_later": {"k": 1}}},
        "a_section_added_later": {"v": 2},
    }
    record = metrics_from_dict(data)
    assert record.to_dict() == data
    assert record.extra("a_section_added_later") == {"v": 2}
    assert isinstance(record.systems["a"]["auc"], int)  # numbers keep their JSON type


def test_writer_output_carries_the_version_first():
    out = checked_manifest(_manifest())
    assert next(iter(out)) == "schema_version" and out["schema_version"] == RUN_SCHEMA_VERSION


def test_written_metrics_carry_the_version(tmp_path):
    _, metrics = make_run(tmp_path, n=24, bootstrap=0)
    assert metrics["schema_version"] == METRICS_SCHEMA_VERSION
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert on_disk["schema_version"] == METRICS_SCHEMA_VERSION


# --- the MetricSpec table -----------------------------------------------------------------


def test_metric_keys_are_named_in_the_spec_table_only():
    """The TAR key (and the old tuples of metric names) live in metrics/specs.py alone."""
    hits = [
        p.relative_to(SRC).as_posix()
        for p in SRC.rglob("*.py")
        if '"tar_at_far_1e-2"' in p.read_text(encoding="utf-8")
    ]
    assert hits == ["metrics/specs.py"]
    tuple_literal = re.compile(r'\("accuracy", "f1", "auc"')
    assert not [p for p in SRC.rglob("*.py") if tuple_literal.search(p.read_text())]


def test_spec_order_and_tables():
    assert specs.keys() == (
        "accuracy",
        "precision",
        "recall",
        "f1",
        "auc",
        "pr_auc",
        "eer",
        specs.TAR_KEY,
    )
    assert specs.keys(summary=True) == ("accuracy", "f1", "auc", "pr_auc", "eer", specs.TAR_KEY)
    assert specs.keys(coverage=True) == ("accuracy", "f1", "auc", "eer", specs.TAR_KEY)
    assert [s.key for s in specs.markdown_specs()] == ["accuracy", "f1", "auc", "eer"]
    assert not specs.spec("eer").higher_is_better and specs.spec("auc").higher_is_better


@pytest.fixture
def spec_table(monkeypatch):
    """register_metric writes into the real table; give each test its own copy."""
    monkeypatch.setattr(specs, "METRIC_SPECS", list(specs.METRIC_SPECS))


def _accuracy(y: np.ndarray, pred: np.ndarray) -> float | None:
    return float(accuracy_score(y, pred)) if y.size else None


def _auc(y: np.ndarray, s: np.ndarray) -> float | None:
    return float(roc_auc_score(y, s)) if 0 < y.sum() < y.size else None


@pytest.mark.slow
def test_a_registered_metric_is_computed_and_reported(spec_table, tmp_path):
    """Adding a metric = a spec + the function that computes it; nothing else changes."""
    specs.register_metric(
        specs.MetricSpec(
            "acc_again",
            "Acc (again)",
            "accuracy, computed by a registered function",
            True,
            "threshold",
            markdown="acc again",
            digits=4,
            compute=_accuracy,
        )
    )
    specs.register_metric(
        specs.MetricSpec(
            "auc_again",
            "AUC (again)",
            "ROC AUC, computed by a registered function",
            False,  # (not true; shows the tooltip note)
            "ranking",
            compute=_auc,
        )
    )
    run, _ = make_run(tmp_path, n=32, bootstrap=0)
    metrics = compute_metrics(run)
    for name, b in metrics["systems"].items():
        # Brute force: the registered functions agree with the built-in metrics.
        assert b["acc_again"] == pytest.approx(b["accuracy"]), name
        if b["auc"] is None:
            assert b["auc_again"] is None and b["null_reasons"]["auc_again"]
        else:
            assert b["auc_again"] == pytest.approx(b["auc"]), name
        faw = b["failures_as_wrong"]
        assert faw["acc_again"] == pytest.approx(faw["accuracy"])
    html, summary = render_report(run, metrics, generated="2026-12-07 12:00 UTC")
    # The summary table has the new columns, with tooltips, and the values.
    summary_html = html[html.index('id="summary"') :]
    summary_html = summary_html[: summary_html.index("</table>")]
    assert "Acc (again)" in summary_html and "AUC (again)" in summary_html
    assert "ROC AUC, computed by a registered function (lower is better)" in summary_html
    first = next(iter(metrics["systems"].values()))
    assert fmt.num(first["acc_again"], 4) in summary_html
    # The Markdown summary has the column marked for it, after EER.
    header = next(ln for ln in summary.splitlines() if ln.startswith("| system"))
    cols = [c.strip() for c in header.strip("|").split("|")]
    assert cols[cols.index("EER") + 1] == "acc again"
    assert summary == summary_markdown(metrics)


def test_replacing_a_spec_relabels_every_table(spec_table):
    old = specs.spec("auc")
    specs.register_metric(
        specs.MetricSpec(old.key, "ROC-AUC", old.help, True, "ranking", markdown="ROC-AUC")
    )
    text = summary_markdown(
        {"run": {"name": "r"}, "systems": {"s": {"type": "reid", "auc": 0.5, "accuracy": 0.5}}}
    )
    header = next(ln for ln in text.splitlines() if ln.startswith("| system"))
    assert "ROC-AUC" in [c.strip() for c in header.strip("|").split("|")]
    assert "AUC [95% CI]" not in text
    with pytest.raises(ValueError, match="kind must be"):
        specs.register_metric(specs.MetricSpec("x", "X", "x", True, "other"))
