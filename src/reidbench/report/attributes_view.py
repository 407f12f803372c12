"""The report's "Attributes" section: an LVLM's perception against ground truth.

Drawn from `metrics.json` `systems[NAME].attributes` alone (metrics/run/attributes.py;
docs/tasks.md, Attributes): per-attribute accuracy with intervals over identities,
the colour confusion, and which misperceptions go with catastrophic answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reidbench.report import format as fmt
from reidbench.report.model import (
    Cell,
    ExtraBlock,
    ExtraSection,
    Row,
    Table,
    as_map,
    collect_notes,
    count,
    number,
)

HOWTO = (
    "Systems whose prompt asks for attribute values per image (prompt 'attributes') are "
    "scored here against the dataset's per-identity ground truth: the synthetic generator's "
    "own attributes, or Market-1501_Attribute (Lin et al.) when the file is given. One "
    "observation is one attribute of one image of a primary answer. Accuracy counts "
    "'unclear' and unreadable values as not correct (coverage says how many were answered); "
    "'accuracy answered' is over answered values only; the majority rate is what always "
    "answering the commonest true value would score. Intervals resample people, not images. "
    "The last table asks whether pairs with a misperceived attribute are more often "
    "catastrophic answers (refusal, safety block, unreadable, or confident and wrong): "
    "Fisher's exact test, which treats pairs as independent, so read it as descriptive."
)


def _accuracy_table(per: Mapping[str, Any]) -> Table:
    cols = [
        ("N", "annotated images of primary answers (one per attribute per image)"),
        ("Coverage", "share of those the model answered (not 'unclear' or unreadable)"),
        ("Accuracy", "correct / N, with its 95% interval over identities"),
        ("Accuracy answered", "correct / answered"),
        ("Majority rate", "accuracy of always answering the commonest true value"),
    ]
    rows = []
    for attr, b in per.items():
        if not isinstance(b, Mapping):
            continue
        cells = [
            count(b.get("n"), sub=f"{fmt.integer(b.get('n_identities'))} people"),
            number(b.get("coverage")),
            number(b.get("accuracy"), ci=b.get("ci")),
            number(b.get("accuracy_answered"), "nothing answered"),
            number(b.get("majority_rate")),
        ]
        rows.append(Row(attr.replace("_", " "), cells))
    return collect_notes(Table(cols, rows, head_label="Attribute"))


def _catastrophic_table(block: Mapping[str, Any]) -> Table:
    cols = [
        ("Catastrophic pairs", "pairs with a catastrophic answer where the attribute was read"),
        ("Misperceived there", "share of those with this attribute misperceived"),
        ("Other pairs", "the remaining pairs where the attribute was read"),
        ("Misperceived there ", "share of the other pairs with this attribute misperceived"),
        ("Odds ratio", "Fisher's exact test: odds of misperception, catastrophic vs other"),
        ("p", "two-sided Fisher exact p-value (descriptive: pairs share people)"),
    ]
    rows = []
    items = [("any attribute", block.get("any"))]
    items += list(as_map(block.get("by_attribute")).items())
    for name, b in items:
        if not isinstance(b, Mapping):
            continue
        p = b.get("p_value")
        cells = [
            count(b.get("catastrophic")),
            number(b.get("rate_catastrophic"), "no catastrophic pair"),
            count(b.get("other")),
            number(b.get("rate_other"), "no other pair"),
            number(b.get("odds_ratio"), "undefined (a zero cell)", digits=2),
            Cell(fmt.pvalue(p)) if fmt.is_num(p) else number(None, "no test"),
        ]
        rows.append(Row(str(name).replace("_", " "), cells))
    return collect_notes(Table(cols, rows, head_label="Attribute"))


def _confusion_table(c: Mapping[str, Any]) -> Table:
    answers = [str(a) for a in c.get("answer") or []]
    cols = [(a, f"answered '{a}'") for a in answers]
    rows = []
    for truth, counts in zip(c.get("truth") or [], c.get("counts") or [], strict=False):
        total = sum(int(x) for x in counts) or 1
        cells = []
        for a, x in zip(answers, counts, strict=False):
            cell = count(x)
            if x and a == truth:
                cell.style = "font-weight:600"
            elif x:
                cell.style = f"background:rgba(214,39,40,{0.08 + 0.5 * int(x) / total:.2f})"
            cells.append(cell)
        rows.append(Row(str(truth), cells))
    return Table(cols, rows, head_label="True colour")


def _block(name: str, a: Mapping[str, Any], colour: str | None) -> ExtraBlock:
    gt = as_map(a.get("ground_truth"))
    agree = as_map(a.get("agreement_score"))
    facts = [
        ("Ground truth", f"{gt.get('source')} ({fmt.integer(gt.get('identities'))} people)")
        if gt
        else ("Ground truth", str(a.get("note") or "none")),
        ("Answers with attributes", fmt.integer(a.get("answers_with_attributes"))),
        (
            "Attribute agreement as a score",
            f"AUC {fmt.num(agree.get('auc'))} on {fmt.integer(agree.get('n_pairs'))} pairs "
            f"(the stated decision: {fmt.num(agree.get('auc_stated_on_same_pairs'))})",
        ),
    ]
    block = ExtraBlock(name, colour, facts)
    per = as_map(a.get("per_attribute"))
    if per:
        block.tables.append(("Per-attribute accuracy", _accuracy_table(per)))
    for attr, c in as_map(a.get("colour_confusion")).items():
        if isinstance(c, Mapping) and c.get("counts"):
            title = f"Confusion of {attr.replace('_', ' ')}s (rows: truth; columns: answer)"
            block.tables.append((title, _confusion_table(c)))
    cat = as_map(a.get("with_catastrophic"))
    if cat:
        block.tables.append(
            ("Misperceived attributes and catastrophic answers", _catastrophic_table(cat))
        )
    return block


def attribute_sections(
    metrics: Mapping[str, Any], colours: Mapping[str, str]
) -> list[ExtraSection]:
    """The "Attributes" section, or nothing when no system answered with attributes."""
    systems = as_map(metrics.get("systems"))
    blocks = [
        _block(name, as_map(b.get("attributes")), colours.get(name))
        for name, b in systems.items()
        if isinstance(b, Mapping) and as_map(b.get("attributes"))
    ]
    if not blocks:
        return []
    return [ExtraSection("attributes", "Attributes", HOWTO, blocks)]
