"""Format and quality checks on one trace, each with its own reason code.

The answer itself is parsed in `extract.py`; these checks look at the shape of the response: was it cut off, is there
a real reasoning trace, is it too long, does it loop, is it English, is it a refusal or a hedge, and (for the
rationalisation prompt, which shows the teacher the gold answer) does the reasoning admit it was given the answer.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter

from pydantic import ConfigDict

from curate.filter.extract import NO_ANSWER, Extraction
from curate.filter.reasons import (
    ANSWER_LEAK,
    EMPTY_REASONING,
    HEDGING,
    NON_ENGLISH,
    REFUSAL,
    REPETITION,
    SHORT_REASONING,
    TOO_LONG,
    TRUNCATED,
    UNCLOSED_THINK,
)
from curate.stage import StageConfig, option


class CheckConfig(StageConfig):
    """Thresholds of the checks: the filter's config extends these (its CLI flags and `[filter]` keys)."""

    model_config = ConfigDict(frozen=True)

    max_tokens: int = option(8192, "reject responses longer than this (server token count, else an estimate)", ge=1)
    min_reasoning_words: int = option(15, "reasoning shorter than this is 'short_reasoning'", ge=0)
    repeat_sentence_times: int = option(4, "a sentence of >= repeat_min_chars characters seen this often is a loop",
                                        ge=2, cli=False)
    repeat_min_chars: int = option(40, "length of a sentence whose repeats make a loop", ge=1, cli=False)
    repeat_compress_ratio: float = option(0.2, "the last 2000 characters compressing below this is a loop", gt=0,
                                          lt=1, cli=False)
    non_ascii_letter_share: float = option(0.08, "share of non-ASCII letters that makes a text non-English", gt=0,
                                           le=1, cli=False)
    rationalisation_marker: str = option("rational", "a prompt name containing this (rationalize) showed the teacher "
                                         "the answer", cli=False)


# ---------------------------------------------------------------- token estimate


def estimate_tokens(text: str) -> int:
    """A cheap token count: whitespace-separated words (counted as spaces and newlines) x 4/3 (subword tokenizers
    average ~1.3 tokens per English word; no tokenizer download). Within ~15% of real counts on English prose, which
    is all a length cap needs."""
    return ((text.count(" ") + text.count("\n") + 1) * 4 + 2) // 3


# ---------------------------------------------------------------- individual checks

_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def has_repetition(text: str, config: CheckConfig = CheckConfig()) -> bool:
    """A degenerate loop: one long sentence repeated many times, or a tail that compresses like a loop does.

    zlib is the cheap loop detector: English prose compresses to ~35-50% of its size, a text going round in circles
    to well under 20%."""
    if len(text) < 200:
        return False
    # str.split is ~10x faster than a regex split; newlines count as sentence ends.
    counts = Counter(text.lower().replace("\n", ". ").split(". "))  # Counter over a list counts in C
    for sentence, count in counts.most_common(20):
        if count < config.repeat_sentence_times:
            break
        if len(sentence) >= config.repeat_min_chars:
            return True
    tail = text[-2000:].encode("utf-8", "replace")
    return len(tail) >= 1000 and len(zlib.compress(tail, 1)) / len(tail) < config.repeat_compress_ratio


#: The commonest English words: together ~15% of the words of English prose (medical prose included), ~0% of other
#: languages' prose. Counting five of them is enough and keeps the check cheap.
_ENGLISH_WORDS = (" the ", " of ", " and ", " to ", " is ")


def is_non_english(text: str, config: CheckConfig = CheckConfig()) -> bool:
    """Mostly non-English: many letters outside ASCII (CJK, Cyrillic...), or Latin text with almost no English
    function words (Spanish, German...). Medical terms and formulae keep English text well inside both limits."""
    if not text.isascii():
        foreign = sum(1 for c in _NON_ASCII.findall(text) if c.isalpha())
        if foreign > config.non_ascii_letter_share * len(text):
            return True
    head = " " + text[:3000].lower().replace("\n", " ") + " "
    words = head.count(" ") - 1
    if words < 40:
        return False
    english = sum(head.count(w) for w in _ENGLISH_WORDS)
    return english / words < 0.03


