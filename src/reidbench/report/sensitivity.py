"""The report's "Prompts and probability scores" section, from metrics.json's
`prompt_sensitivity` and `verbalised_vs_probability` blocks (metrics/run/prompts.py).

Per model asked with several prompts: each prompt's AUC, accuracy and repeat flip rate,
the spread across prompts, the paired tests between prompts, and verbalised-score AUC
against probability-score AUC on the same pairs. The choice task's position bias belongs
here too; its block is filled by the choice task when the run has one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reidbench.report import format as fmt
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
)
from reidbench.report.model import number as number_cell

HOWTO = (
    "Systems that ask the same model with different prompts, side by side. A verbalised "
    "prompt has the model state a number (0-100) or a decision; the yes-no-probability "
    "prompt asks for one word and scores each pair by the model's own probability of "
    "'yes', 100 x P(yes) / (P(yes) + P(no)) over the first answer token's top "
    "log-probabilities (docs/tasks.md, Probability scores): a continuous score, where "
    "verbalised numbers cluster on a few round values. Differences are paired: the same "
    "pairs, a dependence-aware bootstrap over the people involved (as under Paired "
    "comparisons). The spread across prompts shows how much a result owes to the wording; "
    "the flip rate is the share of pairs whose decision changed between repeated identical "
    "requests (meaningful at temperature > 0)."
)

_SYSTEM_COLS = [
    ("Prompt", "prompt id and version"),
    (
        "Answer",
        "score: verbalised 0-100; decision: same/different + confidence; "
        "probability: P(yes) from log-probabilities",
    ),
    ("AUC", "on the pairs this system scored"),
    ("Accuracy", "at the system's cross-fitted threshold"),
    ("Coverage", "pairs answered / pairs"),
    ("Distinct scores", "different score values among the answers"),
    ("Temperature", "as asked"),
    ("Repeats", "identical requests per pair"),
    ("Flip rate", "pairs whose decision changed between repeats / pairs answered twice or more"),
]


def _p_cell(test: Mapping[str, Any], why: str) -> Cell:
    p, n = test.get("p_value"), test.get("resamples")
    if fmt.is_num(p) and p == 0 and isinstance(n, int) and n > 0:
        return Cell(f"< {fmt.pvalue(1 / n)}")
    return formatted(p, fmt.pvalue, why)


def _diff_cell(test: Mapping[str, Any], why: str) -> Cell:
    d = test.get("diff")
    if not fmt.is_num(d):
        return Cell(fmt.DASH, note=why)
    return Cell(f"{d:+.3f}", ci=fmt.ci_text(test.get("ci")), sub=f"on {fmt.integer(test.get('n'))}")


def _why(entry: Mapping[str, Any], test: Mapping[str, Any]) -> str:
    reasons = {**as_map(entry.get("null_reasons")), **as_map(test.get("null_reasons"))}
    return "; ".join(str(v) for v in reasons.values()) or "not computed"


def _systems_table(model: Mapping[str, Any], colours: Mapping[str, str]) -> Table:
    rows = []
    for m in model.get("systems") or []:
        if not isinstance(m, Mapping):
            continue
        temp = m.get("temperature")
        flip = m.get("flip_rate")
        cells = [
            Cell(f"{m.get('prompt_id')} v{m.get('prompt_version')}", align="text"),
            Cell(str(m.get("prompt_answer", fmt.DASH)), align="text"),
            number_cell(m.get("auc")),
            number_cell(m.get("accuracy")),
            formatted(m.get("coverage"), fmt.pct),
            count(m.get("n_distinct_scores")),
            Cell(
                fmt.DASH if temp is None else f"{temp:g}",
                note="" if temp is not None else "the model's default",
            ),
            count(m.get("repeats")),
            formatted(
                flip,
                fmt.pct,
                "asked once per pair"
                if m.get("repeats") in (None, 1)
                else "no decisions to compare",
                sub=f"{m['flipped_pairs']} pairs" if m.get("flipped_pairs") else "",
            ),
        ]
        rows.append(Row(str(m.get("name")), cells, colours.get(str(m.get("name")))))
    return collect_notes(Table(_SYSTEM_COLS, rows))


def _versus_table(entries: list[Any], colours: Mapping[str, str]) -> Table:
    cols = [
        ("Verbalised AUC", "the verbalised system, on the pairs both scored"),
        ("Probability AUC", "the probability system, on the same pairs"),
        ("Probability − verbalised", "AUC difference, paired bootstrap 95% CI"),
        ("Bootstrap p", "two-sided, over resamples of people"),
        ("Distinct scores", "verbalised / probability"),
    ]
    rows = []
    for e in entries:
        if not isinstance(e, Mapping):
            continue
        test = as_map(e.get("auc_diff"))
        why = _why(e, test)
        cells = [
            number_cell(test.get("auc_b"), why),
            number_cell(test.get("auc_a"), why),
            _diff_cell(test, why),
            _p_cell(test, why),
            Cell(
                f"{fmt.integer(e.get('n_distinct_verbalised'))} / "
                f"{fmt.integer(e.get('n_distinct_probability'))}"
            ),
        ]
        head = f"{e.get('probability')} vs {e.get('verbalised')}"
        sub = f"{e.get('probability_prompt')} vs {e.get('verbalised_prompt')}"
        rows.append(Row(head, cells, colours.get(str(e.get("probability"))), sub))
    return collect_notes(Table(cols, rows, head_label="Systems"))


def _pairwise_table(entries: list[Any], colours: Mapping[str, str]) -> Table:
    cols = [
        ("AUC A − B", "paired bootstrap 95% CI, pairs both scored"),
        ("Bootstrap p", "two-sided, over resamples of people"),
        ("McNemar p", "exact two-sided test on discordant decisions, pairs both answered"),
    ]
    rows = []
    for e in entries:
        if not isinstance(e, Mapping):
            continue
        test = as_map(e.get("auc_diff"))
        mc = as_map(e.get("mcnemar"))
        why = _why(e, test)
        cells = [
            _diff_cell(test, why),
            _p_cell(test, why),
            formatted(mc.get("p_value"), fmt.pvalue, "no decision threshold"),
        ]
        head = f"{e.get('a')} vs {e.get('b')}"
        rows.append(Row(head, cells, colours.get(str(e.get("a"))), "A = first, B = second"))
    return collect_notes(Table(cols, rows, head_label="Prompts"))


def _spread_text(s: Any) -> str:
    s = as_map(s)
    if not fmt.is_num(s.get("spread")):
        return fmt.DASH
    return f"{fmt.num(s['min'])} to {fmt.num(s['max'])} (spread {fmt.num(s['spread'])})"


def _model_block(model: Mapping[str, Any], colours: Mapping[str, str]) -> ExtraBlock:
    facts: Pairs = [
        ("Model", str(model.get("model"))),
        ("Systems / prompts", f"{len(model.get('systems') or [])} / {model.get('n_prompts')}"),
        ("AUC across prompts", _spread_text(model.get("auc"))),
        ("Accuracy across prompts", _spread_text(model.get("accuracy"))),
    ]
    bias = model.get("position_bias")
    if bias is None:  # filled from the run's choice tasks, when it has one
        facts.append(
            ("Position bias", str(as_map(model.get("null_reasons")).get("position_bias", fmt.DASH)))
        )
    for entry in bias if isinstance(bias, list) else []:
        test = as_map(as_map(entry).get("uniform_answers"))
        facts.append(
            (
                f"Position bias: {entry.get('system')} ({entry.get('task')})",
                f"slots named {entry.get('answer_counts')}; chi-square vs uniform "
                f"p = {fmt.pvalue(test.get('p_value')) if test else fmt.DASH}",
            )
        )
    block = ExtraBlock(str(model.get("model")), None, facts)
    block.tables.append(("Each prompt", _systems_table(model, colours)))
    versus = [e for e in model.get("verbalised_vs_probability") or [] if isinstance(e, Mapping)]
    if versus:
        block.tables.append(
            ("Verbalised vs probability scores, same pairs", _versus_table(versus, colours))
        )
    pairwise = [e for e in model.get("comparisons") or [] if isinstance(e, Mapping)]
    if pairwise:
        block.tables.append(
            ("Paired comparisons between prompts", _pairwise_table(pairwise, colours))
        )
    return block


def sensitivity_sections(
    metrics: Mapping[str, Any], colours: Mapping[str, str]
) -> list[ExtraSection]:
    """The section, when some model was asked with two or more systems."""
    ps = as_map(metrics.get("prompt_sensitivity"))
    models = [m for m in ps.get("models") or [] if isinstance(m, Mapping)]
    if not models:
        return []
    blocks = [_model_block(m, colours) for m in models]
    notes = [str(ps["rule"])] if ps.get("rule") else []
    return [ExtraSection("prompts", "Prompts and probability scores", HOWTO, blocks, notes)]
