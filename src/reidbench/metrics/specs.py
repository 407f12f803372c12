"""THE table of headline metrics: key, label, help text, direction, format, where shown.

Every list of headline metrics reads this table: the metric blocks and bootstrap
intervals of `metrics.json` (`reidbench.metrics.verification`, `.stats`, `.run`),
the report's tables and tooltips (`reidbench.report.sections`, `.coverage_view`,
`.extras`), its protocol facts (`reidbench.report.protocol`) and the Markdown
summary (`reidbench.report.markdown`). Adding a headline metric touches two
files: a `MetricSpec` here (or `register_metric` from your own module) and the
function that computes it (docs/extending.md, "Adding a metric").

A spec with ``compute`` set is computed by `metrics.run.blocks` itself from
(labels, scores) of the scored pairs, or (labels, decisions) for
``kind="threshold"``; the built-in metrics are computed by
`verification.threshold_metrics` and `verification.ranking_metrics`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "FAR",
    "METRIC_SPECS",
    "TAR_KEY",
    "MetricSpec",
    "keys",
    "markdown_specs",
    "register_metric",
    "spec",
]

FAR = 1e-2
TAR_KEY = "tar_at_far_1e-2"

# (labels, values) -> the metric, or None where undefined (one class only, ...).
MetricFn = Callable[[np.ndarray, np.ndarray], float | None]


@dataclass(frozen=True)
class MetricSpec:
    """One headline metric of a system's block in metrics.json."""

    key: str  # the key in metrics.json blocks
    label: str  # column header in the report
    help: str  # tooltip in the report
    higher_is_better: bool
    kind: str  # "threshold": from decisions at the threshold; "ranking": from scores
    digits: int = 3  # decimals in the report and the Markdown summary
    summary: bool = True  # a column of the summary, failures-as-wrong and fusion tables
    coverage_help: str | None = None  # tooltip in the coverage-aware table (None: not there)
    markdown: str | None = None  # column header in the Markdown summary (None: not there)
    markdown_ci: bool = False  # print the bootstrap interval next to it in Markdown
    protocol_label: str | None = None  # the name in the report's protocol facts
    protocol: str | None = None  # how it is computed (metrics.json run.protocol[key])
    compute: MetricFn | None = None  # for metrics that `verification` does not compute

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"

    @property
    def tooltip(self) -> str:
        """The report tooltip: the help text, saying so when lower is better."""
        if self.higher_is_better or "lower is better" in self.help:
            return self.help
        return f"{self.help} (lower is better)"


METRIC_SPECS: list[MetricSpec] = [
    MetricSpec(
        "accuracy",
        "Accuracy",
        "fraction of answered pairs decided correctly at the threshold",
        True,
        "threshold",
        coverage_help="expected accuracy: an abstention is 0.5 correct",
        markdown="accuracy",
    ),
    MetricSpec(
        "precision",
        "Precision",
        "of pairs decided 'same', the fraction that are the same person",
        True,
        "threshold",
        summary=False,
    ),
    MetricSpec(
        "recall",
        "Recall",
        "of same-person pairs, the fraction decided 'same'",
        True,
        "threshold",
        summary=False,
    ),
    MetricSpec(
        "f1",
        "F1",
        "harmonic mean of precision and recall",
        True,
        "threshold",
        coverage_help="F1 of the expected confusion matrix (abstentions half 'same', half "
        "'different')",
        markdown="F1",
    ),
    MetricSpec(
        "auc",
        "AUC",
        "area under the ROC curve (threshold-free ranking quality)",
        True,
        "ranking",
        coverage_help="an abstained pair is tied with every pair of the other class",
        markdown="AUC [95% CI]",
        markdown_ci=True,
        protocol_label="AUC",
        protocol="ROC AUC (sklearn.metrics.roc_auc_score)",
    ),
    MetricSpec(
        "pr_auc",
        "AP",
        "average precision = area under the precision-recall curve (step-wise)",
        True,
        "ranking",
        protocol_label="AP (PR-AUC)",
        protocol="average precision (sklearn.metrics.average_precision_score)",
    ),
    MetricSpec(
        "eer",
        "EER",
        "equal error rate: where false accept rate = false reject rate (lower is better)",
        False,
        "ranking",
        coverage_help="equal error rate of the coin-flip ROC (lower is better)",
        markdown="EER",
        protocol_label="EER",
        protocol="linear interpolation on the ROC curve where FPR = 1 - TPR",
    ),
    MetricSpec(
        TAR_KEY,
        "TAR@FAR 1%",
        "true accept rate at a false accept rate of at most 1%",
        True,
        "ranking",
        coverage_help="true accept rate at FAR <= 1% on the coin-flip ROC",
        protocol_label="TAR@FAR 1%",
        protocol="largest TPR among ROC points with FPR <= 0.01, no interpolation",
    ),
]


def register_metric(new: MetricSpec) -> None:
    """Add a headline metric (or replace the one with the same key), e.g. from a plugin."""
    if new.kind not in ("threshold", "ranking"):
        raise ValueError(f"metric {new.key!r}: kind must be 'threshold' or 'ranking'")
    for i, old in enumerate(METRIC_SPECS):
        if old.key == new.key:
            METRIC_SPECS[i] = new
            return
    METRIC_SPECS.append(new)


def spec(key: str) -> MetricSpec:
    for s in METRIC_SPECS:
        if s.key == key:
            return s
    raise KeyError(f"no metric spec {key!r}; known: {[s.key for s in METRIC_SPECS]}")


def keys(
    kind: str | None = None,
    *,
    summary: bool | None = None,
    coverage: bool | None = None,
    builtin: bool | None = None,
) -> tuple[str, ...]:
    """Metric keys in table order, filtered by kind / summary column / coverage-aware table
    / built-in (computed by `verification`) versus computed by the spec's ``compute``."""
    return tuple(
        s.key
        for s in METRIC_SPECS
        if (kind is None or s.kind == kind)
        and (summary is None or s.summary == summary)
        and (coverage is None or (s.coverage_help is not None) == coverage)
        and (builtin is None or (s.compute is None) == builtin)
    )


def markdown_specs() -> list[MetricSpec]:
    return [s for s in METRIC_SPECS if s.markdown]
