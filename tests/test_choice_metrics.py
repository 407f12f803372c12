"""metrics.json `tasks.choice`: every number against a direct computation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from scipy.stats import binomtest, chisquare

from reidbench.tables import write_table
from reidbench.tasks.choice_items import curate_choice_items, write_items
from reidbench.tasks.choice_metrics import accuracy_interval, metrics
from reidbench.tasks.choice_run import ANSWERS_SCHEMA
from reidbench.tasks.registry import MetricsSettings
from tests.test_pairs_data import make_dataset


def _answers(name: str, ids: list[int], answers: list[int | None], statuses: list[str], truth):
    rows = []
    for i, a, s in zip(ids, answers, statuses, strict=True):
        rows.append(
            {
                "item_id": i,
                "system": name,
                "repeat": 0,
                "answer": a if s == "ok" else None,
                "status": s,
                "correct": s == "ok" and a == truth[i],
                "cached": False,
                "attempts": 1,
                "cost_usd": 0.001,
            }
        )
    return pa.Table.from_pylist(rows, schema=ANSWERS_SCHEMA)


@pytest.fixture
def task_dir(tmp_path: Path):
    ds = make_dataset(n_ids=12, cams=4)
    items = curate_choice_items(ds, items=20, candidates=4, seed=5)
    folder = tmp_path / "tasks" / "choice"
    items.meta["content_hash"] = write_items(folder / "items.parquet", items)
    return folder, items


def test_choice_metrics_match_direct_computation(task_dir) -> None:
    folder, items = task_dir
    ids = items.table.column("item_id").to_pylist()
    truth = dict(zip(ids, items.true_slot.tolist(), strict=True))
    rng = np.random.default_rng(0)
    # A position-biased "LVLM": names A in most items; a few refusals and parse errors.
    lv_ans = [0 if rng.random() < 0.7 else int(truth[i]) for i in ids]
    lv_status = ["ok"] * 20
    lv_status[3], lv_status[7], lv_status[11] = "refusal", "parse_error", "api_error"
    reid_ans = [int(truth[i]) if k % 5 else (int(truth[i]) + 1) % 4 for k, i in enumerate(ids)]
    write_table(folder / "systems" / "lv.parquet", _answers("lv", ids, lv_ans, lv_status, truth))
    write_table(
        folder / "systems" / "reid.parquet", _answers("reid", ids, reid_ans, ["ok"] * 20, truth)
    )
    out = metrics(folder, {"kind": "choice"}, MetricsSettings(n_boot=200, seed=1))

    assert out["n_items"] == 20 and out["n_candidates"] == 4
    assert out["true_slot_counts"] == [5, 5, 5, 5]
    lv = out["systems"]["lv"]
    ok = np.array([s == "ok" for s in lv_status])
    ans = np.array(lv_ans)
    t = np.array([truth[i] for i in ids])
    right = ok & (ans == t)
    assert lv["accuracy"] == pytest.approx(right.mean())  # non-answers count as wrong
    assert lv["statuses"] == {"ok": 17, "refusal": 1, "parse_error": 1, "api_error": 1}
    named = np.bincount(ans[ok], minlength=4)
    assert lv["position_bias"]["answer_counts"] == named.tolist()
    ref = chisquare(named)
    assert lv["position_bias"]["uniform_answers"]["chi2"] == pytest.approx(ref.statistic)
    assert lv["position_bias"]["uniform_answers"]["p_value"] == pytest.approx(ref.pvalue)
    for k, slot in enumerate(lv["per_slot"]):
        assert slot["n"] == 5
        assert slot["accuracy"] == pytest.approx(right[t == k].mean())
        assert slot["answered"] == named[k]
    assert lv["cost_usd"] == pytest.approx(0.02)
    assert lv["chance"] == 0.25

    (comp,) = out["comparisons"]
    assert (comp["a"], comp["b"]) == ("lv", "reid")
    r_right = np.array(reid_ans) == t
    b, c = int(np.sum(right & ~r_right)), int(np.sum(~right & r_right))
    assert (comp["mcnemar_exact"]["b"], comp["mcnemar_exact"]["c"]) == (b, c)
    assert comp["mcnemar_exact"]["p_value"] == pytest.approx(binomtest(b, b + c, 0.5).pvalue)
    assert comp["mcnemar_clustered"]["p_value"] is not None


def test_accuracy_interval_resamples_identities() -> None:
    # Brute force: the same percentile interval from explicit identity resamples.
    correct = np.array([1, 1, 1, 0, 0, 1, 0, 1, 1, 1], dtype=bool)
    pids = np.array([1, 1, 1, 2, 2, 3, 4, 5, 5, 6])
    ci = accuracy_interval(correct, pids, MetricsSettings(n_boot=300, seed=4))
    from reidbench.metrics.clusters import as_pair_clusters
    from reidbench.metrics.stats import cluster_bootstrap_indices

    pc = as_pair_clusters(pids, pids.size)
    draws, _ = cluster_bootstrap_indices(pc, 300, 4)
    accs = []
    for d in draws:
        w = np.bincount(d, minlength=pc.n_clusters)[pc.a]
        accs.append((w * correct).sum() / w.sum())
    lo, hi = np.percentile(accs, [2.5, 97.5])
    assert (ci["low"], ci["high"]) == pytest.approx((lo, hi))
    # Whole identities move together: the interval is wider than one over items alone.
    item_ci = accuracy_interval(correct, np.arange(10), MetricsSettings(n_boot=300, seed=4))
    assert ci["high"] - ci["low"] >= item_ci["high"] - item_ci["low"] - 0.05


def test_report_section_shows_the_block(task_dir) -> None:
    from reidbench.report.task_views import task_sections

    folder, items = task_dir
    ids = items.table.column("item_id").to_pylist()
    truth = dict(zip(ids, items.true_slot.tolist(), strict=True))
    ans = [int(truth[i]) for i in ids]
    write_table(folder / "systems" / "r.parquet", _answers("r", ids, ans, ["ok"] * 20, truth))
    block = metrics(folder, {"kind": "choice"}, MetricsSettings(n_boot=20))
    (section,) = task_sections({"tasks": {"choice": block}}, {"r": "#123456"})
    assert section.title == "Multiple choice"
    tables = dict(section.blocks[0].tables)
    row = tables["Accuracy"].rows[0]
    assert row.head == "r" and row.cells[1].text == "1.000" and row.cells[2].text == "0.250"
    slots = tables["Accuracy by true slot"].rows[0].cells
    assert [c.sub for c in slots] == ["named 5×"] * 4
    # Unknown kinds and malformed blocks are skipped or shown with dashes, never a crash.
    assert task_sections({"tasks": {"g": {"kind": "other"}}}, {}) == []
    (odd,) = task_sections({"tasks": {"choice-2": {"kind": "choice", "systems": {"x": 3}}}}, {})
    assert odd.title == "Multiple choice (choice-2)"
    from reidbench.report.choice_view import choice_markdown

    md = "\n".join(choice_markdown({"tasks": {"choice": block}}))
    assert "Multiple choice (choice): 20 items, 4 candidates each" in md
    assert "- r: accuracy 1.000 [" in md and "(chance 0.250)" in md
    assert choice_markdown({"tasks": {"g": {"kind": "gallery"}}}) == []


def test_reid_ties_go_to_a_random_tied_slot_not_the_first() -> None:
    from reidbench.tasks.choice_run import _argmax_slots

    scores = np.array([[0.2, 0.9, 0.1, 0.3]] * 3 + [[0.5, 0.5, 0.5, 0.5]] * 4000)
    slots = _argmax_slots(scores, seed=0)
    assert (slots[:3] == 1).all()  # a unique maximum is the answer
    counts = np.bincount(slots[3:], minlength=4)
    assert chisquare(counts).pvalue > 1e-3  # exact ties spread evenly over the tied slots
    assert (_argmax_slots(scores, seed=0) == slots).all()  # and reproducibly


def test_repeats_agreement(task_dir) -> None:
    folder, items = task_dir
    ids = items.table.column("item_id").to_pylist()
    truth = dict(zip(ids, items.true_slot.tolist(), strict=True))
    first = [int(truth[i]) for i in ids]
    second = [a if k % 4 else (a + 1) % 4 for k, a in enumerate(first)]  # 5 of 20 flip
    t0 = _answers("lv", ids, first, ["ok"] * 20, truth)
    t1 = _answers("lv", ids, second, ["ok"] * 20, truth)
    t1 = t1.set_column(t1.column_names.index("repeat"), "repeat", pa.array([1] * 20, pa.int64()))
    write_table(folder / "systems" / "lv.parquet", pa.concat_tables([t0, t1]))
    block = metrics(folder, {"kind": "choice"}, MetricsSettings(n_boot=20))["systems"]["lv"]
    assert block["accuracy"] == 1.0  # the headline is the first repeat
    assert block["repeats"]["n_repeats"] == 2
    assert block["repeats"]["all_agree"] == pytest.approx(15 / 20)
    assert block["repeats"]["accuracy_per_repeat"] == pytest.approx([1.0, 0.75])
