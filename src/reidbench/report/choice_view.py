"""The report's "Multiple choice" section, from metrics.json `tasks.<name>` (kind "choice").

Three tables: accuracy per system (with its identity-clustered interval, chance, the
statuses that count as wrong and the position-bias test), accuracy per true slot with how
often each slot was named, and paired McNemar tests on the identical items.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reidbench.report import format as fmt
from reidbench.report.model import (
    Cell,
    Row,
    Table,
    as_map,
    collect_notes,
    count,
    formatted,
    number,
    to_tree,
)

CHOICE_HOWTO = (
    "Each item shows a query crop and N candidate crops, exactly one of which is the same "
    "person (another camera); a system names one candidate (MMReID-Bench / VP-ReID protocol, "
    "arXiv 2508.06908). ReID models name the candidate most similar to the query; LVLMs are "
    "asked with the task's prompt. Refusals, unparseable answers and API errors count as "
    "wrong. The true slot is balanced over the slots, so a system without a position "
    "preference names every slot about equally often: the position-bias test is a "
    "chi-square of the slots named against uniform. Intervals resample query identities; "
    "systems are compared on the identical items with McNemar's exact test."
)
WRONG_STATUSES = ("refusal", "safety_block", "parse_error", "api_error", "budget_exceeded")


def _accuracy_table(systems: Mapping[str, Any], colours: Mapping[str, str]) -> Table:
    cols = [
        ("Items", "items asked (first repeat)"),
        ("Accuracy", "share of items where the true candidate was named; 95% interval"),
        ("Chance", "1 / number of candidates"),
        ("Answered", "items with a readable answer"),
        ("Not answered", "refusals, safety blocks, parse and API errors: counted as wrong"),
        ("Position bias p", "chi-square of the slots named vs uniform (answered items)"),
        ("Cost", "USD spent on this task (0 for local models)"),
    ]
    rows = []
    for name, b in systems.items():
        b = as_map(b)
        statuses = as_map(b.get("statuses"))
        wrong = {s: int(statuses.get(s, 0)) for s in WRONG_STATUSES if statuses.get(s)}
        pos = as_map(as_map(b.get("position_bias")).get("uniform_answers"))
        cells = [
            count(b.get("n_items")),
            number(b.get("accuracy"), ci=b.get("accuracy_ci")),
            number(b.get("chance")),
            count(b.get("n_answered")),
            Cell(
                fmt.integer(sum(wrong.values())),
                sub=", ".join(f"{k} {v}" for k, v in wrong.items()),
            ),
            formatted(pos.get("p_value"), fmt.pvalue, "no answered items"),
            formatted(b.get("cost_usd"), fmt.usd),
        ]
        rows.append(Row(str(name), cells, colours.get(str(name))))
    return collect_notes(Table(cols, rows))


def _slot_table(systems: Mapping[str, Any], labels: list[str], colours: Mapping[str, str]):
    cols = [
        (
            f"True {lab}",
            f"accuracy on items whose true candidate is {lab}; under it: how often {lab} was named",
        )
        for lab in labels
    ]
    rows = []
    for name, b in systems.items():
        per = [as_map(p) for p in as_map(b).get("per_slot") or []]
        cells = []
        for k in range(len(labels)):
            p = per[k] if k < len(per) else {}
            cell = number(p.get("accuracy"), "no items with this true slot")
            cell.sub = f"named {fmt.integer(p.get('answered'))}×"
            cells.append(cell)
        rows.append(Row(str(name), cells, colours.get(str(name))))
    return collect_notes(Table(cols, rows))


def _comparison_table(comparisons: list[Any], colours: Mapping[str, str]) -> Table | None:
    cols = [
        ("Accuracy A", "first system"),
        ("Accuracy B", "second system"),
        ("Only A right", "discordant items A got right (b)"),
        ("Only B right", "discordant items B got right (c)"),
        ("p (exact McNemar)", "two-sided exact binomial test on the discordant items"),
        ("p (clustered)", "McNemar with identity-clustered variance (items of one person)"),
    ]
    rows = []
    for c in comparisons:
        c = as_map(c)
        exact, clustered = as_map(c.get("mcnemar_exact")), as_map(c.get("mcnemar_clustered"))
        cells = [
            number(c.get("accuracy_a")),
            number(c.get("accuracy_b")),
            count(exact.get("b")),
            count(exact.get("c")),
            formatted(exact.get("p_value"), fmt.pvalue),
            formatted(clustered.get("p_value"), fmt.pvalue),
        ]
        head = f"{c.get('a')} vs {c.get('b')}"
        rows.append(Row(head, cells, colours.get(str(c.get("a"))), "A = first, B = second"))
    return collect_notes(Table(cols, rows, head_label="Comparison")) if rows else None


def choice_section(name: str, block: Mapping[str, Any], colours: Mapping[str, str]) -> Any:
    """The ExtraSection for one choice task."""
    from reidbench.report.model import ExtraBlock, ExtraSection

    items = as_map(block.get("items"))
    n = int(block.get("n_candidates") or 0)
    labels = [chr(ord("A") + k) for k in range(n)]
    systems = as_map(block.get("systems"))
    miner = f" (mined with {items.get('miner')})" if items.get("miner") else ""
    facts = [
        (
            "Items",
            f"{fmt.integer(block.get('n_items'))} from "
            f"{fmt.integer(block.get('n_identities'))} query identities",
        ),
        ("Candidates", f"{n} per item: 1 true (other camera) + {n - 1} negatives"),
        ("Negatives", f"{items.get('negatives', fmt.DASH)}{miner}, never from the query's camera"),
        (
            "True slot counts",
            ", ".join(
                f"{lab} {c}"
                for lab, c in zip(labels, block.get("true_slot_counts") or [], strict=False)
            ),
        ),
        ("Split / seed", f"{items.get('split', fmt.DASH)} / {items.get('seed', fmt.DASH)}"),
        ("Items hash", fmt.short_hash(items.get("content_hash"))),
    ]
    tables = []
    if systems:
        tables.append(("Accuracy", _accuracy_table(systems, colours)))
        tables.append(("Accuracy by true slot", _slot_table(systems, labels, colours)))
    comp = _comparison_table(list(block.get("comparisons") or []), colours)
    if comp is not None:
        tables.append(("Paired comparisons on the same items", comp))
    title = "Multiple choice" if name == "choice" else f"Multiple choice ({name})"
    notes = [] if systems else ["no system has answered these items yet"]
    details = [("All recorded values", to_tree(dict(block)))]
    box = ExtraBlock(title, None, facts, tables=tables, details=details)
    return ExtraSection(f"task-{name}", title, CHOICE_HOWTO, [box], notes)


def choice_markdown(metrics: Mapping[str, Any]) -> list[str]:
    """Summary lines for `summary.md`: one line per system and choice task."""
    lines: list[str] = []
    for name, block in as_map(metrics.get("tasks")).items():
        block = as_map(block)
        if block.get("kind") != "choice":
            continue
        lines += [
            "",
            f"Multiple choice ({name}): {fmt.integer(block.get('n_items'))} items, "
            f"{fmt.integer(block.get('n_candidates'))} candidates each, non-answers wrong:",
            "",
        ]
        for sys_name, b in as_map(block.get("systems")).items():
            b = as_map(b)
            bias = as_map(as_map(b.get("position_bias")).get("uniform_answers"))
            lines.append(
                f"- {sys_name}: accuracy {fmt.with_ci(b.get('accuracy'), b.get('accuracy_ci'))} "
                f"(chance {fmt.num(b.get('chance'))}), position bias p = "
                f"{fmt.pvalue(bias.get('p_value')) if bias else fmt.DASH}"
            )
    return [*lines, ""] if lines else lines
