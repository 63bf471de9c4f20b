"""Score a scrubber on notes with gold PHI spans (the PhysioNet deid convention of ../shared/data/phi/README.md).

Text is split into alphanumeric tokens (`[A-Za-z0-9]+`). A gold token is caught when none of its characters is
left in the scrubbed text; a non-PHI token is changed when any of its characters is gone. Which characters are left
comes from aligning the original and the scrubbed text (difflib), with every placeholder (`<PERSON>`, philter's
`*`) first collapsed to one character that occurs in no note, so that the letters of a placeholder are never taken
for surviving letters of the name it replaced ("DR SMITH" -> "DR <PERSON>" would otherwise keep the "S").

The split of patients into tuning and held-out parts is a fixed rule (`held_out`), so every figure says which part
it was measured on.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

TOKEN = re.compile(r"[A-Za-z0-9]+")
#: Gold categories that HIPAA Safe Harbor requires removed (a year alone is allowed: DateYear is in neither set).
SAFE_HARBOR = ("Date", "Location", "PTName", "PTNameInitial", "RelativeProxyName", "Phone", "Age", "Other")
PROVIDER = ("HCPName",)
_MASK = re.compile(r"<[A-Z][A-Z_]*>|\*+|\[[A-Z][A-Z_]*\]")
_GAP = "\x00"
#: The held-out rule: a patient is held out when the first byte of sha256("curate-phi-holdout:<patient>") is below
#: 64 (about a quarter of the patients; 25 of the 82 in notes.dev.jsonl, 273 of its 891 notes).
HOLDOUT_SALT = "curate-phi-holdout:"


def held_out(patient: object) -> bool:
    return hashlib.sha256(f"{HOLDOUT_SALT}{patient}".encode()).digest()[0] < 64


def surviving(original: str, scrubbed: str) -> list[bool]:
    """For each character of `original`: is it still in `scrubbed` (aligned, placeholders collapsed)?"""
    masked = _MASK.sub(_GAP, scrubbed)
    kept = [False] * len(original)
    matcher = difflib.SequenceMatcher(None, original, masked, autojunk=False)
    for block in matcher.get_matching_blocks():
        for i in range(block.a, block.a + block.size):
            kept[i] = True
    return kept


@dataclass
class Score:
    """Token counts per gold category and for non-PHI tokens."""

    gold: Counter = field(default_factory=Counter)
    caught: Counter = field(default_factory=Counter)
    clean: int = 0
    changed: int = 0
    notes: int = 0

    def add(self, text: str, spans: Iterable, scrubbed: str) -> None:
        kept = surviving(text, scrubbed)
        category = [None] * len(text)
        for start, end, cat, *_ in spans:
            for i in range(start, end):
                category[i] = cat
        self.notes += 1
        for m in TOKEN.finditer(text):
            cats = {category[i] for i in range(m.start(), m.end())} - {None}
            left = any(kept[m.start():m.end()])
            if cats:
                cat = sorted(cats)[0]
                self.gold[cat] += 1
                self.caught[cat] += not left
            else:
                self.clean += 1
                self.changed += not all(kept[m.start():m.end()])

    def recall(self, categories: Iterable[str]) -> float:
        cats = list(categories)
        n = sum(self.gold[c] for c in cats)
        return sum(self.caught[c] for c in cats) / n if n else float("nan")

    @property
    def changed_share(self) -> float:
        return self.changed / self.clean if self.clean else 0.0

    def summary(self) -> dict:
        return {
            "notes": self.notes,
            "safe_harbor_recall": self.recall(SAFE_HARBOR),
            "safe_harbor_tokens": sum(self.gold[c] for c in SAFE_HARBOR),
            "provider_recall": self.recall(PROVIDER),
            "provider_tokens": sum(self.gold[c] for c in PROVIDER),
            "non_phi_changed": self.changed_share,
            "non_phi_tokens": self.clean,
            "per_category": {c: (self.caught[c], self.gold[c]) for c in sorted(self.gold)},
        }


def score(notes: Iterable[dict], scrubbed: Iterable[str]) -> Score:
    """Score scrubbed texts against notes (`text`, `spans` = [[start, end, category, value]])."""
    result = Score()
    for note, out in zip(notes, scrubbed):
        result.add(note["text"], note["spans"], out)
    return result
