"""Turn a model's reply into a score/decision, or say honestly that it cannot be read.

The chain is: safety block and provider refusal first, then the first JSON
object carrying the answer, then a tolerant regex anchored on the answer's
own keywords ("score: 85", "85/100", "decision: same"), then refusal
phrasing, then `parse_error`. Nothing is ever guessed or defaulted: a number
without an answer keyword, two conflicting numbers, or an out-of-range value
all give `parse_error`. The regexes are hand-written because no library
parses free-form LVLM answers; the JSON decoding is the standard library's.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from reidbench.judges.prompts import Prompt

_DECODER = json.JSONDecoder()
_MAX_JSON_STARTS = 64  # braces tried per reply; bounds the work on long or hostile text
_NUM = r"(-?\d{1,4}(?:\.\d+)?)"
_END = r"(?!\d)(?!\.\d)"  # the whole number, but a full stop may end the sentence
_SCORE_RES = [
    re.compile(r"\bscore\b[\"'*]*\s*(?:is|of|was|would be|[:=])?\s*[\"'*]*\s*" + _NUM + _END, re.I),
    re.compile(_NUM + r"\s*(?:/|out of)\s*100\b", re.I),
]
_DECISION_RES = [
    re.compile(r"\bdecision\b[\"'*]*\s*(?:is|[:=])\s*[\"'*]*\s*(same|different)\b", re.I),
    re.compile(r"\b(?:answer|verdict)\b[\"'*]*\s*(?:is|[:=])\s*[\"'*]*\s*(same|different)\b", re.I),
    # A bare one-word answer ("Same.", "**Different person**"), never a word inside prose.
    re.compile(r"^\W*(same|different)(?:\s+(?:person|people|persons|individuals?))?\W*$", re.I),
]
_CONFIDENCE_RE = re.compile(
    r"\bconfidence\b[\"'*]*\s*(?:is|of|[:=])?\s*[\"'*]*\s*" + _NUM + _END, re.I
)
_APOS = "['\u2019]"
_REFUSAL_RE = re.compile(
    r"\bI(?:" + _APOS + r"m| am)\s+(?:sorry|unable|not able)\b"
    r"|\bI\s+(?:can" + _APOS + r"?t|cannot|can not|won" + _APOS + r"t|will not|must decline)"
    r"(?:\s+\w+)?\s+(?:help|assist|comply|provide|identify|compare|determine|do that|make|"
    r"fulfil+|answer|engage|analy[sz]e)"
    r"|\b(?:unable|not able) to (?:help|assist|identify|compare|determine|comply)"
    r"|\bagainst (?:my|our) (?:policy|policies|guidelines)\b"
    r"|\bI must decline\b",
    re.I,
)
_ATTRIBUTE_ORDER = ("upper_clothing", "lower_clothing", "shoes", "bag", "hair", "build")


@dataclass(frozen=True)
class Parsed:
    status: str  # ok | refusal | safety_block | parse_error
    score: float | None = None
    decision: str = "unknown"
    confidence: float | None = None
    reasons: str | None = None
    error: str | None = None
    choice: int | None = None  # multiple choice: 0-based slot of the candidate named


def looks_like_refusal(text: str) -> bool:
    """Refusal phrasing ("I'm sorry, I can't help with that"), used only when no answer parsed."""
    return bool(_REFUSAL_RE.search(text))


def find_json_object(text: str, keys: tuple[str, ...]) -> dict[str, Any] | None:
    """The first JSON object in `text` (fences and prose around it allowed) with one of `keys`."""
    start = text.find("{")
    tries = 0
    while start != -1 and tries < _MAX_JSON_STARTS:
        tries += 1
        try:
            obj, _ = _DECODER.raw_decode(text, start)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and any(k in obj for k in keys):
            return obj
        start = text.find("{", start + 1)
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        out = float(value)
    elif isinstance(value, str):
        try:
            out = float(value.strip().rstrip("%").strip())
        except ValueError:
            return None
    else:
        return None
    return out if math.isfinite(out) else None


def _reasons(obj: dict[str, Any]) -> str | None:
    parts: list[str] = []
    attrs = obj.get("attributes")
    if isinstance(attrs, dict) and attrs:
        names = [k for k in _ATTRIBUTE_ORDER if k in attrs] + sorted(
            k for k in attrs if k not in _ATTRIBUTE_ORDER
        )
        parts.append(", ".join(f"{k}={attrs[k]}" for k in names))
    reasons = obj.get("reasons", obj.get("reason"))
    if isinstance(reasons, list):
        reasons = "; ".join(str(r) for r in reasons)
    if reasons is not None and str(reasons).strip():
        parts.append(str(reasons).strip())
    return "; ".join(parts) if parts else None


def _decision_from_score(score: float, threshold: float) -> str:
    return "same" if score >= threshold else "different"


def _checked_score(value: float | None, what: str) -> tuple[float | None, str | None]:
    if value is None:
        return None, f"{what} is not a number"
    if not 0.0 <= value <= 100.0:
        return None, f"{what} {value:g} is outside 0-100"
    return value, None


def _unique(values: list[str]) -> tuple[str | None, str | None]:
    distinct = sorted(set(values))
    if not distinct:
        return None, None
    if len(distinct) > 1:
        return None, f"conflicting values {distinct}"
    return distinct[0], None


def _score_answer(obj: dict[str, Any] | None, text: str, threshold: float) -> Parsed | None:
    if obj is not None and "score" in obj:
        score, err = _checked_score(_number(obj["score"]), "score")
        if err:
            return Parsed("parse_error", error=f"JSON answer: {err}")
        assert score is not None
        return Parsed("ok", score, _decision_from_score(score, threshold), reasons=_reasons(obj))
    found = [m.group(1) for rx in _SCORE_RES for m in rx.finditer(text)]
    value, err = _unique([f"{float(v):g}" for v in found])
    if err:
        return Parsed("parse_error", error=f"text answer: score has {err}")
    if value is None:
        return None
    score, err = _checked_score(float(value), "score")
    if err:
        return Parsed("parse_error", error=f"text answer: {err}")
    assert score is not None
    return Parsed("ok", score, _decision_from_score(score, threshold))


def _decision_answer(obj: dict[str, Any] | None, text: str) -> Parsed | None:
    reasons = None
    if obj is not None and "decision" in obj:
        raw = obj["decision"]
        decision = raw.strip().lower() if isinstance(raw, str) else None
        if decision not in ("same", "different"):
            return Parsed(
                "parse_error", error=f"JSON answer: decision {raw!r} is not same/different"
            )
        conf_raw = obj.get("confidence")
        reasons = _reasons(obj)
        confidence = None
        if conf_raw is not None:
            confidence, err = _checked_score(_number(conf_raw), "confidence")
            if err:
                return Parsed("parse_error", error=f"JSON answer: {err}")
    else:
        found = [m.group(1).lower() for rx in _DECISION_RES for m in rx.finditer(text)]
        decision, err = _unique(found)
        if err:
            return Parsed("parse_error", error=f"text answer: decision has {err}")
        if decision is None:
            return None
        confs = [f"{float(m.group(1)):g}" for m in _CONFIDENCE_RE.finditer(text)]
        conf_text, err = _unique(confs)
        if err:
            return Parsed("parse_error", error=f"text answer: confidence has {err}")
        confidence = None
        if conf_text is not None:
            confidence, err = _checked_score(float(conf_text), "confidence")
            if err:
                return Parsed("parse_error", error=f"text answer: {err}")
    score = None
    if confidence is not None:
        # Probability-of-same on 0-100: the confidence in "same", or its complement.
        score = confidence if decision == "same" else 100.0 - confidence
    return Parsed("ok", score, decision, confidence=confidence, reasons=reasons)


_LABEL_WORDS = r"(?:candidate|image|option|person|picture|crop)?\s*"
_CHOICE_RES = [
    re.compile(
        r"\b(?:answer|choice|match)\b[\"'*]*\s*(?:is|[:=])\s*[\"'*]*\s*"
        + _LABEL_WORDS
        + r"\(?([A-Za-z0-9]{1,2})\)?(?![\w'])",
        re.I,
    ),
    # A bare label ("B", "**B**", "Candidate B.", "(B)"), never a letter inside prose.
    re.compile(r"^\W*" + _LABEL_WORDS + r"\(?([A-Za-z0-9]{1,2})\)?\W*$", re.I),
]


def _label_slot(value: str, options: tuple[str, ...]) -> int | None:
    """The slot of a label as answered ("b", "Candidate B", "(B)"), None if not one of them."""
    text = re.sub(r"^\W*" + _LABEL_WORDS, "", value.strip(), flags=re.I)
    text = text.strip().strip("()[].*:'\"").strip()
    upper = [o.upper() for o in options]
    return upper.index(text.upper()) if text.upper() in upper else None


def _choice_answer(
    obj: dict[str, Any] | None, text: str, options: tuple[str, ...]
) -> Parsed | None:
    if obj is not None and "answer" in obj:
        raw = obj["answer"]
        slot = _label_slot(raw, options) if isinstance(raw, str) else None
        if slot is None:
            return Parsed(
                "parse_error", error=f"JSON answer: {raw!r} is not one of {', '.join(options)}"
            )
        return Parsed("ok", choice=slot, reasons=_reasons(obj))
    found = [m.group(1).upper() for rx in _CHOICE_RES for m in rx.finditer(text)]
    label, err = _unique(found)
    if err:
        return Parsed("parse_error", error=f"text answer: choice has {err}")
    if label is None:
        return None
    slot = _label_slot(label, options)
    if slot is None:
        return Parsed("parse_error", error=f"text answer: {label!r} is not one of {options}")
    return Parsed("ok", choice=slot)


def parse_answer(
    text: str,
    prompt: Prompt,
    *,
    threshold: float = 50.0,
    refusal: str | None = None,
    safety: str | None = None,
) -> Parsed:
    """Read one reply. `refusal`/`safety` come from the provider's own fields, if any."""
    if safety:
        return Parsed("safety_block", error=safety)
    if refusal:
        return Parsed("refusal", reasons=refusal.strip() or None, error="provider refusal")
    keys = {"score": ("score",), "decision": ("decision",), "choice": ("answer",)}[prompt.answer]
    obj = find_json_object(text, keys)
    if prompt.answer == "choice":
        if not prompt.options:
            raise ValueError(f"prompt {prompt.id!r}: call for_options() before parsing answers")
        parsed = _choice_answer(obj, text, prompt.options)
    elif prompt.answer == "score":
        parsed = _score_answer(obj, text, threshold)
    else:
        parsed = _decision_answer(obj, text)
    if parsed is not None:
        return parsed
    if looks_like_refusal(text):
        return Parsed("refusal", error="refusal phrasing")
    if not text.strip():
        return Parsed("parse_error", error="empty reply")
    what = {"score": "score", "decision": "same/different decision", "choice": "candidate label"}[
        prompt.answer
    ]
    return Parsed("parse_error", error=f"no {what} found in the reply")
