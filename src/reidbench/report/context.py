"""Everything the report template shows, assembled from metrics.json and run.json.

`build_context` is the one place that reads the metrics; the template only lays
out what it is given. Model text (raw answers, errors, reasons) is passed
through untouched: escaping is the template's job (autoescape), so no value
here is ever marked safe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reidbench import __version__
from reidbench.records import MetricsRecord, RunManifest, manifest_from_dict, metrics_from_dict
from reidbench.report import coverage_view as cov
from reidbench.report import format as fmt
from reidbench.report import plots, protocol, sections
from reidbench.report.cmc_band import cmc_band_plot
from reidbench.report.extras import extra_sections
from reidbench.report.model import Cell, as_map
from reidbench.report.thumbnails import Thumbnails
from reidbench.report.views import build_views

CATEGORY_LABELS = {
    "refusal": "Refusals",
    "safety_block": "Safety blocks",
    "parse_error": "Parse errors",
    "api_error": "API errors",
    "budget_exceeded": "Not asked (budget)",
    "confident_false_accept": "Confident false accepts",
    "confident_false_reject": "Confident false rejects",
}
CATEGORY_ONE = {
    "refusal": "Refusal",
    "safety_block": "Safety block",
    "parse_error": "Parse error",
    "api_error": "API error",
    "budget_exceeded": "Not asked (budget)",
    "confident_false_accept": "Confident false accept",
    "confident_false_reject": "Confident false reject",
}


@dataclass
class ConfusionView:
    name: str
    colour: str
    sub: str
    cells: list[list[Cell]]  # rows: true different, true same; columns: decided different, same
    n: int


@dataclass
class ExampleView:
    category: str
    pair_id: Any
    label: str
    status: str
    score: str
    decision: str
    raw: str
    raw_truncated: bool
    error: str
    error_truncated: bool
    reasons: str
    path_a: str
    path_b: str
    img_a: str | None
    img_b: str | None


@dataclass
class GalleryView:
    name: str
    colour: str
    groups: list[tuple[str, list[ExampleView]]]


@dataclass
class TripletView:
    name: str
    colour: str
    examples: list[list[tuple[str, Any, bool | None]]]  # [(edge, pair id, decided same)]


def _confusion(name: str, b: Mapping[str, Any], colour: str) -> ConfusionView | None:
    c = b.get("confusion")
    if not isinstance(c, Mapping) or not isinstance(c.get("matrix"), list):
        return None
    m = c["matrix"]
    cells = []
    for true_idx, row in enumerate(m):
        total = sum(row) or 1
        out = []
        for dec_idx, n in enumerate(row):
            share = n / total
            correct = true_idx == dec_idx
            # Shade by row share: green where correct, red where wrong.
            rgb = "26, 127, 55" if correct else "207, 34, 46"
            out.append(
                Cell(
                    fmt.integer(n),
                    sub=fmt.pct(share),
                    style=f"background-color: rgba({rgb}, {0.08 + 0.5 * share:.3f})",
                )
            )
        cells.append(out)
    n = sum(sum(r) for r in m)
    return ConfusionView(name, colour, protocol.type_label(b.get("type")), cells, n)


def _score_text(ex: Mapping[str, Any], scale: Any) -> str:
    s = ex.get("score")
    if not fmt.is_num(s):
        return "no score"
    return f"{s:g} / {scale:g}" if fmt.is_num(scale) else f"{s:g}"


def _example(cat: str, ex: Mapping[str, Any], scale: Any, thumbs: Thumbnails) -> ExampleView:
    label = ex.get("label")
    return ExampleView(
        category=CATEGORY_ONE.get(cat, cat),
        pair_id=ex.get("pair_id"),
        label="same person" if label == 1 else "different people" if label == 0 else "unknown",
        status=str(ex.get("status") or ""),
        score=_score_text(ex, scale),
        decision=str(ex.get("decision") or "unknown"),
        raw=str(ex.get("raw") or ""),
        raw_truncated=bool(ex.get("raw_truncated")),
        error=str(ex.get("error") or ""),
        error_truncated=bool(ex.get("error_truncated")),
        reasons=str(ex.get("reasons") or ""),
        path_a=str(ex.get("path_a") or ""),
        path_b=str(ex.get("path_b") or ""),
        img_a=thumbs.get(ex.get("path_a")),
        img_b=thumbs.get(ex.get("path_b")),
    )


def _gallery(metrics: Mapping[str, Any], colours: Mapping[str, str], root: Path | None):
    thumbs = Thumbnails(root)
    views = []
    examples = (metrics.get("failures") or {}).get("examples") or {}
    for name, cats in examples.items():
        scale = ((metrics.get("systems") or {}).get(name) or {}).get("scale")
        groups = []
        for cat, items in (cats or {}).items():
            if items:
                groups.append(
                    (
                        CATEGORY_LABELS.get(cat, cat),
                        [_example(cat, e, scale, thumbs) for e in items],
                    )
                )
        if groups:
            views.append(GalleryView(name, colours.get(name, plots.INK), groups))
    return views


def _triplets(systems: Mapping[str, Any], colours: Mapping[str, str]) -> list[TripletView]:
    out = []
    for name, b in systems.items():
        t = (b.get("consistency") or {}).get("transitivity")
        exs = (t or {}).get("examples") if isinstance(t, Mapping) else None
        if not exs:
            continue
        views = []
        for ex in exs:
            ids, same = ex.get("pair_ids") or {}, ex.get("same") or {}
            views.append([(edge, ids.get(edge), same.get(edge)) for edge in ("ab", "bc", "ac")])
        out.append(TripletView(name, colours.get(name, plots.INK), views))
    return out


def _highlights(metrics: Mapping[str, Any]) -> list[str]:
    systems = metrics.get("systems") or {}
    out = []
    # Systems measured on a subset (fused: held-out half only) are not ranked against the
    # others here: their AUC is on different pairs. The fusion section compares them fairly.
    # Ranked by the coverage-aware AUC (abstentions as coin flips): refusing the hard pairs
    # cannot make a system "best" (issue #9 item 3; report/coverage_view.py).
    ranked = sorted(
        (
            (n, b, auc, ci)
            for n, b in systems.items()
            if not b.get("evaluated_on")
            for auc, ci, _ in [cov.ranking_auc(b)]
            if auc is not None
        ),
        key=lambda x: -x[2],
    )
    if ranked:
        best, b, auc, ci = ranked[0]
        line = (
            f"Highest AUC with abstentions counted as coin flips: {best}, "
            f"{fmt.with_ci(auc, ci)} (coverage {fmt.pct(b.get('coverage'))})"
        )
        if len(ranked) > 1:
            second = ranked[1][0]
            for c in metrics.get("comparisons") or []:
                a = as_map(as_map(c.get("coverage_aware")).get("auc"))
                if {c.get("a"), c.get("b")} != {best, second} or not fmt.is_num(a.get("diff")):
                    continue
                sign = 1 if c.get("a") == best else -1
                ci_d = a.get("ci") or {}
                lo, hi = ci_d.get("low"), ci_d.get("high")
                if fmt.is_num(lo) and fmt.is_num(hi):
                    lo, hi = sorted((sign * lo, sign * hi))
                    verdict = "excludes" if lo > 0 or hi < 0 else "includes"
                    n_c = as_map(c.get("coverage_aware")).get("n")
                    line += (
                        f". On the {fmt.integer(n_c)} pairs both were meant to answer, AUC of "
                        f"{best} minus {second}: {sign * a['diff']:+.3f} [{lo:+.3f}, {hi:+.3f}]; "
                        f"the interval {verdict} 0"
                    )
        out.append(line + ".")
    for name, f in as_map(metrics.get("fusion")).items():
        vs = as_map(as_map(f).get("vs_best"))
        d = as_map(vs.get("auc_diff"))
        pairs_text = "held-out pairs both scored"
        coin = as_map(vs.get("coverage_aware"))
        if fmt.is_num(as_map(coin.get("auc")).get("diff")):  # abstentions as coin flips
            d = {**as_map(coin.get("auc")), "n": coin.get("n")}
            pairs_text = "held-out pairs, abstentions counted as coin flips"
        ci_d = as_map(d.get("ci"))
        if fmt.is_num(d.get("diff")) and fmt.is_num(ci_d.get("low")):
            verdict = "excludes" if ci_d["low"] > 0 or ci_d["high"] < 0 else "includes"
            out.append(
                f"Fusion {name} against its best input {vs.get('b')} on the "
                f"{fmt.integer(d.get('n'))} {pairs_text}: AUC difference "
                f"{d['diff']:+.3f} [{ci_d['low']:+.3f}, {ci_d['high']:+.3f}]; the interval "
                f"{verdict} 0."
            )
    out.extend(f"Warning: {w}" for w in metrics.get("warnings") or [])
    for s in metrics.get("fusion_skipped") or []:
        if isinstance(s, Mapping):
            out.append(f"Fused system {s.get('name')} is not reported: {s.get('reason')}.")
    partial = [
        (n, b) for n, b in systems.items() if fmt.is_num(b.get("coverage")) and b["coverage"] < 1
    ]
    for name, b in partial:
        f = b.get("failures") or {}
        parts = [
            f"{f[k]} {k.replace('_', ' ')}"
            for k in (
                "refusal",
                "safety_block",
                "parse_error",
                "api_error",
                "budget_exceeded",
                "missing",
            )
            if fmt.is_num(f.get(k)) and f[k]
        ]
        why = f" ({', '.join(parts)})" if parts else ""
        out.append(f"{name} answered {fmt.pct(b['coverage'])} of the pairs{why}.")
    worst = [
        r for r in (metrics.get("failures") or {}).get("ranking") or [] if r.get("catastrophic")
    ]
    if worst:
        r = max(worst, key=lambda r: r.get("catastrophic_rate") or 0)
        out.append(
            f"Most catastrophic answers: {r.get('system')}, {fmt.integer(r.get('catastrophic'))} "
            f"({fmt.pct(r.get('catastrophic_rate'))} of pairs asked)."
        )
    paid = sum(
        ((b.get("costs") or {}).get("this_run") or {}).get("usd") or 0 for b in systems.values()
    )
    total = sum(
        ((b.get("costs") or {}).get("answers") or {}).get("usd") or 0 for b in systems.values()
    )
    if total:
        out.append(f"This run paid {fmt.usd(paid)}; all answers together cost {fmt.usd(total)}.")
    if any(str(b.get("threshold_source", "")).startswith("crossfit") for b in systems.values()):
        out.append(
            "Decision thresholds are cross-fitted over identity-disjoint halves: every pair is "
            "decided by a threshold fitted on the other half."
        )
    return out


def _dataset_root(metrics: MetricsRecord, manifest: RunManifest | None) -> Path | None:
    root = metrics.run.dataset.get("root") or (manifest.dataset.get("root") if manifest else None)
    return Path(root) if root else None


def _config_prompts(manifest: RunManifest | None) -> dict[str, str]:
    systems = (manifest.config.extra("systems") if manifest else None) or []
    return {
        str(s.get("name")): str(s.get("prompt"))
        for s in systems
        if isinstance(s, Mapping) and s.get("prompt")
    }


def build_context(
    metrics: Mapping[str, Any] | MetricsRecord,
    manifest: Mapping[str, Any] | RunManifest | None,
    *,
    generated: str,
) -> dict[str, Any]:
    """The template's input: tables, figures, protocol facts and gallery, all precomputed."""
    record = metrics_from_dict(metrics)  # typed top level (reidbench.records)
    if isinstance(manifest, Mapping):
        manifest = manifest_from_dict(dict(manifest)) if manifest else None
    metrics = record.to_dict()  # the open blocks below are read as plain mappings
    run = metrics.get("run") or {}  # protocol facts read it as a mapping
    systems: dict[str, Mapping[str, Any]] = dict(record.systems)
    colours = plots.system_colors(list(systems))
    pairs = record.run.pairs
    n_same, n_pairs = pairs.n_same, pairs.n_pairs
    prevalence = n_same / n_pairs if n_same is not None and n_pairs else None

    config_prompts = _config_prompts(manifest)
    cards = []
    for name, b in systems.items():
        info = b.get("info") or {}
        prompt = (
            protocol.prompt_text(info, config_prompts.get(name)) if info.get("prompt_id") else None
        )
        cards.append(protocol.system_card(name, b, colours[name], prompt))

    retrieval = {
        n: b["retrieval"] for n, b in systems.items() if isinstance(b.get("retrieval"), Mapping)
    }
    other = metrics.get("retrieval_other") or {}
    retrieval_other = {n: r for n, r in other.items() if isinstance(r, Mapping) and r}
    sym, sym_skipped = sections.symmetry_table(systems, colours)
    rep, rep_skipped = sections.repeat_table(systems, colours)
    tra, tra_skipped = sections.transitivity_table(systems, colours)
    confusions = [c for n, b in systems.items() if (c := _confusion(n, b, colours[n]))]
    ds = record.run.dataset

    return {
        "title": f"reidbench report: {record.run.name or 'run'}",
        "run_name": record.run.name or "run",
        "dataset_name": ds.get("dataset", "dataset"),
        "synthetic": bool(record.run.synthetic),
        "generated": generated,
        "report_version": __version__,
        "metrics_version": record.reidbench_version,
        "run_version": record.run.run_reidbench_version,
        "run_created": record.run.created,
        "metrics_format": record.format,
        "n_pairs": fmt.integer(n_pairs),
        "n_same": fmt.integer(n_same),
        "n_different": fmt.integer(pairs.n_different),
        "split": pairs.meta.get("split") or fmt.DASH,
        "seed": pairs.meta.get("seed"),
        "content_hash": pairs.meta.get("content_hash") or fmt.DASH,
        "bootstrap": record.run.protocol.get("bootstrap") or {},
        "systems": [
            (n, colours[n], protocol.type_label(b.get("type"))) for n, b in systems.items()
        ],
        "highlights": _highlights(metrics),
        "subset_systems": [n for n, b in systems.items() if b.get("evaluated_on")],
        "summary": sections.summary_table(
            {n: b for n, b in systems.items() if not b.get("evaluated_on")}
            if record.held_out
            else systems,
            colours,
        ),
        "dataset_facts": protocol.dataset_facts(run),
        "pair_facts": protocol.pair_facts(run),
        "camera_balance": protocol.camera_balance(run),
        "rule_facts": protocol.rule_facts(run),
        "cards": cards,
        "roc": plots.roc_plot(systems, colours),
        "pr": plots.pr_plot(systems, colours, prevalence),
        "calibration_plot": plots.calibration_plot(systems, colours),
        "calibration": sections.calibration_table(systems, colours),
        "histograms": plots.histogram_plots(systems, colours),
        "distributions": sections.distribution_table(systems, colours),
        "confusions": confusions,
        "thresholds": sections.threshold_table(systems, colours),
        "tuned": sections.tuned_halves_table(systems, colours),
        "faw": sections.failures_as_wrong_table(systems, colours),
        "coverage_aware": cov.coverage_aware_table(systems, colours),
        "coverage_comparisons": cov.comparison_table(metrics.get("comparisons") or [], colours),
        "risk_coverage": cov.risk_coverage_plot(systems, colours),
        "comparisons": sections.comparison_table(metrics.get("comparisons") or [], colours),
        "ranking": sections.failure_ranking_table(
            record.failures.get("ranking") or [], systems, colours
        ),
        "gallery": _gallery(metrics, colours, _dataset_root(record, manifest)),
        "symmetry": sym,
        "symmetry_skipped": sym_skipped,
        "repeats": rep,
        "repeats_skipped": rep_skipped,
        "transitivity": tra,
        "transitivity_skipped": tra_skipped,
        "triplets": _triplets(systems, colours),
        "costs": sections.cost_table(systems, colours),
        "retrieval": sections.retrieval_table(retrieval, colours) if retrieval else None,
        "retrieval_other": (
            sections.retrieval_table(retrieval_other, colours) if retrieval_other else None
        ),
        "cmc": cmc_band_plot({**retrieval, **retrieval_other}, colours)
        or plots.cmc_plot({**retrieval, **retrieval_other}, colours),
        "views": build_views(metrics, colours, _dataset_root(record, manifest)),
        "extras": extra_sections(metrics, colours),
    }
