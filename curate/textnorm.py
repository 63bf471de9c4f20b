"""Text normalisation for duplicate and leak detection: one home for what "the same text" means.

Case, Unicode compatibility forms, punctuation and whitespace never make two questions different, and neither does
the order of their options. Everything that compares question text (dedupe, decontaminate) goes through here.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
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
