"""Optional sections: fusion, cascade and LVLM re-ranking (present when metrics.json has them).

Their blocks are written by reidbench.fusion (see docs/fusion.md). Each gets a
readable summary (tables, a figure) here, and everything it recorded is also
shown under "All recorded values", so a field added later is never hidden.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reidbench.metrics import specs
from reidbench.report import format as fmt
from reidbench.report import plots, sections
from reidbench.report.attributes_view import attribute_sections
from reidbench.report.coverage_view import coverage_aware_table
from reidbench.report.model import (
    Cell,
    ExtraBlock,
    ExtraSection,
    Pairs,
    Row,
    Table,
    as_map,
    collect_notes,
    count,
    formatted,
    number,
    scalar_text,
    to_tree,
)
from reidbench.report.sensitivity import sensitivity_sections
from reidbench.report.task_views import task_sections


def _split_text(split: Any) -> str:
    if not isinstance(split, Mapping):
        return fmt.DASH
    return (
        f"fitted on calibration half A ({fmt.integer(split.get('n_calibration'))} pairs), "
        f"measured on held-out half B ({fmt.integer(split.get('n_held_out'))} pairs, "
        f"{fmt.integer(split.get('n_held_out_same'))} same person), seed "
        f"{scalar_text(split.get('seed'))}"
    )


def _metric_cells(block: Mapping[str, Any], intervals: Mapping[str, Any] | None) -> list[Cell]:
    iv = intervals or {}
    return [number(block.get(k), ci=iv.get(k)) for k in specs.keys(summary=True)]


def _fusion_block(name: str, f: Mapping[str, Any], colours: Mapping[str, str]) -> ExtraBlock:
    model = as_map(f.get("model"))
    fitted = as_map(model.get("model"))
    feats = as_map(model.get("features"))
    thr = as_map(model.get("threshold"))
    sel = as_map(f.get("selection"))
    facts: Pairs = [
        ("Method", f"{f.get('method', 'logistic')}: {fitted.get('estimator', fmt.DASH)}"),
        ("Systems fused", ", ".join(map(str, f.get("systems") or []))),
    ]
    if sel:
        facts.append(("Inputs kept", _kept_text(sel)))
    facts += [
        ("Pairs", _split_text(f.get("split"))),
        ("Features", ", ".join(map(str, fitted.get("features") or feats.get("names") or []))),
    ]
    imp = as_map(feats.get("imputation"))
    if imp:
        values = ", ".join(f"{k} {scalar_text(v)}" for k, v in as_map(imp.get("values")).items())
        flags = ", ".join(map(str, feats.get("indicators") or []))
        text = f"score imputed by the {imp.get('rule', 'recorded rule')} ({values})"
        if flags:
            text += f"; a failure flag for {flags}"
        facts.append(("Failed answers", text))
    if fmt.is_num(fitted.get("C")):
        cv = as_map(fitted.get("cv"))
        facts.append(
            (
                "Regularisation",
                f"C = {fitted['C']:.4g} chosen by {cv.get('folds', '?')}-fold "
                f"cross-validation on half A ({cv.get('scoring', 'log loss')})",
            )
        )
    if thr:
        facts.append(("Threshold", f"{scalar_text(thr.get('value'))}: {thr.get('rule', '')}"))
    if f.get("best_single_rule"):
        facts.append(("Best single system", f"{f.get('best_single')}: {f['best_single_rule']}"))

    fused = as_map(f.get("fused"))
    split = as_map(f.get("split"))
    n_held = split.get("n_held_out")
    cols = [
        ("Answered", "held-out pairs the system answered"),
        *[(sections.LABELS[k], sections.HELP[k]) for k in specs.keys(summary=True)],
    ]
    answered = count(fused.get("n_answered"))
    if fmt.is_num(n_held) and fmt.is_num(fused.get("n_answered")) and n_held:
        answered.sub = fmt.pct(fused["n_answered"] / n_held)
    rows = [
        Row(name, [answered, *_metric_cells(fused, fused.get("ci"))], colours.get(name), "fused")
    ]
    for single, b in as_map(f.get("singles")).items():
        cell = count(b.get("n_answered"))
        if fmt.is_num(b.get("coverage")):
            cell.sub = fmt.pct(b["coverage"])
        rows.append(
            Row(single, [cell, *_metric_cells(b, b.get("ci"))], colours.get(single), "alone")
        )
    table = collect_notes(Table(cols, rows))
    block = ExtraBlock(name, colours.get(name), facts, [("On the same held-out pairs", table)])
    selection = _selection_table(sel)
    if selection is not None:
        block.tables.append(
            ("Input selection: cross-validated on calibration half A only", selection)
        )
    vs = f.get("vs_best")
    if isinstance(vs, Mapping):
        block.tables.append(
            (
                f"Fused vs the best single system ({vs.get('pairs', 'held-out pairs')})",
                sections.comparison_table([vs], colours),
            )
        )
    block.details.append(("Fitted model", to_tree(model)))
    return block


def _kept_text(sel: Mapping[str, Any]) -> str:
    chosen = sel.get("chosen")
    kept = ", ".join(map(str, chosen)) if isinstance(chosen, list) and chosen else fmt.DASH
    note = sel.get("note")
    return f"{kept} \u2014 {note}" if note else kept


SELECTION_COLUMNS = [
    (
        "CV AUC",
        "mean ROC AUC of the out-of-fold predictions over the folds of half A; the "
        "smaller line is the standard deviation over folds",
    ),
    ("Pooled", "ROC AUC of all out-of-fold predictions of half A at once (for information)"),
    ("Features", "columns of the candidate's model (scores and failure flags)"),
]


def _selection_table(sel: Mapping[str, Any]) -> Table | None:
    """One row per candidate input set: its cross-validated AUC; the chosen one marked."""
    cands = [c for c in sel.get("candidates") or [] if isinstance(c, Mapping)]
    if not cands:
        return None
    chosen = sel.get("chosen") if isinstance(sel.get("chosen"), list) else []
    rows = []
    for c in cands:
        inputs: list[Any] = c["inputs"] if isinstance(c.get("inputs"), list) else []
        feats: list[Any] = c["features"] if isinstance(c.get("features"), list) else []
        std = c.get("cv_auc_std")
        mean = formatted(c.get("cv_auc_mean"), lambda v: fmt.num(v, 4))
        if fmt.is_num(std) and mean.text != fmt.DASH:
            mean.sub = f"\u00b1 {fmt.num(std, 4)}"
        cells = [
            mean,
            formatted(c.get("cv_auc_pooled"), lambda v: fmt.num(v, 4)),
            count(len(feats) or None),
        ]
        sub = "chosen" if inputs == chosen else ""
        rows.append(Row(" + ".join(map(str, inputs)), cells, sub=sub))
    table = Table(SELECTION_COLUMNS, rows, head_label="Inputs")
    if sel.get("rule"):
        table.add_note(f"Rule: {sel['rule']}.")
    if sel.get("candidate_set"):
        table.add_note(f"Candidates: {sel['candidate_set']}.")
    return collect_notes(table)


CURVE_COLUMNS = (
    ("fraction_target", "Target", "fraction of calibration pairs the band was sized to hold"),
    ("fraction_sent", "Sent", "fraction of held-out pairs sent to the LVLM"),
    ("n_sent", "Pairs sent", ""),
    ("n_lvlm_failed", "LVLM failed", "sent pairs the LVLM failed on (ReID decides them)"),
    ("accuracy", "Accuracy", ""),
    ("f1", "F1", ""),
    ("auc", "AUC", ""),
    ("usd_per_1000_pairs", "USD / 1k pairs", "LVLM cost per 1,000 held-out pairs"),
)


def _curve_row(head: str, p: Mapping[str, Any], colour: str | None, sub: str = "") -> Row:
    cells = []
    for key, _, _ in CURVE_COLUMNS:
        v = p.get(key)
        if key.startswith("n_"):
            cells.append(count(v))
        elif key == "usd_per_1000_pairs":
            cells.append(formatted(v, fmt.usd, (p.get("null_reasons") or {}).get("usd", "")))
        elif key.startswith("fraction"):
            cells.append(formatted(v, fmt.pct))
        else:
            cells.append(number(v, (p.get("null_reasons") or {}).get(key, "")))
    return Row(head, cells, colour, sub)


def _cascade_block(name: str, c: Mapping[str, Any], colours: Mapping[str, str]) -> ExtraBlock:
    reid = as_map(c.get("reid_side"))
    op = as_map(c.get("operating_point"))
    facts: Pairs = [
        ("ReID model", f"{c.get('reid')}: decides pairs outside the band"),
        ("LVLM", f"{c.get('lvlm')}: decides pairs inside the band"),
        ("Mode", str(c.get("mode", fmt.DASH))),
        ("Pairs", _split_text(c.get("split"))),
        (
            "ReID threshold",
            f"{scalar_text(reid.get('threshold'))} ({reid.get('threshold_source', '')})",
        ),
        ("Operating point", str(op.get("rule", fmt.DASH))),
    ]
    if fmt.is_num(op.get("band_lo")) and fmt.is_num(op.get("band_hi")):
        facts.append(("Band", f"ReID score in [{op['band_lo']:.4g}, {op['band_hi']:.4g}]"))
    if c.get("budget_usd_per_1k") is not None:
        facts.append(("Budget", f"{fmt.usd(c['budget_usd_per_1k'])} per 1,000 pairs"))
    acc = as_map(c.get("accounting"))
    if acc:
        facts.append(
            (
                "LVLM calls",
                f"{fmt.integer(acc.get('lvlm_calls_this_run'))} this run, "
                f"{fmt.usd(acc.get('lvlm_usd_this_run'))} paid; all answers "
                f"{fmt.usd(acc.get('lvlm_usd_answers'))}",
            )
        )
    if c.get("curve_note"):
        facts.append(("Curve", str(c["curve_note"])))
    colour = colours.get(name, plots.PALETTE[0])
    block = ExtraBlock(name, colours.get(name), facts)
    figure = plots.cascade_plot(c.get("curve") or [], op, colour)
    if figure:
        block.figures.append((figure, "Cascade curve"))
    cols = [(label, tip) for _, label, tip in CURVE_COLUMNS]
    op_rows = [_curve_row(name, op, colours.get(name), "held-out")] if op else []
    if isinstance(op.get("calibration"), Mapping):
        op_rows.append(_curve_row(name, op["calibration"], colours.get(name), "same band, half A"))
    if op_rows:
        block.tables.append(("Operating point", collect_notes(Table(cols, op_rows))))
    curve = [p for p in c.get("curve") or [] if isinstance(p, Mapping)]
    if curve:
        rows = []
        for p in curve:
            row = _curve_row(f"{fmt.pct(p.get('fraction_target'))}", p, None)
            row.cells = row.cells[1:]  # the target is the row head here
            rows.append(row)
        table = Table(cols[1:], rows, head_label="Target")
        block.tables.append(("Curve on held-out pairs", collect_notes(table)))
    block.details.append(("Rules", to_tree(c.get("rules") or {})))
    return block


def _rerank_block(r: Mapping[str, Any], colours: Mapping[str, str]) -> ExtraBlock:
    s = as_map(r.get("settings"))
    reid, lvlm = as_map(r.get("reid")), as_map(r.get("lvlm"))
    calls = as_map(r.get("calls"))
    ds = as_map(r.get("dataset"))
    method = str(s.get("method", fmt.DASH))
    if method == "fuse":
        method += f" (alpha {scalar_text(s.get('alpha'))})"
    facts: Pairs = [
        ("ReID model", f"{reid.get('name')} ({reid.get('model')}, {reid.get('fingerprint')})"),
        (
            "LVLM",
            f"{lvlm.get('name')} ({lvlm.get('model')}, prompt {lvlm.get('prompt_id')} "
            f"v{lvlm.get('prompt_version')})",
        ),
        ("Top-k re-ordered", scalar_text(s.get("top_k"))),
        ("Method", method),
        (
            "Queries",
            f"{fmt.integer((r.get('queries') or {}).get('n_selected'))} "
            f"(requested {scalar_text(s.get('queries'))}, seed {scalar_text(s.get('seed'))})",
        ),
        (
            "Dataset",
            f"{ds.get('name')}{' (SYNTHETIC)' if ds.get('synthetic') else ''}, "
            f"{fmt.integer(ds.get('gallery_images'))} gallery images",
        ),
        (
            "LVLM calls",
            f"{fmt.integer(calls.get('pairs_judged'))} pairs judged, "
            f"{fmt.integer(calls.get('answered'))} answered; "
            f"{fmt.integer(calls.get('calls_this_run'))} calls this run, "
            f"{fmt.usd(calls.get('usd_this_run'))} paid; all answers "
            f"{fmt.usd(calls.get('usd_answers'))}",
        ),
    ]
    facts += _rerank_paired_facts(r.get("paired"))
    keys = (
        ("rank1", "Rank-1"),
        ("rank5", "Rank-5"),
        ("rank10", "Rank-10"),
        ("mAP", "mAP"),
        ("mINP", "mINP"),
    )
    rows = []
    for label in ("before", "after", "delta"):
        m = r.get(label) or {}
        if label == "delta":
            cells = [Cell(fmt.signed(m.get(k))) for k, _ in keys]
        else:
            cells = [number(m.get(k)) for k, _ in keys]
        rows.append(Row({"delta": "change"}.get(label, label), cells))
    table = Table([(lab, "") for _, lab in keys], rows, head_label="Queries")
    colour = colours.get(str(lvlm.get("name")), plots.PALETTE[0])
    block = ExtraBlock(f"{reid.get('name')} re-ranked by {lvlm.get('name')}", colour, facts)
    block.tables.append(("Retrieval on the selected queries", table))
    figure = plots.cmc_before_after(
        (r.get("before") or {}).get("cmc"), (r.get("after") or {}).get("cmc"), colour
    )
    if figure:
        block.figures.append((figure, "CMC before and after re-ranking"))
    block.details.append(("Protocol", to_tree(r.get("protocol") or {})))
    return block


def _rerank_paired_facts(paired: Any) -> Pairs:
    """Rank-1 and mAP change with intervals and tests, worded as `reidbench rerank` prints them."""
    p = as_map(paired)
    if not p:
        return [("Paired tests", "not recorded (rerank.json from an older reidbench); re-run")]
    return [
        ("Rank-1 change", fmt.paired_change(dict(as_map(p.get("rank1"))), p.get("mcnemar"))),
        ("mAP change", fmt.paired_change(dict(as_map(p.get("mAP"))))),
        ("Paired tests", str(p.get("rule", ""))),
    ]


FUSION_HOWTO = (
    "A fused system combines the scores of several systems with a logistic regression fitted on "
    "calibration half A only; every number here is measured on held-out half B, which the fit "
    "never saw. Unless turned off, the inputs it keeps are chosen first by cross-validated AUC "
    "on half A: an input that does not help is dropped (the fused system keeps the name it was "
    "asked for). The inputs are shown alone on the same held-out pairs, and the fused system is "
    "tested against the best of them (paired tests, as under Paired comparisons)."
)
CASCADE_HOWTO = (
    "The ReID model decides the pairs it is sure about; pairs whose ReID score lies in an "
    "uncertainty band around its threshold go to the LVLM. Wider bands send more pairs to the "
    "LVLM: usually better accuracy, always higher cost. The band is sized on calibration half A "
    "and the curve is measured on held-out half B; the operating point is the one chosen by the "
    "rule shown (e.g. best F1 within a budget)."
)
RERANK_HOWTO = (
    "For each selected query the ReID model's top-k gallery list is re-ordered with LVLM "
    "judgements; items beyond the top k keep their place. Rank-k and mAP are computed before and "
    "after on the same queries with the standard protocol; 'change' is after minus before, with "
    "a 95% interval from a paired bootstrap over query identities and, for rank-1, McNemar's "
    "exact test on the queries whose rank-1 hit changed."
)


HELD_OUT_HOWTO = (
    "Every system on the same held-out pairs (half B, identity-disjoint from calibration "
    "half A), where fused and cascade systems are measured: the like-for-like comparison. "
    "Single systems decide at the threshold fitted on half A; coverage is over the held-out "
    "pairs. The summary table above is on all pairs and leaves fused systems out."
)


def extra_sections(metrics: Mapping[str, Any], colours: Mapping[str, str]) -> list[ExtraSection]:
    out = []
    held = as_map(metrics.get("held_out"))
    if held.get("systems"):
        table = sections.summary_table(as_map(held["systems"]), colours)
        title = f"Every system on the {fmt.integer(held.get('n_pairs'))} held-out pairs"
        tables = [(title, table)]
        coin = coverage_aware_table(as_map(held["systems"]), colours, with_aurc=False)
        if coin is not None:
            tables.append(("The same pairs, abstentions counted as coin flips", coin))
        block = ExtraBlock(title, None, [], tables=tables)
        out.append(ExtraSection("held-out", "Held-out pairs", HELD_OUT_HOWTO, [block]))
    fusion = metrics.get("fusion") or {}
    skipped = metrics.get("fusion_skipped") or []
    if fusion or skipped:
        blocks = [_fusion_block(n, f, colours) for n, f in fusion.items() if isinstance(f, Mapping)]
        notes = [
            f"{s.get('name')}: skipped ({s.get('reason')})" if isinstance(s, Mapping) else str(s)
            for s in skipped
        ]
        out.append(ExtraSection("fusion", "Fusion", FUSION_HOWTO, blocks, notes))
    cascade = metrics.get("cascade") or {}
    if cascade:
        blocks = [
            _cascade_block(n, c, colours) for n, c in cascade.items() if isinstance(c, Mapping)
        ]
        out.append(ExtraSection("cascade", "Cascade", CASCADE_HOWTO, blocks))
    rerank = metrics.get("rerank")
    if isinstance(rerank, Mapping) and rerank:
        out.append(
            ExtraSection("rerank", "Re-ranking", RERANK_HOWTO, [_rerank_block(rerank, colours)])
        )
    out.extend(task_sections(metrics, colours))  # [[tasks]] (docs/tasks.md)
    out.extend(sensitivity_sections(metrics, colours))
    out.extend(attribute_sections(metrics, colours))
    return out
