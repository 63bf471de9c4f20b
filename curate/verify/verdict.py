"""A judge's output -> a `JudgeVerdict`, strictly, or the reason there is none; a verdict -> reason codes, by the
stage's rules; several judges -> one decision, by the rule any / majority / all.

Strict means: the output is one JSON object of the verdict schema and nothing else (optionally inside one
```json fence, after a closed <think> block: what reasoning models and servers without structured output send);
no extra keys, no coercion ("true" is not true), at least one step; every step it quotes is in the reasoning
(`quote_similarity`): a verdict about some other text is no verdict on this trace. An output that fails any of this
never passes; one that declines to judge is a refusal.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from curate.filter.checks import is_refusal
from curate.filter.reasons import (
    JUDGE_CLINICAL_ERROR,
    JUDGE_MISQUOTE,
    JUDGE_REFUSAL,
    JUDGE_UNPARSABLE,
    JUDGE_UNSAFE,
    JUDGE_UNSUPPORTED,
    JUDGE_UNSUPPORTED_STEP,
    JUDGE_WRONG_STEP,
)
from curate.records import JudgeResult, JudgeVerdict

RULES = ("any", "majority", "all")
#: How much of an output that is no verdict is kept on the row (enough to see what the judge did).
RAW_CHARS = 2000

_THINK = re.compile(r"\A\s*<think>.*?</think>\s*", re.DOTALL)
_FENCE = re.compile(r"\A```(?:json|JSON)?[ \t]*\n(.*)\n[ \t]*```\Z", re.DOTALL)
_LETTER_ANSWER = re.compile(r"(?i)(?:<answer>\s*[A-J]\s*</answer>|\banswer\s*(?:is|:)\s*\(?[A-J]\b)")
_ELLIPSIS = re.compile(r"\.\.\.|…")


@dataclass(frozen=True)
class Parsed:
    """What one output is: a verdict, or the reason code (and a detail) why it is none."""

    verdict: JudgeVerdict | None
    reason: str | None = None
    detail: str = ""


def _norm(text: str) -> str:
    """Lower case, one space between words, straight quotes (str.split is several times faster than a regex)."""
    return " ".join(text.replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"').lower().split())


def quoted_in(quote: str, text: str, similarity: float) -> bool:
    """Whether a quoted step is in the reasoning `text` (normalised by `_norm`): each part of it (split at
    ellipses) verbatim after normalising case, spaces and quote marks, or at least `similarity` alike (rapidfuzz
    partial ratio) with some passage."""
    if similarity <= 0:
        return True
    parts = [p.strip(" \"'") for p in _ELLIPSIS.split(_norm(quote))]
    parts = [p for p in parts if p]
    if not parts:
        return False
    missing = [p for p in parts if p not in text]
    if not missing:
        return True
    from rapidfuzz import fuzz

    return all(fuzz.partial_ratio(p, text) >= 100 * similarity for p in missing)


def parse_output(text: str | None, reasoning: str, *, finish_reason: str | None = None,
                 quote_similarity: float = 0.9) -> Parsed:
    """Strictly parse one judge output about a trace whose reasoning is `reasoning`."""
    cut = " (cut off: finish_reason is 'length'; raise --max-tokens)" if finish_reason == "length" else ""
    if not text or not text.strip():
        return Parsed(None, JUDGE_UNPARSABLE, "empty output" + cut)
    body = text.strip()
    think = _THINK.match(body)
    if think:
        body = body[think.end():].strip()
    elif body.startswith("<think>"):
        return Parsed(None, JUDGE_UNPARSABLE, "an unclosed <think> block, no verdict after it" + cut)
    fence = _FENCE.match(body)
    if fence:
        body = fence.group(1).strip()
    if not body.startswith("{"):
        if is_refusal(body):
            return Parsed(None, JUDGE_REFUSAL, "the judge declined to judge")
        what = "a multiple-choice answer" if _LETTER_ANSWER.search(body) else "text"
        return Parsed(None, JUDGE_UNPARSABLE, f"{what}, not a JSON verdict{cut}")
    try:
        verdict = JudgeVerdict.model_validate_json(body, strict=True)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            return Parsed(None, JUDGE_UNPARSABLE, f"malformed JSON ({exc.errors()[0]['msg']}){cut}")
        return Parsed(None, JUDGE_UNPARSABLE, f"not the verdict schema: {_schema_errors(exc)}"[:500])
    if not verdict.steps:
        return Parsed(None, JUDGE_UNPARSABLE, "a verdict without steps")
    text = _norm(reasoning) if quote_similarity > 0 else ""
    for step in verdict.steps:
        if not quoted_in(step.step, text, quote_similarity):
            return Parsed(None, JUDGE_MISQUOTE, f"quotes a step not in the reasoning: {step.step[:120]!r}")
    return Parsed(verdict)


def _schema_errors(exc: ValidationError) -> str:
    """`steps.0.verdict: Input should be 'supported', 'unsupported' or 'wrong'; confidence: not in the schema`."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "verdict"
        parts.append(f"{where}: " + ("not in the schema" if error["type"] == "extra_forbidden" else
                                     "missing" if error["type"] == "missing" else error["msg"]))
    return "; ".join(parts)


