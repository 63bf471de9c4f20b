"""The `surrogate` policy: each finding becomes a realistic fake value of its type, so training text stays natural
(as the PhysioNet corpus itself is released): names from the multinational name lists, places from the city list,
dates shifted by one offset per text (intervals between dates survive), phones and ids with the same shape.

Deterministic: the values depend on the seed and the text they are made for only (the scrub stage gives one row's
texts together), and the same original gets the same surrogate everywhere in it ("Dr Healey ... healey aware" ->
"Dr Okafor ... okafor aware", in the question and in the completion alike).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import random
import re

from curate.scrub.allow_list import cities, family_names, given_names

_NUMERIC_DATE = re.compile(r"^(\d{1,2})([/\-.])(\d{1,2})(?:\2(\d{2}|\d{4}))?$")
_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december"]


@functools.lru_cache(maxsize=1)
def _pools() -> tuple[list[str], list[str], list[str]]:
    def usable(words):
        return sorted(w for w in words if w.isalpha() and 4 <= len(w) <= 10)

    return usable(given_names()), usable(family_names()), sorted(c for c in cities() if c.replace(" ", "").isalpha())


def _case_like(value: str, original: str) -> str:
    letters = [c for c in original if c.isalpha()]
    if letters and all(c.isupper() for c in letters):
        return value.upper()
    if letters and all(c.islower() for c in letters):
        return value.lower()
    return " ".join(w[:1].upper() + w[1:] for w in value.split(" "))


class Surrogates:
    """Fake values for the findings of one text, or of one row's texts (`text` is then all of them joined)."""

    def __init__(self, seed: int, text: str) -> None:
        digest = hashlib.sha256(f"{seed}\0{text}".encode()).digest()
        self.rng = random.Random(digest)
        self.shift = self.rng.randint(-120, 120) or 7  # days, one offset per text
        self.memo: dict[tuple[str, str], str] = {}
        self.words: dict[str, str] = {}

    def apply(self, text: str, findings) -> str:
        from curate.scrub.engine import replace_spans

        return replace_spans(text, findings, self.value)

    def value(self, original: str, entity: str) -> str:
        key = (entity, original.lower())
        if key not in self.memo:
            self.memo[key] = self._make(original, entity)
        return self.memo[key]

    def _make(self, original: str, entity: str) -> str:
        given, family, places = _pools()
        if entity == "PERSON":
            # word by word, so that "Radu Crosson" and a later "Radu" get the same first name
            words = re.findall(r"[A-Za-z][A-Za-z'’\-]*|[^A-Za-z]+", original)
            out, first = [], True
            for word in words:
                if not word[0].isalpha():
                    out.append(word)
                    continue
                if len(word) == 1:
                    out.append(self.rng.choice("ABCDEFGHJKLMNPRSTW"))
                    continue
                low = word.lower()
                if low not in self.words:
                    self.words[low] = self.rng.choice(given if first and low in given_names() else family)
                out.append(_case_like(self.words[low], word))
                first = False
            return "".join(out)
        if entity == "LOCATION":
            return _case_like(self.rng.choice(places), original)
        if entity == "DATE":
            return self._date(original)
        if entity == "AGE":
            return str(self.rng.randint(90, 99))
        return self._same_shape(original)

    def _date(self, original: str) -> str:
        match = _NUMERIC_DATE.match(original.strip())
        if match:
            month, sep, day, year = match.groups()
            try:
                base = dt.date(2000 if year is None else _year(year), int(month), int(day))
            except ValueError:
                return self._same_shape(original)
            new = base + dt.timedelta(days=self.shift)
            out = f"{new.month}{sep}{new.day}"
            if year is not None:
                out += f"{sep}{str(new.year)[-len(year):]}"
            return out
        low = original.lower()
        for i, name in enumerate(_MONTHS):
            if name[:3] in low:
                day = re.search(r"\d{1,2}", original)
                base = dt.date(2000, i + 1, min(int(day.group()), 28) if day else 15)
                new = base + dt.timedelta(days=self.shift)
                text = f"{_MONTHS[new.month - 1].title()} {new.day}" if day else _MONTHS[new.month - 1].title()
                return _case_like(text, original)
        return self._same_shape(original)

    def _same_shape(self, original: str) -> str:
        """Digits become other digits, letters other letters; separators stay ("(617) 555-0142")."""
        out = []
        for c in original:
            if c.isdigit():
                out.append(str(self.rng.randint(0, 9)))
            elif c.isalpha():
                letter = self.rng.choice("abcdefghjkmnpqrstuvwxyz")
                out.append(letter.upper() if c.isupper() else letter)
            else:
                out.append(c)
        return "".join(out)


def _year(text: str) -> int:
    year = int(text)
    return year if len(text) == 4 else 1900 + year if year > 30 else 2000 + year
