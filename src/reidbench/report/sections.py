"""The report's tables, built from metrics.json blocks (one function per table).

Each table says what its columns mean (tooltips) and lists, under it, why any
value is missing, using the reasons metrics.json records.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from reidbench.metrics import specs
from reidbench.report import format as fmt
from reidbench.report.coverage_view import coverage_sub
from reidbench.report.model import (
    Cell,
    Row,
    Table,
    collect_notes,
    count,
    formatted,
    number,
    reason,
    text,
)
from reidbench.report.protocol import THRESHOLD_SOURCES, type_label

Systems = Mapping[str, Mapping[str, Any]]
Colours = Mapping[str, str]


class _SpecField(Mapping[str, str]):
    """A live key -> label (or help) view of the spec table, so registered metrics show."""

    def __init__(self, attr: str) -> None:
        self.attr = attr

    def __getitem__(self, key: str) -> str:
        try:
            return str(getattr(specs.spec(key), self.attr))
        except KeyError:
            raise KeyError(key) from None

    def __iter__(self) -> Iterator[str]:
        return iter(specs.keys())

    def __len__(self) -> int:
        return len(specs.METRIC_SPECS)


# Labels and tooltips of the headline metrics come from reidbench.metrics.specs; these
# names stay for callers that read them (a registered metric appears in both).
HEADLINE = specs.METRIC_SPECS
LABELS = _SpecField("label")
HELP = _SpecField("tooltip")


def _metric(block: Mapping[str, Any], key: str, ci_block: Mapping[str, Any] | None) -> Cell:
    ci = ((ci_block or {}).get("intervals") or {}).get(key) if ci_block else None
    digits = next((s.digits for s in specs.METRIC_SPECS if s.key == key), 3)
    return number(block.get(key), reason(block, key), digits=digits, ci=ci)


def _row_sub(block: Mapping[str, Any]) -> str:
    sub = type_label(block.get("type"))
    if block.get("evaluated_on"):
        sub += f" · evaluated on {block['evaluated_on']}"
    return sub


def summary_table(systems: Systems, colours: Colours) -> Table:
    cols = [
        ("Coverage", "answered pairs / all pairs; failures (refusals, errors) lower it"),
        *[(LABELS[k], HELP[k]) for k in specs.keys(summary=True)],
        ("Catastrophic", "refusals + safety blocks + parse errors + confident wrong answers"),
        ("USD / 1k pairs", "what the answers cost per 1,000 distinct pairs"),
    ]
    rows = []
    for name, b in systems.items():
        faw = b.get("failures_as_wrong") or {}
        cov_ci = ((faw.get("ci") or {}).get("intervals") or {}).get("coverage")
        coverage = number(b.get("coverage"), reason(b, "coverage"), ci=cov_ci)
        coverage.sub = f"{fmt.integer(b.get('n_answered'))} / {fmt.integer(b.get('n_pairs'))}"
        cells = [coverage]
        cells += [_metric(b, k, b.get("ci")) for k in specs.keys(summary=True)]
        for c in cells[1:]:  # answered-only values: their coverage next to each
            c.sub = c.sub or coverage_sub(b)
        f = b.get("failures") or {}
        cat = count(f.get("catastrophic"), reason(f, "catastrophic"))
        if fmt.is_num(f.get("catastrophic_rate")):
            cat.sub = fmt.pct(f["catastrophic_rate"])
        if f and not f.get("confident_counted", True):
            cat.sub = (cat.sub + " · " if cat.sub else "") + "no conf. check"
        cells.append(cat)
        costs = b.get("costs") or {}
        per_k = costs.get("usd_per_1000_pairs")
        local = b.get("type") == "reid" and per_k == 0
        cells.append(
            formatted(per_k, fmt.usd, reason(costs, "usd_per_1000_pairs"), "local" if local else "")
        )
        rows.append(Row(name, cells, colours.get(name), _row_sub(b)))
    return collect_notes(Table(cols, rows))


def threshold_table(systems: Systems, colours: Colours) -> Table:
    cols = [
        ("Threshold", "decision threshold on the system's own scale ('same' when score >= it)"),
        ("Normalised", "threshold / scale"),
        ("Source", "recorded in the run, LVLM default, or best F1 on calibration half A"),
        ("Calibration", "pairs of half A used to choose it, and their F1"),
        *[(LABELS[k], HELP[k]) for k in specs.keys("threshold", summary=False)],
        ("EER threshold", "the threshold at the equal error rate"),
        ("TAR@FAR 1% thr.", "the highest threshold reaching TAR@FAR 1%"),
    ]
    rows = []
    for name, b in systems.items():
        scale = b.get("scale")
        cal = b.get("threshold_calibration") or {}
        cal_cell = count(cal.get("calibration_pairs"), "not calibrated: threshold recorded")
        if fmt.is_num(cal.get("calibration_f1")):
            cal_cell.sub = f"F1 {fmt.num(cal['calibration_f1'])}"
        rows.append(
            Row(
                name,
                [
                    formatted(b.get("threshold"), lambda v, s=scale: fmt.threshold(v, s)),
                    number(b.get("threshold_normalised"), digits=4),
                    text(THRESHOLD_SOURCES.get(src := str(b.get("threshold_source")), src)),
                    cal_cell,
                    *[_metric(b, k, b.get("ci")) for k in specs.keys("threshold", summary=False)],
                    formatted(
                        b.get("eer_threshold"),
                        lambda v, s=scale: fmt.threshold(v, s),
                        reason(b, "eer_threshold") or reason(b, "eer"),
                    ),
                    formatted(
                        b.get(f"{specs.TAR_KEY}_threshold"),
                        lambda v, s=scale: fmt.threshold(v, s),
                        reason(b, f"{specs.TAR_KEY}_threshold")
                        or "only 'accept nothing' keeps FAR <= 1%",
                    ),
                ],
                colours.get(name),
                _row_sub(b),
            )
        )
    return collect_notes(Table(cols, rows))


def tuned_halves_table(systems: Systems, colours: Colours) -> Table:
    keys = specs.keys()
    cols = [
        ("Threshold", "tuned by best F1 on the other half"),
        ("Tuned / measured", "pairs used to tune, pairs measured"),
        *[(LABELS[k], HELP[k]) for k in keys],
    ]
    rows, skipped = [], []
    for name, b in systems.items():
        th = b.get("tuned_halves")
        if not isinstance(th, Mapping):
            continue
        if th.get("note"):  # e.g. a fused system: already measured on held-out pairs only
            skipped.append(f"{name}: {th['note']}")
            continue
        scale = b.get("scale")
        for key, label in (("a_to_b", "A → B"), ("b_to_a", "B → A"), ("mean", "mean")):
            d = th.get(key)
            if not isinstance(d, Mapping):
                continue
            thr = formatted(d.get("threshold"), lambda v, s=scale: fmt.threshold(v, s))
            sizes = (
                Cell(f"{fmt.integer(d.get('n_tune'))} / {fmt.integer(d.get('n'))}")
                if key != "mean"
                else Cell("")
            )
            if key == "mean":
                thr = Cell("")
            cells = [thr, sizes] + [number(d.get(k), reason(d, k, th)) for k in keys]
            rows.append(Row(name, cells, colours.get(name), label))
    table = collect_notes(Table(cols, rows))
    for note in skipped:
        table.add_note(note)
    return table


def failures_as_wrong_table(systems: Systems, colours: Colours) -> Table:
    keys = specs.keys(summary=True)
    cols = [
        ("Coverage", "answered / all pairs"),
        ("Failed", "pairs with no usable answer, counted as wrong"),
        *[(LABELS[k], HELP[k]) for k in keys],
    ]
    rows = []
    for name, b in systems.items():
        d = b.get("failures_as_wrong")
        if not isinstance(d, Mapping):
            continue
        ci = d.get("ci") or {}
        cells = [
            number(d.get("coverage"), ci=(ci.get("intervals") or {}).get("coverage")),
            count(d.get("n_failed"), sub=f"of {fmt.integer(d.get('n'))}"),
        ] + [_metric(d, k, ci) for k in keys]
        rows.append(Row(name, cells, colours.get(name), _row_sub(b)))
    return collect_notes(Table(cols, rows))


def distribution_table(systems: Systems, colours: Colours) -> Table:
    cols = [
        ("Pairs", "scored pairs with this label"),
        ("Mean", "mean score"),
        ("Std", "population standard deviation"),
        ("Median", ""),
        ("Min", ""),
        ("Max", ""),
    ]
    rows = []
    for name, b in systems.items():
        d = b.get("distributions")
        if not isinstance(d, Mapping):
            continue
        digits = 4 if fmt.is_num(b.get("scale")) and b["scale"] <= 1 else 1
        for label in ("same", "different"):
            s = d.get(label) or {}
            cells = [count(s.get("n"))] + [
                number(s.get(k), "no scored pair with this label", digits)
                for k in ("mean", "std", "median", "min", "max")
            ]
            sub = "same person" if label == "same" else "different people"
            rows.append(Row(name, cells, colours.get(name), sub))
    return collect_notes(Table(cols, rows))


def calibration_table(systems: Systems, colours: Colours) -> Table:
    cols = [
        ("Brier", "mean squared error of score/scale as a probability (lower is better)"),
        ("ECE", "expected calibration error over 10 equal-width bins (lower is better)"),
        ("Bins used", "non-empty bins of the 10"),
    ]
    rows = []
    for name, b in systems.items():
        cal = (b.get("curves") or {}).get("calibration")
        if not isinstance(cal, Mapping):
            why = reason(b.get("curves"), "calibration") or "no scored pairs"
            cells = [Cell(fmt.DASH, note=why), Cell(fmt.DASH, note=why), Cell(fmt.DASH)]
        else:
            cells = [
                number(cal.get("brier"), reason(cal, "brier")),
                number(cal.get("ece"), reason(cal, "ece")),
                count(len(cal.get("bins") or [])),
            ]
        rows.append(Row(name, cells, colours.get(name), _row_sub(b)))
    return collect_notes(Table(cols, rows))


def _bootstrap_p(a: Mapping[str, Any], why: str) -> Cell:
    """A bootstrap p of 0 only means "below 1 / resamples"; say so."""
    p, n = a.get("p_value"), a.get("resamples")
    if fmt.is_num(p) and p == 0 and fmt.is_num(n) and n > 0:
        return Cell(f"< {fmt.pvalue(1 / n)}")
    return formatted(p, fmt.pvalue, why)


def comparison_table(comparisons: list[Mapping[str, Any]], colours: Colours) -> Table:
    cols = [
        ("Pairs", "pairs both systems answered (McNemar)"),
        ("Both right", ""),
        ("Only A right", "discordant pairs A got right (b)"),
        ("Only B right", "discordant pairs B got right (c)"),
        ("Both wrong", ""),
        ("McNemar p", "exact two-sided binomial test on the discordant pairs"),
        ("AUC A − B", "observed difference on pairs both scored, paired-bootstrap 95% CI"),
        ("Bootstrap p", "2 x min(P(diff <= 0), P(diff >= 0)) over resamples: a rough guide"),
    ]
    rows = []
    for c in comparisons:
        m = c.get("mcnemar") or {}
        a = c.get("auc_diff") or {}
        why_m = reason(c, "mcnemar") or "not computed"
        why_a = reason(c, "auc_diff", a) or "not computed"
        diff = number(a.get("diff"), why_a, ci=a.get("ci"))
        if fmt.is_num(a.get("auc_a")) and fmt.is_num(a.get("auc_b")):
            diff.sub = (
                f"{fmt.num(a['auc_a'])} vs {fmt.num(a['auc_b'])} on {fmt.integer(a.get('n'))}"
            )
        cells = [
            count(m.get("n"), why_m),
            count(m.get("both_correct"), why_m),
            count(m.get("b"), why_m),
            count(m.get("c"), why_m),
            count(m.get("both_wrong"), why_m),
            formatted(m.get("p_value"), fmt.pvalue, why_m),
            diff,
            _bootstrap_p(a, why_a),
        ]
        head = f"{c.get('a')} vs {c.get('b')}"
        rows.append(Row(head, cells, colours.get(str(c.get("a"))), "A = first, B = second"))
    return collect_notes(Table(cols, rows, head_label="Comparison"))


def failure_ranking_table(
    ranking: list[Mapping[str, Any]], systems: Systems, colours: Colours
) -> Table:
    cols = [
        ("Rank", "fewest catastrophic answers first; ties share a rank"),
        ("Catastrophic", "refusals + safety blocks + parse errors + confident wrong answers"),
        ("Asked", "pairs asked (not budget-stopped, not missing)"),
        ("Refusal", ""),
        ("Safety block", ""),
        ("Parse error", "an answer that could not be read as a score or decision"),
        ("Confident FA", "score >= 90% of scale on a different-person pair (LVLMs only)"),
        ("Confident FR", "score <= 10% of scale on a same-person pair (LVLMs only)"),
        ("API error", "not ranked: describes the run, not the model"),
        ("Budget stop", "pairs not asked because the spending cap was reached (not ranked)"),
        ("Missing", "pairs with no row at all (not ranked)"),
        (
            "All calls",
            "refusals + safety blocks + parse errors over every call made, the (b, a) and "
            "repeat calls of the consistency checks included",
        ),
    ]
    rows = []
    for r in ranking:
        name = str(r.get("system"))
        f = (systems.get(name) or {}).get("failures") or {}
        not_counted = "" if r.get("confident_counted", True) else "not counted for embedders"
        cat = count(r.get("catastrophic"))
        cat.sub = (
            fmt.pct(r.get("catastrophic_rate")) if fmt.is_num(r.get("catastrophic_rate")) else ""
        )
        cells = [
            count(r.get("rank")),
            cat,
            count(r.get("n_asked")),
            count(r.get("refusal")),
            count(r.get("safety_block")),
            count(r.get("parse_error")),
            count(
                r.get("confident_false_accept"), reason(f, "confident_false_accept") or not_counted
            ),
            count(
                r.get("confident_false_reject"), reason(f, "confident_false_reject") or not_counted
            ),
            count(f.get("api_error")),
            count(f.get("budget_exceeded")),
            count(f.get("missing")),
            _all_calls(f.get("all_calls")),
        ]
        sub = _row_sub(systems.get(name) or {})
        if r.get("budget_limited"):
            sub += " · budget-limited"
        rows.append(Row(name, cells, colours.get(name), sub))
    return collect_notes(Table(cols, rows))


def _all_calls(by_status: Any) -> Cell:
    if not isinstance(by_status, Mapping):
        return count(None, "not recorded")
    failed = sum(int(by_status.get(k, 0) or 0) for k in ("refusal", "safety_block", "parse_error"))
    total = sum(int(v or 0) for v in by_status.values())
    return count(failed, sub=f"of {fmt.integer(total)} calls")


def symmetry_table(systems: Systems, colours: Colours) -> tuple[Table, list[str]]:
    cols = [
        ("Pairs", "pairs answered in both orders (a, b) and (b, a)"),
        ("Disagreements", "pairs whose two decisions differ"),
        ("Rate", "disagreements / pairs"),
        ("Scored", "pairs with a score in both orders"),
        ("Mean |gap|", "mean absolute score difference between the two orders"),
        ("Median |gap|", ""),
        ("Max |gap|", ""),
    ]
    rows, skipped = [], []
    for name, b in systems.items():
        c = b.get("consistency") or {}
        s = c.get("symmetry")
        if not isinstance(s, Mapping):
            skipped.append(f"{name}: {reason(c, 'symmetry') or 'not measured'}")
            continue
        digits = 4 if fmt.is_num(b.get("scale")) and b["scale"] <= 1 else 2
        gap_why = reason(s, "mean_abs_score_gap") or "no pair scored in both orders"
        cells = [
            count(s.get("n_pairs")),
            count(s.get("disagreements")),
            formatted(s.get("disagreement_rate"), fmt.pct, reason(s, "disagreement_rate")),
            count(s.get("n_scored")),
            number(s.get("mean_abs_score_gap"), gap_why, digits),
            number(s.get("median_abs_score_gap"), gap_why, digits),
            number(s.get("max_abs_score_gap"), gap_why, digits),
        ]
        rows.append(Row(name, cells, colours.get(name), _row_sub(b)))
    return collect_notes(Table(cols, rows)), skipped


def repeat_table(systems: Systems, colours: Colours) -> tuple[Table, list[str]]:
    cols = [
        ("Pairs", "pairs answered at least twice in order (a, b)"),
        ("Max repeats", ""),
        ("Agreement", "fraction of those pairs whose repeated decisions all agree"),
        ("Flipped", "pairs whose decision changed between repeats"),
        ("Mean std", "per-pair score standard deviation, averaged"),
        ("Mean range", "per-pair max − min score, averaged"),
        ("Max range", ""),
    ]
    rows, skipped = [], []
    for name, b in systems.items():
        c = b.get("consistency") or {}
        r = c.get("repeat_stability")
        if not isinstance(r, Mapping):
            skipped.append(f"{name}: {reason(c, 'repeat_stability') or 'not measured'}")
            continue
        digits = 4 if fmt.is_num(b.get("scale")) and b["scale"] <= 1 else 2
        why = reason(r, "mean_score_std") or "no pair scored at least twice"
        cells = [
            count(r.get("n_pairs")),
            count(r.get("max_repeats")),
            formatted(r.get("decision_agreement"), fmt.pct, reason(r, "decision_agreement")),
            count(r.get("flipped_pairs")),
            number(r.get("mean_score_std"), why, digits),
            number(r.get("mean_score_range"), why, digits),
            number(r.get("max_score_range"), why, digits),
        ]
        rows.append(Row(name, cells, colours.get(name), _row_sub(b)))
    return collect_notes(Table(cols, rows)), skipped


def transitivity_table(systems: Systems, colours: Colours) -> tuple[Table, list[str]]:
    cols = [
        ("Triplets", "image triplets (a, b, c) in the pair set"),
        ("Evaluated", "triplets whose three pairs were all decided"),
        ("Violations", "exactly two of the three pairs decided 'same' (impossible for identity)"),
        ("Rate", "violations / evaluated"),
        ("Strict", "the literal a=b, b=c, a≠c pattern"),
    ]
    rows, skipped = [], []
    for name, b in systems.items():
        c = b.get("consistency") or {}
        t = c.get("transitivity")
        if not isinstance(t, Mapping):
            skipped.append(f"{name}: {reason(c, 'transitivity') or 'not measured'}")
            continue
        cells = [
            count(t.get("n_triplets")),
            count(t.get("n_evaluated")),
            count(t.get("violations")),
            formatted(t.get("violation_rate"), fmt.pct, reason(t, "violation_rate")),
            count(t.get("strict_violations")),
        ]
        rows.append(Row(name, cells, colours.get(name), _row_sub(b)))
    return collect_notes(Table(cols, rows)), skipped


def _per_mtok(prices: Any) -> Cell:
    if not isinstance(prices, Mapping) or not fmt.is_num(prices.get("in_per_mtok")):
        return Cell(fmt.DASH, note="no price recorded")
    cell = Cell(f"${prices['in_per_mtok']:g} / ${prices.get('out_per_mtok', 0):g}")
    cell.sub = f"as of {prices['as_of']}" if prices.get("as_of") else "date not recorded"
    return cell


def cost_table(systems: Systems, colours: Colours) -> Table:
    cols = [
        ("Rows", "answers stored (all orders and repeats); of which from the response cache"),
        ("Calls", "API calls this run made (retries included, cached answers excluded)"),
        ("Tokens in", "over all answers"),
        ("Tokens out", "over all answers"),
        ("Paid this run", "USD for the calls this run made"),
        ("All answers", "USD the answers cost however obtained (cache keeps original cost)"),
        ("USD / 1k pairs", "all answers' cost per 1,000 distinct pairs"),
        ("Latency p50", "median seconds per answer (ok answers, cached included)"),
        ("Latency p95", ""),
        ("Price in / out", "USD per million input / output tokens, and the date of the price"),
    ]
    rows = []
    for name, b in systems.items():
        c = b.get("costs")
        if not isinstance(c, Mapping):
            continue
        run, ans = c.get("this_run") or {}, c.get("answers") or {}
        local = b.get("type") == "reid"
        lat_why = reason(c, "latency_p50_s") or "no latency recorded"
        rows_cell = count(c.get("rows"))
        if fmt.is_num(c.get("cached_rows")):
            rows_cell.sub = f"{fmt.integer(c['cached_rows'])} cached"
        if local:
            price = Cell("local", sub="no API")
        elif b.get("type") in ("fusion", "cascade"):
            price = Cell("from inputs", sub="see the systems it combines")
        else:
            price = _per_mtok((b.get("info") or {}).get("prices"))
        cells = [
            rows_cell,
            count(run.get("calls")),
            count(ans.get("tokens_in")),
            count(ans.get("tokens_out")),
            formatted(run.get("usd"), fmt.usd),
            formatted(ans.get("usd"), fmt.usd),
            formatted(c.get("usd_per_1000_pairs"), fmt.usd, reason(c, "usd_per_1000_pairs")),
            formatted(c.get("latency_p50_s"), fmt.seconds, lat_why),
            formatted(c.get("latency_p95_s"), fmt.seconds, reason(c, "latency_p95_s") or lat_why),
            price,
        ]
        rows.append(Row(name, cells, colours.get(name), _row_sub(b)))
    return collect_notes(Table(cols, rows))


def retrieval_table(retrieval: Mapping[str, Mapping[str, Any]], colours: Colours) -> Table:
    cols = [
        ("Rank-1", "fraction of queries whose first valid gallery match is correct"),
        ("Rank-5", ""),
        ("Rank-10", ""),
        ("mAP", "mean average precision over queries"),
        ("mINP", "mean inverse negative penalty (cost of finding the hardest match)"),
        ("Queries", ""),
        ("Gallery", ""),
    ]
    rows = []
    for name, r in retrieval.items():
        cells = [number(r.get(k)) for k in ("rank1", "rank5", "rank10", "mAP", "mINP")]
        cells += [count(r.get("num_query")), count(r.get("num_gallery"))]
        rows.append(Row(name, cells, colours.get(name)))
    return collect_notes(Table(cols, rows))
