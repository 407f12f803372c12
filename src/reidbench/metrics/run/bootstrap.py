"""The resampling settings of one metrics computation, and the one door to the tests.

Every interval and paired test of `metrics.json` goes through a `Bootstrap`, so that a
change of method (e.g. a cluster bootstrap over identities: `clusters=`) is made in one
place instead of in every caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from reidbench.metrics import stats
from reidbench.metrics.coverage import coverage_aware_ci, coverage_aware_paired


@dataclass(frozen=True)
class Bootstrap:
    """How many resamples, from which seed, at which confidence level."""

    n_boot: int = 1000
    seed: int = 0
    level: float = 0.95
    # Per-pair cluster codes of the pairs the callers index (`RunDir.pairs.identities`
    # stacked, shape (n, 2)); None = pairs resampled independently. Callers say which pairs
    # a call uses (`at=`), so handing the dependence-aware tests their `clusters=` is this
    # field plus `_kw`, in this file only.
    clusters: np.ndarray | None = field(default=None, compare=False, repr=False)

    def subset(self, keep: np.ndarray) -> Bootstrap:
        """The same settings for a subset of the pairs (clusters re-indexed)."""
        return replace(self, clusters=None if self.clusters is None else self.clusters[keep])

    def ci(
        self,
        y: np.ndarray,
        s: np.ndarray,
        pred: np.ndarray | None,
        *,
        rates: dict[str, np.ndarray] | None = None,
        at: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """Intervals for every metric of one system on these pairs (`stats.bootstrap_ci`);
        `at` = which of the pairs (mask or indices) y and s hold, None = all."""
        return stats.bootstrap_ci(
            y, s, pred, self.n_boot, self.seed, level=self.level, rates=rates, **self._kw(at)
        )

    def auc_diff(
        self,
        y: np.ndarray,
        s_a: np.ndarray,
        s_b: np.ndarray,
        *,
        at: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """Paired bootstrap of AUC(A) - AUC(B) on identical pairs.

        The p-value is never 0: with k of B valid resamples on the far side of 0 it is
        min(1, 2 (k + 1) / (B + 1)) (Davison & Hinkley 1997, eq. 4.11), not 2 k / B.
        """
        out = stats.paired_bootstrap_auc(
            y, s_a, s_b, self.n_boot, self.seed, self.level, **self._kw(at)
        )
        p, ci = out.get("p_value"), out.get("ci")
        if p is not None and ci and ci.get("n_valid"):
            b = int(ci["n_valid"])
            k = round(p * b / 2.0)
            out["p_value"] = float(min(1.0, 2.0 * (k + 1) / (b + 1)))
            out["p_value_rule"] = "two-sided, 2 (k + 1) / (B + 1) over B valid resamples"
        return out

    def mcnemar(
        self,
        correct_a: np.ndarray,
        correct_b: np.ndarray,
        *,
        at: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """Paired test of two systems' decisions on identical pairs (`stats.mcnemar`)."""
        return stats.mcnemar(correct_a, correct_b, **self._kw(at))

    def exact_mcnemar(self, correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, Any]:
        """McNemar's exact test (two-sided binomial on the discordant pairs), ignoring any
        clusters: the classic test, reported beside the dependence-aware one."""
        return stats.mcnemar(correct_a, correct_b)

    def paired_mean_diff(
        self,
        values_a: np.ndarray,
        values_b: np.ndarray,
        *,
        at: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """Paired bootstrap of mean(values_a) - mean(values_b) on identical pairs (e.g. per-pair
        correctness): same draws for both; with clusters the dependence-aware Wald interval
        (`stats.paired_from_weights`)."""
        d = np.asarray(values_a, dtype=np.float64) - np.asarray(values_b, dtype=np.float64)
        if d.size == 0:
            return {"diff": None, "mean_diff": None, "ci": None, "p_value": None}

        def fn_diff(w: np.ndarray) -> np.ndarray:
            total = w.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                return (w @ d) / total

        if self.n_boot == 0:
            return {"diff": float(d.mean()), "mean_diff": None, "ci": None, "p_value": None}
        return stats.paired_from_weights(
            fn_diff, d.size, self.n_boot, self.seed, level=self.level, **self._kw(at)
        )

    def coverage_ci(
        self,
        y: np.ndarray,
        s: np.ndarray,
        pred: np.ndarray | None,
        answered: np.ndarray,
        *,
        at: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """Intervals for the coverage-aware metrics (abstentions as coin flips) of one system
        over every pair it was meant to answer (`coverage.coverage_aware_ci`)."""
        return coverage_aware_ci(
            y, s, pred, answered, self.n_boot, self.seed, level=self.level, **self._kw(at)
        )

    def coverage_paired(
        self,
        y: np.ndarray,
        a: tuple[np.ndarray, np.ndarray | None, np.ndarray],
        b: tuple[np.ndarray, np.ndarray | None, np.ndarray],
        *,
        at: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """Paired tests of A against B on the coverage-aware values of identical pairs
        (`coverage.coverage_aware_paired`); a = (scores, decisions or None, answered)."""
        out = coverage_aware_paired(
            y, a, b, self.n_boot, self.seed, level=self.level, **self._kw(at)
        )
        auc = out.get("auc")
        if self.clusters is None and isinstance(auc, dict):
            # The pair bootstrap's fraction p-value can be 0; same correction as `auc_diff`.
            p, ci = auc.get("p_value"), auc.get("ci")
            if p is not None and ci and ci.get("n_valid"):
                n_valid = int(ci["n_valid"])
                k = round(p * n_valid / 2.0)
                auc["p_value"] = float(min(1.0, 2.0 * (k + 1) / (n_valid + 1)))
        return out

    def grouped_mean_ci(self, values: np.ndarray, groups: np.ndarray) -> dict[str, Any] | None:
        """Interval of a mean over observations grouped by e.g. identity, the groups
        resampled whole (`stats.grouped_mean_ci`): attribute accuracy per image."""
        return stats.grouped_mean_ci(values, groups, self.n_boot, self.seed, self.level)

    def protocol(self) -> dict[str, Any]:
        return {
            "resamples": self.n_boot,
            "seed": self.seed,
            "level": self.level,
            "method": "percentile"
            if self.clusters is None
            else "two-way cluster bootstrap over identities (pigeonhole draws; normal "
            "interval from the Cameron-Gelbach-Miller variance, percentile for TAR@FAR)",
        }

    def _kw(self, at: np.ndarray | None) -> dict[str, Any]:
        # The dependence-aware versions in `stats` take `clusters=`; the pair bootstrap does not.
        if self.clusters is None:
            return {}
        return {"clusters": self.clusters if at is None else self.clusters[at]}
