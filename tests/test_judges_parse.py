"""The answer parser: JSON, keyword regex, refusal phrasing, else parse_error; never a guess."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reidbench.judges.parse import find_json_object, looks_like_refusal, parse_answer
from reidbench.judges.prompts import load_prompt

SCORE = load_prompt("similarity-0-100")
BINARY = load_prompt("same-or-different")
ATTRS = load_prompt("attributes-then-score")


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ('{"reasons": "same red jacket", "score": 85}', 85.0),
        ('```json\n{"reasons": "x", "score": 12}\n```', 12.0),
        ('Here you go: {"score": "70"} hope it helps', 70.0),
        ('{"score": 0}', 0.0),
        ('{"score": 100}', 100.0),
        ('{"score": 42.5}', 42.5),
        ("Similarity score: 64", 64.0),
        ("The score is 64.", 64.0),
        ("**Score**: 30", 30.0),
        ("I would rate it 77/100.", 77.0),
        ("77 out of 100", 77.0),
        ('{"reasons": "truncated...", "score": 55', 55.0),  # broken JSON, keyword regex
    ],
)
def test_scores_are_read(text: str, score: float) -> None:
    parsed = parse_answer(text, SCORE)
    assert parsed.status == "ok"
    assert parsed.score == score
    assert parsed.decision == ("same" if score >= 50 else "different")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"score": 150}', "outside 0-100"),
        ('{"score": -3}', "outside 0-100"),
        ('{"score": "high"}', "not a number"),
        ('{"score": true}', "not a number"),
        ("score: 40, but on reflection score: 60", "conflicting"),
        ("They look alike. I'd say about 80 percent.", "no score"),  # a number without a keyword
        ('{"reasons": "cut off mid-sent', "no score"),
        ("", "empty reply"),
    ],
)
def test_unreadable_answers_are_parse_errors(text: str, fragment: str) -> None:
    parsed = parse_answer(text, SCORE)
    assert parsed.status == "parse_error"
    assert parsed.score is None
    assert parsed.decision == "unknown"
    assert fragment in (parsed.error or "")


def test_threshold_sets_the_decision_of_score_prompts() -> None:
    assert parse_answer('{"score": 60}', SCORE, threshold=60).decision == "same"
    assert parse_answer('{"score": 59}', SCORE, threshold=60).decision == "different"


def test_binary_prompt_maps_confidence_to_a_same_probability() -> None:
    same = parse_answer('{"decision": "same", "confidence": 80, "reasons": "r"}', BINARY)
    diff = parse_answer('{"decision": "Different", "confidence": 90}', BINARY)
    bare = parse_answer('{"decision": "same"}', BINARY)
    assert (same.status, same.decision, same.score, same.reasons) == ("ok", "same", 80.0, "r")
    assert (diff.decision, diff.score) == ("different", 10.0)
    assert (bare.status, bare.decision, bare.score) == ("ok", "same", None)


@pytest.mark.parametrize(
    ("text", "decision"),
    [
        ("Decision: different. Confidence: 70", "different"),
        ("Answer: same", "same"),
        ("Same.", "same"),
        ("**Different person**", "different"),
    ],
)
def test_binary_text_answers(text: str, decision: str) -> None:
    parsed = parse_answer(text, BINARY)
    assert (parsed.status, parsed.decision) == ("ok", decision)


@pytest.mark.parametrize(
    "text",
    [
        "Same jacket but different shoes, so probably not the same person.",  # prose: no guess
        "They are not the same person.",
        '{"decision": "maybe"}',
        "Decision: same. Actually, decision: different.",
    ],
)
def test_binary_prose_is_never_guessed(text: str) -> None:
    parsed = parse_answer(text, BINARY)
    assert parsed.status == "parse_error"
    assert parsed.decision == "unknown"


def test_attribute_answers_keep_the_comparisons_as_reasons() -> None:
    text = json.dumps(
        {
            "attributes": {"hair": "match", "upper_clothing": "mismatch", "bag": "unclear"},
            "reasons": "jacket colour differs",
            "score": 20,
        }
    )
    parsed = parse_answer(text, ATTRS)
    assert parsed.score == 20.0
    assert (
        parsed.reasons == "upper_clothing=mismatch, bag=unclear, hair=match; jacket colour differs"
    )


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry, but I can't help with identifying people in images.",
        "I cannot assist with that request.",
        "I\u2019m unable to compare these images.",
        "Sorry, I won't identify individuals.",
    ],
)
def test_refusal_phrasing(text: str) -> None:
    parsed = parse_answer(text, SCORE)
    assert parsed.status == "refusal"
    assert parsed.score is None


def test_an_answer_wins_over_hedging_words() -> None:
    parsed = parse_answer("I can't be certain, but my score is 65.", SCORE)
    assert (parsed.status, parsed.score) == ("ok", 65.0)


def test_provider_fields_come_first_and_carry_no_score() -> None:
    refused = parse_answer('{"score": 90}', SCORE, refusal="I can't help with that.")
    blocked = parse_answer('{"score": 90}', SCORE, safety="finish_reason=SAFETY")
    assert (refused.status, refused.score) == ("refusal", None)
    assert (blocked.status, blocked.score, blocked.error) == (
        "safety_block",
        None,
        "finish_reason=SAFETY",
    )


def test_html_in_model_text_is_parsed_not_trusted() -> None:
    text = '<script>alert(1)</script><b>Score</b>: {"reasons": "<img src=x>", "score": 33}'
    parsed = parse_answer(text, SCORE)
    assert (parsed.status, parsed.score, parsed.reasons) == ("ok", 33.0, "<img src=x>")


def test_find_json_object_skips_objects_without_the_key() -> None:
    text = 'meta {"a": 1} then {"score": 5, "nested": {"score": 9}}'
    assert find_json_object(text, ("score",)) == {"score": 5, "nested": {"score": 9}}
    assert find_json_object("no braces here", ("score",)) is None


# -- properties ----------------------------------------------------------------------------

_filler = st.text(alphabet=st.characters(blacklist_categories=("Nd",), blacklist_characters="{}"))


@settings(max_examples=100, deadline=None)
@given(score=st.integers(0, 100), before=_filler, after=_filler, reasons=st.text())
def test_any_embedded_json_score_is_read_exactly(
    score: int, before: str, after: str, reasons: str
) -> None:
    text = before + json.dumps({"reasons": reasons, "score": score}) + after
    parsed = parse_answer(text, SCORE)
    assert parsed.status == "ok"
    assert parsed.score == float(score)


@settings(max_examples=150, deadline=None)
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Nd",))))
def test_text_without_digits_never_yields_a_score(text: str) -> None:
    parsed = parse_answer(text, SCORE)
    assert parsed.score is None
    assert parsed.status in ("parse_error", "refusal")


@settings(max_examples=150, deadline=None)
@given(text=st.text())
def test_results_are_always_consistent(text: str) -> None:
    for prompt in (SCORE, BINARY):
        parsed = parse_answer(text, prompt)
        assert parsed.status in ("ok", "refusal", "parse_error")
        if parsed.score is not None:
            assert parsed.status == "ok"
            assert 0.0 <= parsed.score <= 100.0
        if parsed.status == "ok":
            assert parsed.decision in ("same", "different")
        else:
            assert parsed.decision == "unknown"


def test_refusal_detector_ignores_ordinary_answers() -> None:
    assert not looks_like_refusal('{"reasons": "same coat and bag", "score": 88}')
    assert looks_like_refusal("I am not able to help with this.")
