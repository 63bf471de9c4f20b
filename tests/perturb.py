"""Light rewrites of a question, as a contaminated or duplicated training set would hold them.

Used by the dedupe/decontaminate tests and by bench/dedupe.py to plant near-duplicates. Each function takes a
Question row (dict) and a `random.Random`, and returns a new row; none of them changes what is being asked.
"""

from __future__ import annotations

import random
import re
from typing import Any

FILLER = ("patient", "history", "normal", "left", "acute", "mild", "recent", "daily", "severe", "chronic")
VIGNETTE_BEFORE = ("A medical student preparing for the licensing examination reviews the following case with her "
                   "study group, who discuss each finding and the differential diagnosis at length before answering.")
VIGNETTE_AFTER = "Explain your reasoning step by step, then give the letter of the best answer."


def _with(row: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**row, **changes}


def surface(row: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """Case, whitespace and punctuation changes only."""
    words = row["question"].split()
    out = []
    for w in words:
        r = rng.random()
        if r < 0.15:
            w = w.upper()
        elif r < 0.3:
            w = w.lower()
        out.append(w)
    text = "  ".join(out).replace(",", " ,").replace("?", " ?!")
    return _with(row, question=text)


def reorder_options(row: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    texts = list(row["options"].values())
    for _ in range(10):
        rng.shuffle(texts)
        if texts != list(row["options"].values()) or len(set(texts)) < 2:
            break
    letters = list(row["options"])
    return _with(row, options=dict(zip(letters, texts)))


def change_words(row: dict[str, Any], rng: random.Random, k: int = 3) -> dict[str, Any]:
    """Replace k words of the stem (never the same position twice)."""
    words = row["question"].split()
    for pos in rng.sample(range(len(words)), min(k, len(words))):
        words[pos] = rng.choice(FILLER)
    return _with(row, question=" ".join(words))


def truncate(row: dict[str, Any], rng: random.Random, keep: float = 0.8) -> dict[str, Any]:
    """Drop the tail of the stem (keep the first `keep` share of its words)."""
    words = row["question"].split()
    return _with(row, question=" ".join(words[: max(1, int(len(words) * keep))]))


def embed(row: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The stem inside a longer vignette: a preamble before it and an instruction after."""
    return _with(row, question=f"{VIGNETTE_BEFORE} {row['question']} {VIGNETTE_AFTER}")


#: A sentence ends at . ! or ? followed by a space and a capital letter or digit ("9.8 g/dL" and "e.g. a" do not split).
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")


def sentences(text: str) -> list[str]:
    return _SENTENCE_END.split(text.strip())


def reorder_sentences(row: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The stem's sentences in another order (the closing question may move to the front, as rewriters do). A
    one-sentence stem is returned unchanged: recall is measured on the copies that changed."""
    parts = sentences(row["question"])
    if len(parts) < 2:
        return dict(row)
    order = list(range(len(parts)))
    while order == sorted(order):
        rng.shuffle(order)
    return _with(row, question=" ".join(parts[i] for i in order))


def perturbed_copies(items: list[dict[str, Any]], fn, rng: random.Random) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(item, rewritten copy) for each item whose copy differs from it: recall is measured on real rewrites only (a
    one-sentence stem cannot have its sentences moved, all-equal options cannot be reordered)."""
    pairs = [(item, fn(dict(item), rng)) for item in items]
    return [(item, c) for item, c in pairs if (c["question"], c["options"]) != (item["question"], item["options"])]


def strip_punctuation(text: str) -> str:
    return re.sub(r"[^\w\s]", "", text)


PERTURBATIONS = {
    "surface": surface,
    "reorder_options": reorder_options,
    "change_1_word": lambda row, rng: change_words(row, rng, 1),
    "change_3_words": lambda row, rng: change_words(row, rng, 3),
    "truncate": truncate,
    "embed": embed,
    "reorder_sentences": reorder_sentences,
}
