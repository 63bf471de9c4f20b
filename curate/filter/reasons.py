"""Every reason code a row can be rejected with by `filter` (its checks, answer extraction and gold audit) and by
`verify` (the judge), with what each means: one registry, read by the reports, the card and the README.

Answer extraction's codes are defined where the parsing is (`extract.py`) and listed here with the others.
"""

from __future__ import annotations

from curate.filter.extract import (
    ANSWER_ONLY_IN_REASONING,
    CONTRADICTS_REASONING,
    INVALID_OPTION,
    MULTIPLE_ANSWERS,
    NO_ANSWER,
)

# ---------------------------------------------------------------- filter: checks of one response
GENERATION_ERROR = "generation_error"
TRUNCATED = "truncated"
UNCLOSED_THINK = "unclosed_think"
EMPTY_REASONING = "empty_reasoning"
SHORT_REASONING = "short_reasoning"
TOO_LONG = "too_long"
REPETITION = "repetition"
NON_ENGLISH = "non_english"
REFUSAL = "refusal"
HEDGING = "hedging"
ANSWER_LEAK = "answer_leak"
WRONG_ANSWER = "wrong_answer"
UNKNOWN_QUESTION = "unknown_question"
NOT_SELECTED = "not_selected"
# ---------------------------------------------------------------- filter: the gold-label audit of a question
GOLD_SUSPECT = "gold_suspect"
# ---------------------------------------------------------------- verify: the judge's verdict on the reasoning
JUDGE_UNSUPPORTED = "judge_unsupported"
JUDGE_WRONG_STEP = "judge_wrong_step"
JUDGE_UNSUPPORTED_STEP = "judge_unsupported_step"
JUDGE_CLINICAL_ERROR = "judge_clinical_error"
JUDGE_UNSAFE = "judge_unsafe"
JUDGE_UNPARSABLE = "judge_unparsable"
JUDGE_MISQUOTE = "judge_misquote"
JUDGE_REFUSAL = "judge_refusal"
JUDGE_ERROR = "judge_error"

#: What `filter` gives for one response (the `FilterReport` and README read these).
FILTER_REASONS: dict[str, str] = {
    GENERATION_ERROR: "the teacher call failed (the trace carries an error, or no completion)",
    TRUNCATED: "finish_reason is 'length': the response was cut off",
    UNCLOSED_THINK: "<think> was opened and never closed",
    EMPTY_REASONING: "no reasoning text at all",
    SHORT_REASONING: "reasoning shorter than --min-reasoning-words",
    TOO_LONG: "reasoning + answer longer than --max-tokens (estimated, or the server's completion_tokens)",
    REPETITION: "a loop: the same sentence or phrase over and over",
    NON_ENGLISH: "mostly non-English text",
    REFUSAL: "the teacher declined to answer",
    HEDGING: "no answer, and the response says none fits / it cannot be determined",
    ANSWER_LEAK: "rationalisation prompt: the reasoning says it was given the answer",
    NO_ANSWER: "no final answer could be parsed",
    MULTIPLE_ANSWERS: "the final statement names more than one option",
    ANSWER_ONLY_IN_REASONING: "an answer appears only inside the reasoning, not as a final answer",
    CONTRADICTS_REASONING: "the final answer differs from the reasoning's last conclusion",
    INVALID_OPTION: "the answer names a letter the question does not have",
    WRONG_ANSWER: "the parsed answer is not the gold answer",
    UNKNOWN_QUESTION: "the trace's question_id is not in the questions file (--skip-invalid)",
    NOT_SELECTED: "correct and well-formed, but the selection policy kept other samples of this question",
    GOLD_SUSPECT: "the question's samples agree on one letter that is not the gold letter (a possible label error; "
                  "with --exclude-gold-suspect)",
}

#: What `verify` gives (a row's reasons are its failing judges' reasons, in judge order: the first is primary).
VERIFY_REASONS: dict[str, str] = {
    JUDGE_UNSUPPORTED: "the judge found that the reasoning does not support the final answer",
    JUDGE_WRONG_STEP: "the judge marked a reasoning step wrong",
    JUDGE_UNSUPPORTED_STEP: "the judge marked a reasoning step unsupported (with reject_unsupported_steps)",
    JUDGE_CLINICAL_ERROR: "the judge found a clinical error in the reasoning",
    JUDGE_UNSAFE: "the judge found unsafe advice in the reasoning",
    JUDGE_UNPARSABLE: "the judge's output is not a verdict: not JSON, malformed, cut off, or not the verdict schema "
                      "(a plain multiple-choice answer included)",
    JUDGE_MISQUOTE: "the verdict quotes a step that is not in the reasoning: it is not a verdict on this trace",
    JUDGE_REFUSAL: "the judge declined to judge",
    JUDGE_ERROR: "the judge request failed after its retries (a re-run asks again)",
}

#: Every code a row can carry, with what it means.
REASONS: dict[str, str] = {**FILTER_REASONS, **VERIFY_REASONS}

#: Codes that say the response is malformed or unusable (format_ok is False when any is present).
FORMAT_REASONS = frozenset(FILTER_REASONS) - {WRONG_ANSWER, NOT_SELECTED, UNKNOWN_QUESTION, GOLD_SUSPECT}

#: Verify codes for an output that is no verdict at all: it never passes, whatever the rules say.
NO_VERDICT = frozenset({JUDGE_UNPARSABLE, JUDGE_MISQUOTE, JUDGE_REFUSAL, JUDGE_ERROR})
