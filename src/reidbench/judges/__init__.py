"""LVLM judges: providers, versioned prompts, answer parsing, a resumable runner, a response cache.

Entry points: `judge_pairs` (one system over a pairs table -> scores table),
`resolve_system` (a config with its preset filled in) and `system_manifest`
(what a run records about a judge; never a secret).
"""

from __future__ import annotations

from reidbench.judges.judge import ajudge_pairs, judge_pairs
from reidbench.judges.parse import Parsed, parse_answer
from reidbench.judges.presets import FAMILIES, PRICES, STUDY_PRESETS
from reidbench.judges.prompts import Prompt, bundled_prompt_ids, load_prompt
from reidbench.judges.result import JudgeResult
from reidbench.judges.settings import ResolvedSystem, resolve_system, system_manifest

__all__ = [
    "FAMILIES",
    "PRICES",
    "STUDY_PRESETS",
    "JudgeResult",
    "Parsed",
    "Prompt",
    "ResolvedSystem",
    "ajudge_pairs",
    "bundled_prompt_ids",
    "judge_pairs",
    "load_prompt",
    "parse_answer",
    "resolve_system",
    "system_manifest",
]
