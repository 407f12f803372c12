"""The result of one judgement: what a judge answered about one (image a, image b, prompt).

One flat record per call keeps the scores table, the cache and the report in
agreement; `to_row` is the only place that maps it onto `tables.SCORES_SCHEMA`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from reidbench.tables import DECISIONS, STATUSES

#: Statuses that are answers of the model and therefore cached; errors never are.
CACHEABLE = ("ok", "refusal", "safety_block")
#: A probability prompt's reply with no yes/no among its first token's alternatives
#: (judges/logprobs.py). Asking again returns the same distribution, so unlike other parse
#: errors (a sampled text may parse next time) it is cached and never asked again.
NO_YES_NO = "no yes/no token among the first answer token's top log-probabilities"


def storable(result: JudgeResult) -> bool:
    """Whether the cache keeps this result: an answer, or a parse error final for its prompt."""
    return result.status in CACHEABLE or (
        result.status == "parse_error" and result.error == NO_YES_NO
    )


@dataclass
class JudgeResult:
    """One judgement. `score` (0-100) is set only when `status == "ok"`."""

    score: float | None
    decision: str  # same | different | unknown
    status: str  # one of tables.STATUSES
    raw: str = ""  # the model's text exactly as returned (untrusted: never render as HTML)
    reasons: str | None = None
    latency_s: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None
    provider: str = ""
    model: str = ""
    prompt_id: str = ""
    prompt_version: str = ""
    error: str | None = None
    attempts: int = 0
    cached: bool = False
    served_model: str | None = None  # the model version the provider reports (judges/served.py)
    served_fingerprint: str | None = None  # OpenAI's system_fingerprint, where given
    choice: int | None = None  # multiple choice: the 0-based candidate slot named (status ok)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")
        if self.decision not in DECISIONS:
            raise ValueError(f"unknown decision {self.decision!r}")
        if self.status != "ok" and self.score is not None:
            raise ValueError(f"a {self.status} result carries no score")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JudgeResult:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_row(self, pair_id: int, system: str, order: str, repeat: int) -> dict[str, Any]:
        """The `SCORES_SCHEMA` row for this result."""
        return {
            "pair_id": pair_id,
            "system": system,
            "score": self.score,
            "decision": self.decision,
            "status": self.status,
            "latency_s": self.latency_s,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost_usd": self.cost_usd,
            "raw": self.raw,
            "order": order,
            "repeat": repeat,
            "reasons": self.reasons,
            "error": self.error,
            "cached": self.cached,
            "attempts": self.attempts,
        }
