"""Text normalisation for duplicate and leak detection: one home for what "the same text" means.

Case, Unicode compatibility forms, punctuation and whitespace never make two questions different, and neither does
the order of their options. Everything that compares question text (dedupe, decontaminate) goes through here,
including the one similarity that ignores word order (`reordered_similarity`: a rewrite that moved its sentences).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from curate.records import stable_hash

# Anything that is not a letter or a digit separates words ("_" counts as punctuation here, unlike in \w).
_NON_WORD = re.compile(r"[\W_]+")


# ASCII fast path (most questions): every character but a-z, A-Z, 0-9 becomes a space; same result as the regex.
_ASCII_TABLE = str.maketrans({chr(c): " " for c in range(128) if not chr(c).isalnum()})


def normalize(text: str | None) -> str:
    """Lower case (casefold), NFKC, punctuation to spaces, whitespace collapsed: 'Dx  of  M.I.?' -> 'dx of m i'."""
    if not text:
        return ""
    if text.isascii():
        return " ".join(text.translate(_ASCII_TABLE).lower().split())
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_NON_WORD.sub(" ", text).split())


@dataclass(frozen=True)
class QuestionText:
    """A question's comparable parts, each normalised; options sorted so their order does not matter."""

    stem: str
    options: tuple[str, ...]
    context: str

    @property
    def key(self) -> str:
        """Exact-duplicate key: equal for questions that differ only in case, spacing, punctuation, option order."""
        return stable_hash(self.stem, self.options, self.context)

    @property
    def full(self) -> str:
        """Stem, sorted options, then context: the text near-duplicate search compares."""
        return " ".join(part for part in (self.stem, " ".join(self.options), self.context) if part)

    # Computed once per question (a row is compared with several candidates); a frozen dataclass still has a
    # __dict__ for cached_property to fill.
    @cached_property
    def stem_words_sorted(self) -> str:
        return sorted_words(self.stem)

    @cached_property
    def full_words_sorted(self) -> str:
        return sorted_words(self.full)


def sorted_words(text: str) -> str:
    """The words of a normalised text in sorted order: what `reordered_similarity` compares."""
    return " ".join(sorted(text.split()))


def reordered_similarity(a_sorted: str, b_sorted: str, cutoff: float = 0.0) -> float:
    """Similarity of two texts whatever the order of their words (0..1), given `sorted_words` of each: rapidfuzz's
    token-sort ratio (the Indel ratio of the sorted words; sorting once per text instead of once per pair). A
    rewrite with its sentences moved ("Which is the most likely diagnosis? A 45-year-old man ...") scores as a copy
    does, where the plain ratio drops to ~0.5-0.7. Scores under `cutoff` come back as 0."""
    from rapidfuzz import fuzz

    return fuzz.ratio(a_sorted, b_sorted, score_cutoff=cutoff * 100) / 100.0


def option_texts(options: Any) -> list[str]:
    """Option texts from a {letter: text} dict (nulls dropped) or a plain list."""
    if isinstance(options, dict):
        return [str(v) for v in options.values() if v is not None]
    if isinstance(options, (list, tuple)):
        return [str(v) for v in options if v is not None]
    return []


def question_text(row: dict[str, Any]) -> QuestionText:
    """The normalised parts of a row that carries a question (`question`, `options`, `context`)."""
    options = sorted(o for o in (normalize(t) for t in option_texts(row.get("options"))) if o)
    return QuestionText(stem=normalize(row.get("question")), options=tuple(options), context=normalize(row.get("context")))


def option_overlap(options: tuple[str, ...] | list[str], reference: tuple[str, ...] | list[str], *, cutoff: float = 90) -> float:
    """Share of `reference` options (normalised) that have a counterpart in `options` (equal, or rapidfuzz ratio >=
    `cutoff`): 1.0 for the same options in any order, 0.0 for unrelated ones."""
    from rapidfuzz import fuzz, process

    if not reference:
        return 0.0
    pool = set(options)
    found = 0
    for ref in reference:
        if ref in pool or (pool and process.extractOne(ref, pool, scorer=fuzz.ratio, score_cutoff=cutoff)):
            found += 1
    return found / len(reference)