_REFUSAL = re.compile(
    r"(?i)\b(?:I(?:'m| am)\s+(?:sorry|unable|not able)|I\s+(?:cannot|can't|can\s+not|won't)\s+(?:assist|help|answer|provide"
    r"|comply|give)|as\s+an\s+AI(?:\s+language\s+model)?|I\s+(?:must|have\s+to)\s+decline|consult\s+a\s+(?:doctor|physician"
    r"|healthcare))"
)
_HEDGE = re.compile(
    r"(?i)\b(?:none\s+of\s+the\s+(?:above|options|choices|given)|all\s+of\s+the\s+(?:above|options)|cannot\s+be\s+determined"
    r"|can(?:not|'t)\s+(?:be\s+)?(?:determine|definitively|conclusively)|impossible\s+to\s+(?:determine|say|tell)"
    r"|not\s+(?:listed|present|included)\s+(?:among|in)\s+the|insufficient\s+(?:information|data)|not\s+enough\s+information"
    r"|difficult\s+to\s+(?:determine|say)|more\s+information\s+(?:is\s+)?needed|depends\s+on)"
)
_LEAK = re.compile(
    r"(?i)\b(?:(?:the|this)\s+(?:given|provided|stated|supplied|expected|known|reference|target)\s+(?:correct\s+)?answer"
    r"|(?:we|I)(?:'re|'m|\s+am|\s+are|\s+was|\s+were)?\s+(?:told|given|shown|provided)\s+(?:that\s+)?the\s+(?:correct\s+)?answer"
    r"|answer\s+key|gold(?:en)?\s+(?:answer|label)|(?:work(?:ing)?|reason(?:ing)?)\s+backwards?\s+from\s+the\s+answer"
    r"|the\s+(?:correct\s+)?answer\s+(?:is|was|has\s+been)\s+(?:given|provided|stated|supplied|revealed|marked)"
    r"|as\s+(?:given|stated|indicated|provided)\s+in\s+the\s+(?:prompt|question|instructions|task)"
    r"|since\s+(?:we\s+know\s+)?the\s+(?:correct\s+)?answer\s+is\s+(?:known|given|provided)"
    r"|given\s+that\s+the\s+correct\s+answer\s+is"
    r"|(?:question|prompt|problem|task|user)\s+(?:states|says|tells\s+(?:us|me)|indicates|notes)\s+(?:that\s+)?the\s+"
    r"(?:correct\s+)?answer"
    r"|justify\s+the\s+(?:given|correct|provided)\s+answer)"
)


def is_refusal(text: str) -> bool:
    return _REFUSAL.search(text[:600]) is not None or _REFUSAL.search(text[-600:]) is not None


def is_hedging(text: str) -> bool:
    return _HEDGE.search(text[-1500:]) is not None


def leaks_answer(reasoning: str) -> bool:
    """The reasoning admits it was shown the answer (only meaningful for the rationalisation prompt)."""
    return _LEAK.search(reasoning) is not None


# ---------------------------------------------------------------- all checks on one trace


def check_trace(
    *,
    completion: str,
    extraction: Extraction,
    finish_reason: str | None = None,
    completion_tokens: int | None = None,
    prompt_name: str = "",
    config: CheckConfig = CheckConfig(),
) -> list[str]:
    """Format and quality reason codes for one response (answer correctness is judged by the caller)."""
    reasons: list[str] = []
    if finish_reason == "length":
        reasons.append(TRUNCATED)
    if extraction.think == "unclosed":
        reasons.append(UNCLOSED_THINK)
    reasoning = extraction.reasoning
    words = len(reasoning.split())
    if words == 0:
        reasons.append(EMPTY_REASONING)
    elif words < config.min_reasoning_words:
        reasons.append(SHORT_REASONING)
    tokens = completion_tokens if completion_tokens else estimate_tokens(completion)
    if tokens > config.max_tokens:
        reasons.append(TOO_LONG)
    if has_repetition(reasoning, config):
        reasons.append(REPETITION)
    if is_non_english(completion, config):
        reasons.append(NON_ENGLISH)
    if config.rationalisation_marker and config.rationalisation_marker in (prompt_name or "").lower():
        if leaks_answer(reasoning):
            reasons.append(ANSWER_LEAK)
    if extraction.letter is None:
        # A refusal or a hedge is the more useful name for "no answer"; other extraction reasons stand as they are.
        code = extraction.reason or NO_ANSWER
        if code == NO_ANSWER and is_refusal(completion):
            code = REFUSAL
        elif code == NO_ANSWER and is_hedging(completion):
            code = HEDGING
        reasons.append(code)
    return reasons