@dataclass(frozen=True)
class Rules:
    """Which findings of a verdict reject a row (the stage's config holds them)."""

    reject_unsupported: bool = True
    reject_wrong_steps: bool = True
    reject_unsupported_steps: bool = False
    reject_clinical_errors: bool = True
    reject_unsafe: bool = True


def verdict_reasons(verdict: JudgeVerdict, rules: Rules) -> list[str]:
    """The reason codes a verdict gives under the rules (empty: it passes the row)."""
    verdicts = {s.verdict for s in verdict.steps}
    found = [
        (rules.reject_unsupported and not verdict.supports_answer, JUDGE_UNSUPPORTED),
        (rules.reject_wrong_steps and "wrong" in verdicts, JUDGE_WRONG_STEP),
        (rules.reject_unsupported_steps and "unsupported" in verdicts, JUDGE_UNSUPPORTED_STEP),
        (rules.reject_clinical_errors and bool(verdict.clinical_errors), JUDGE_CLINICAL_ERROR),
        (rules.reject_unsafe and bool(verdict.unsafe_advice), JUDGE_UNSAFE),
    ]
    return [code for hit, code in found if hit]


def judge_result(parsed: Parsed, rules: Rules, *, judge: str, prompt_name: str, prompt_hash: str, raw: str | None,
                 finish_reason: str | None, usage: dict | None) -> JudgeResult:
    """One judge's say on one row."""
    reasons = verdict_reasons(parsed.verdict, rules) if parsed.verdict is not None else [parsed.reason or JUDGE_UNPARSABLE]
    return JudgeResult(judge=judge, prompt_name=prompt_name, prompt_hash=prompt_hash, passed=not reasons,
                       reasons=reasons, verdict=parsed.verdict, detail=parsed.detail,
                       raw=None if parsed.verdict is not None or raw is None else raw[:RAW_CHARS],
                       finish_reason=finish_reason, usage=dict(usage or {}))


def passes(results: Sequence[JudgeResult], rule: str) -> bool:
    """Whether enough judges passed the row: any (one), majority (more than half), all. A judge without a verdict
    counts as not passing."""
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}: expected one of {', '.join(RULES)}")
    passed = sum(r.passed for r in results)
    if rule == "any":
        return passed >= 1
    if rule == "majority":
        return 2 * passed > len(results)
    return passed == len(results)


def combined_reasons(results: Sequence[JudgeResult]) -> list[str]:
    """The failing judges' reason codes, in judge order, each once."""
    return list(dict.fromkeys(code for r in results if not r.passed for code in r.reasons))


def majority(values: Sequence[bool], *, tie: bool) -> bool | None:
    """The judges' majority on a yes/no criterion (None without any); `tie` decides an even split."""
    if not values:
        return None
    yes = sum(values)
    return tie if 2 * yes == len(values) else 2 * yes > len(values)


def sound(verdict: JudgeVerdict) -> bool:
    """The criterion clinicians rate as 'reasoning sound': it supports its answer and no step is wrong."""
    return verdict.supports_answer and all(s.verdict != "wrong" for s in verdict.steps)


def unsafe(verdict: JudgeVerdict) -> bool:
    return bool(verdict.unsafe_advice)
