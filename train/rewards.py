"""Parsing a student completion strictly, and the GRPO rewards built on it (answer correctness, format).

One parser, `parse_completion`, decides what a completion says: the training format exactly,
`<think>\\n{reasoning}\\n</think>\\n<answer>{letter}</answer>`, or nothing. A completion that strays from it has no
answer (never a guess), so the correctness reward cannot be earned by a malformed output, and evaluation scores
the same way training rewarded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

TAGS = ("<think>", "</think>", "<answer>", "</answer>")
_STRICT = re.compile(r"<think>\n(?P<think>.*?)\n</think>\n<answer>(?P<answer>[A-Z])</answer>\s*", re.S)
# "the answer is B", "Answer: (B)", "final answer - B": the think block stating the final choice outright.
_ANSWER_STATEMENT = r"\banswer\s*(?:is|:|-|=)?\s*(?:option\s*)?\(?{letter}\)?(?![A-Za-z])"


@dataclass(frozen=True)
class Parsed:
    format_ok: bool
    think: str | None = None
    answer: str | None = None


def parse_completion(text: str) -> Parsed:
    """The strict parse: one think block, one answer tag holding one capital letter, nothing else around them."""
    if not isinstance(text, str) or any(text.count(tag) != 1 for tag in TAGS):
        return Parsed(False)
    match = _STRICT.fullmatch(text)
    if match is None or not match["think"].strip():
        return Parsed(False)
    return Parsed(True, match["think"], match["answer"])


def answer_leaked(parsed: Parsed) -> bool:
    """The think block already states the final answer (so the reasoning is an after-the-fact justification)."""
    if not parsed.format_ok:
        return False
    pattern = re.compile(_ANSWER_STATEMENT.format(letter=re.escape(parsed.answer)), re.I)
    return bool(pattern.search(parsed.think))


def collapsed(text: str) -> bool:
    """A degenerate generation: empty, or one token/character repeated over most of it."""
    stripped = (text or "").strip()
    if not stripped:
        return True
    words = stripped.split()
    if len(words) >= 8 and len(set(words)) / len(words) < 0.2:
        return True
    return len(stripped) >= 32 and len(set(stripped)) <= 2


def completion_text(completion: Any) -> str:
    """TRL hands completions as text (plain prompts) or as a list of messages (conversational prompts)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion:
        last = completion[-1]
        return last.get("content") or "" if isinstance(last, dict) else str(last)
    return ""


# ------------------------------------------------------------------ rewards in TRL's calling convention


def correctness_reward(completions: list[Any], answer: list[str], **kwargs: Any) -> list[float]:
    """1.0 when the strictly parsed answer equals the gold letter, else 0.0."""
    out = []
    for completion, gold in zip(completions, answer):
        parsed = parse_completion(completion_text(completion))
        out.append(1.0 if parsed.format_ok and parsed.answer == gold else 0.0)
    return out


def format_reward(completions: list[Any], log_metric: Any = None, **kwargs: Any) -> list[float]:
    """1.0 for the exact training format, else 0.0. Also logs the stability signals read by `evaluate` and the
    run-health monitors: the share of completions with no parsable answer (format collapse), of collapsed
    generations and of answers leaked into the think block (TRL averages them per logging step)."""
    texts = [completion_text(c) for c in completions]
    parsed = [parse_completion(t) for t in texts]
    if log_metric is not None and texts:
        log_metric("completions/no_answer_share", sum(1 for p in parsed if p.answer is None) / len(texts))
        log_metric("completions/collapsed_share", sum(map(collapsed, texts)) / len(texts))
        log_metric("completions/answer_leak_share", sum(map(answer_leaked, parsed)) / len(texts))
    return [1.0 if p.format_ok else 0.0 for p in parsed]


REWARD_FUNCS = {"correctness": correctness_reward, "format": format_reward}
