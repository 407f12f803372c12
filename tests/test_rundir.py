"""The run-directory model: one reader for metrics, fusion and report; `report` refuses
edited inputs with one line and exit 2 (issue #14 item 4); the Bootstrap door."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reidbench.errors import UserError
from reidbench.fusion.records import fuse_run
from reidbench.metrics.run.bootstrap import Bootstrap
from reidbench.pairs import pairset_hash
from reidbench.rundir import answered_mask, open_run
from reidbench.tables import PAIRS_SCHEMA, read_meta, write_table
from tests.fusion_fixtures import two_embedders_and_lvlm, write_run

SRC = Path(__file__).parent.parent / "src" / "reidbench"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    y, systems = two_embedders_and_lvlm(n=80)
    return write_run(tmp_path / "run", y, systems, bootstrap=20)


def _rewrite(path: Path, column: str, fn) -> None:
    table = pq.read_table(path)
    i = table.schema.get_field_index(column)
    values = fn(table.column(column).to_pylist())
    table = table.set_column(i, table.schema.field(i), pa.array(values, table.schema.field(i).type))
    pq.write_table(table, path)


def test_answered_rule_is_the_one_copy():
    status = np.array(["ok", "ok", "ok", "refusal", "ok"], dtype=object)
    score = np.array([0.3, np.nan, np.nan, 0.9, np.inf])
    decision = np.array(["unknown", "same", "unknown", "same", "unknown"], dtype=object)
    assert answered_mask(status, score, decision).tolist() == [True, True, False, False, False]
    hits = [p for p in SRC.rglob("*.py") if "DEFAULT_SCALE = " in p.read_text(encoding="utf-8")]
    assert [p.relative_to(SRC).as_posix() for p in hits] == ["rundir/model.py"]


def test_views_match_the_files(run_dir: Path):
    run = open_run(run_dir)
    y, _ = two_embedders_and_lvlm(n=80)
    assert run.label.tolist() == y.tolist()
    judge = run.systems["judge"]
    assert judge.scale == 100.0 and judge.recorded_threshold == 50.0
    assert run.systems["emb-a"].scale == 1.0 and run.systems["emb-a"].recorded_threshold is None
    refused = judge.status == "refusal"
    assert judge.answered.tolist() == (~refused).tolist()
    assert run.notes == []


def test_distractors_are_one_identity_per_image(tmp_path: Path):
    table = pa.table(
        {
            "pair_id": [0, 1, 2, 3],
            "path_a": ["q/1.jpg", "q/1.jpg", "q/2.jpg", "q/3.jpg"],
            "path_b": ["g/0a.jpg", "g/0b.jpg", "g/0a.jpg", "g/3.jpg"],
            "pid_a": [1, 1, 2, 3],
            "pid_b": [0, 0, 0, 3],
            "cam_a": [0, 0, 0, 0],
            "cam_b": [1, 1, 1, 1],
            "label": [0, 0, 0, 1],
        },
        schema=PAIRS_SCHEMA,
    )
    write_table(tmp_path / "pairs.parquet", table, {"content_hash": pairset_hash(table)})
    from reidbench.rundir.model import read_pairs_table

    pairs, _ = read_pairs_table(tmp_path / "pairs.parquet")
    id_a, id_b = pairs.identities
    img_a, img_b = pairs.images
    assert id_a.tolist() == [1, 1, 2, 3]
    # two distractor images -> two distinct negative identities; the same image -> the same one
    assert id_b[0] < 0 and id_b[1] < 0 and id_b[0] != id_b[1] and id_b[2] == id_b[0]
    assert id_b[3] == 3
    assert img_b[0] == img_b[2] and img_a[0] == img_a[1] and len(set(img_a) | set(img_b)) == 6


def test_metrics_never_import_fusion():
    """No metrics -> fusion import, lazy ones included; only bootstrap.py calls the tests."""
    for path in [*(SRC / "metrics").rglob("*.py"), *(SRC / "rundir").rglob("*.py")]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("reidbench.fusion"), path
                if path.parent.name == "run" and path.name != "bootstrap.py":
                    assert node.module != "reidbench.metrics.stats", path
                    names = {a.name for a in node.names}
                    assert "stats" not in names or node.module != "reidbench.metrics", path


def test_p_value_is_never_zero():
    y = np.array([0, 1] * 30)
    perfect = y + np.linspace(0, 0.1, y.size)
    noise = np.random.default_rng(0).random(y.size)
    boot = Bootstrap(n_boot=199, seed=0)
    d = boot.auc_diff(y, perfect, noise)
    assert d["ci"]["n_valid"] == 199
    assert d["p_value"] == pytest.approx(2 / 200)
    assert boot.auc_diff(y, perfect, perfect)["p_value"] == 1.0


# --- `report` verifies what it reads ---------------------------------------------------


def test_report_refuses_a_flipped_label(run_dir: Path, run_cli):
    _rewrite(run_dir / "pairs.parquet", "label", lambda v: [1 - v[0], *v[1:]])
    # keep the stored metadata (the hash of the original pairs), as an edit by hand would
    table = pq.read_table(run_dir / "pairs.parquet")
    assert read_meta(table)["content_hash"] != pairset_hash(table.cast(PAIRS_SCHEMA))
    r = run_cli("report", run_dir)
    assert r.code == 2 and "Traceback" not in r.err
    assert "pairs.parquet" in r.err and "content hash mismatch" in r.err
    assert not (run_dir / "metrics.json").exists()


@pytest.mark.parametrize(
    ("system", "value", "words"),
    [
        ("judge", float("nan"), "NaN score"),
        ("judge", 1e9, "outside its scale 0-100"),
        ("judge", -50.0, "outside its scale 0-100"),
        ("emb-a", 1.5, "outside its scale 0-1"),
    ],
)
def test_report_refuses_scores_outside_the_scale(run_dir: Path, run_cli, system, value, words):
    table = pq.read_table(run_dir / "scores.parquet")
    first = table.column("system").to_pylist().index(system)
    _rewrite(
        run_dir / "scores.parquet",
        "score",
        lambda v: [value if i == first else s for i, s in enumerate(v)],
    )
    r = run_cli("report", run_dir)
    assert r.code == 2 and "Traceback" not in r.err
    assert "scores.parquet" in r.err and words in r.err and system in r.err


def test_report_refuses_unknown_status_and_duplicate_rows(run_dir: Path, run_cli):
    path = run_dir / "scores.parquet"
    original = pq.read_table(path)
    _rewrite(path, "status", lambda v: ["maybe", *v[1:]])
    r = run_cli("report", run_dir)
    assert r.code == 2 and "unknown status values ['maybe']" in r.err
    pq.write_table(pa.concat_tables([original, original.slice(0, 1)]), path)
    r = run_cli("report", run_dir)
    assert r.code == 2 and "more than one row for the same pair" in r.err


def test_old_pairs_without_hash_still_open_with_a_note(run_dir: Path):
    table = pq.read_table(run_dir / "pairs.parquet")
    write_table(run_dir / "pairs.parquet", table.replace_schema_metadata(None), {"seed": 0})
    run = open_run(run_dir)
    assert len(run.notes) == 1 and "no content hash" in run.notes[0]


@pytest.mark.slow
def test_summary_says_why_a_fused_system_was_skipped(run_dir: Path, run_cli):
    name = fuse_run(run_dir, ["emb-a", "emb-b"], select_inputs=False)["name"]
    # re-score emb-b (a different run of it): the fusion record is now stale
    table = pq.read_table(run_dir / "scores.parquet")
    systems = table.column("system").to_pylist()
    _rewrite(
        run_dir / "scores.parquet",
        "score",
        lambda v: [s * 0.9 if n == "emb-b" else s for s, n in zip(v, systems, strict=True)],
    )
    r = run_cli("report", run_dir)
    assert r.code == 0, r.err
    summary = (run_dir / "summary.md").read_text(encoding="utf-8")
    assert f"Fused system {name} not shown: stale" in summary
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "is not reported: stale" in html


def test_open_run_errors_name_the_file(tmp_path: Path):
    with pytest.raises(UserError, match=r"run\.json: not found"):
        open_run(tmp_path)


def test_bootstrap_hands_each_call_the_clusters_of_its_pairs(monkeypatch):
    """Wiring a dependence-aware method is one place: Bootstrap slices `clusters` by `at`."""
    from reidbench.metrics import stats

    seen = []

    def fake_ci(y, s, pred, n, seed, *, level, rates=None, clusters=None):
        seen.append(("ci", clusters))
        return {"intervals": {}}

    def fake_auc(y, a, b, n, seed, level, clusters=None):
        seen.append(("auc", clusters))
        return {"p_value": None, "ci": None}

    def fake_mcnemar(a, b, clusters=None):
        seen.append(("mcnemar", clusters))
        return {}

    monkeypatch.setattr(stats, "bootstrap_ci", fake_ci)
    monkeypatch.setattr(stats, "paired_bootstrap_auc", fake_auc)
    monkeypatch.setattr(stats, "mcnemar", fake_mcnemar)
    codes = np.stack([np.arange(6), np.arange(6) + 10], axis=1)
    mask = np.array([True, False, True, True, False, False])
    boot = Bootstrap(n_boot=5, seed=0, clusters=codes)
    y = np.array([0, 1, 1])
    boot.ci(y, y * 1.0, None, at=mask)
    boot.auc_diff(y, y * 1.0, y * 1.0, at=mask)
    boot.subset(mask).mcnemar(y == 1, y == 1)
    assert [k for k, _ in seen] == ["ci", "auc", "mcnemar"]
    for _, c in seen:
        np.testing.assert_array_equal(c, codes[mask])
    Bootstrap(n_boot=5).mcnemar(y == 1, y == 1)  # no clusters: the keyword is not passed
    assert seen[-1] == ("mcnemar", None)
