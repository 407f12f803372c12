"""Probability scores: a one-word yes/no answer scored by its first token's log-probabilities.

A verbalised 0-100 number is coarse (models favour a few round values) and often ranks
pairs badly; the probability the model puts on "yes" is a continuous score
(docs/tasks.md, "Probability scores"). The rule, the same for every provider:

    score = 100 * P(yes) / (P(yes) + P(no))

where P(yes) sums the probabilities of every yes spelling among the first answer token's
returned alternatives ("Yes", " yes", "YES", "yes.", "**Yes", ...: surrounding whitespace,
punctuation and markdown stripped, case ignored), and P(no) likewise. APIs return at most
about 20 alternatives (`TOP_LOGPROBS`); the `hf` provider returns every yes/no token of the
vocabulary, so its sums are exact. A spelling missing from the alternatives counts 0; no
yes and no no at all is a `parse_error` that is cached, because asking again returns the
same distribution and would only be paid again.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from reidbench.judges.parse import Parsed, looks_like_refusal
from reidbench.judges.providers.base import ProviderReply
from reidbench.judges.result import NO_YES_NO

#: Alternatives asked for: the largest `top_logprobs` OpenAI's API accepts (0-20).
TOP_LOGPROBS = 20
#: Characters stripped around a token before it is compared with yes/no.
_STRIP = " \t\r\n\u0120\u2581.,;:!?\"'`*_()[]{}<>-"
NO_LOGPROBS = (
    "the reply carries no log-probabilities; the endpoint must support logprobs "
    "(docs/judges.md, Probability scores)"
)


def yes_no(token: str) -> str | None:
    """'yes' or 'no' when the token is a spelling of that word, else None."""
    word = token.strip(_STRIP).lower()
    return word if word in ("yes", "no") else None


def _logsumexp(values: list[float]) -> float:
    if not values:
        return -math.inf
    top = max(values)
    if top == -math.inf:
        return top
    return top + math.log(sum(math.exp(v - top) for v in values))


def yes_no_logprobs(alternatives: Iterable[tuple[str, float]]) -> tuple[float, float]:
    """(log P(yes), log P(no)) summed over the spellings among `alternatives` (-inf: none)."""
    found: dict[str, list[float]] = {"yes": [], "no": []}
    for token, logprob in alternatives:
        word = yes_no(token)
        if word is not None and not math.isnan(logprob):
            found[word].append(min(float(logprob), 0.0))  # a rounded +0.0001 is still P = 1
    return _logsumexp(found["yes"]), _logsumexp(found["no"])


def probability_score(alternatives: Sequence[tuple[str, float]]) -> float | None:
    """100 * P(yes) / (P(yes) + P(no)), or None when neither word is among the alternatives."""
    lp_yes, lp_no = yes_no_logprobs(alternatives)
    if lp_yes == -math.inf and lp_no == -math.inf:
        return None
    # P(yes) / (P(yes) + P(no)) = sigmoid(log P(yes) - log P(no)), stable at either extreme.
    diff = lp_yes - lp_no
    if diff >= 0:
        return 100.0 / (1.0 + math.exp(-diff))
    e = math.exp(diff)
    return 100.0 * e / (1.0 + e)


def parse_probability(reply: ProviderReply, *, threshold: float = 50.0) -> Parsed:
    """Read a probability prompt's reply; `Parsed.status` as for `parse_answer`."""
    if reply.safety:
        return Parsed("safety_block", error=reply.safety)
    if reply.refusal:
        return Parsed("refusal", reasons=reply.refusal.strip() or None, error="provider refusal")
    if reply.top_logprobs is None:
        return Parsed("parse_error", error=NO_LOGPROBS)
    score = probability_score(reply.top_logprobs)
    if score is None:
        if looks_like_refusal(reply.text):
            return Parsed("refusal", error="refusal phrasing")
        return Parsed("parse_error", error=NO_YES_NO)
    lp_yes, lp_no = yes_no_logprobs(reply.top_logprobs)
    reasons = (
        f"P(yes)={math.exp(lp_yes):.4g}, P(no)={math.exp(lp_no):.4g} "
        f"over {len(reply.top_logprobs)} first-token alternatives"
    )
    decision = "same" if score >= threshold else "different"
    return Parsed("ok", score, decision, reasons=reasons)
