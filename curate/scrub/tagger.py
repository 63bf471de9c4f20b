"""A learned token tagger beside the rules: a linear-chain CRF (python-crfsuite) over word tokens, trained on notes
with gold PHI spans (the shared JSONL span format of ../shared/data/phi/README.md). A token is PHI when the CRF's
marginal probability of "not PHI" is below 1 - threshold; the engine changes a token when the rules or the tagger
find it.

Features (issue 23, what mattered in the prototype): the lower-cased word, its shape, prefix and suffix, the words
+-2, the project's own name, place, drug and word-frequency lists (curate/scrub/data), the previous word and its
shape, the shape of the whole whitespace chunk (dates such as "10/03/10"), whether the token is glued to the one
before.

What the tagger finds is widened to whole words (never a cut inside "Behçet's") and passed through the same medical
checks as the rules' NER findings (eponyms, drugs, allowed places); a lone capital letter is never a name on its own
(an option letter).
"""

from __future__ import annotations

import functools
import gzip
import re
from dataclasses import dataclass
from pathlib import Path

#: Word tokens: runs of letters, runs of digits, single other characters (whitespace skipped).
TOKEN = re.compile(r"[^\W\d_]+|\d+|[^\w\s]|_")
_WORD = re.compile(r"[^\W_]+")
#: Gold category -> the entity type the tagger labels it (DateYear: a year alone is not Safe Harbor PHI).
LABELS = {"HCPName": "PERSON", "PTName": "PERSON", "PTNameInitial": "PERSON", "RelativeProxyName": "PERSON",
          "Location": "LOCATION", "Date": "DATE", "Phone": "PHONE", "Age": "AGE", "Other": "ID"}
OUTSIDE = "O"
#: The shipped model (curate/scrub/data/LICENSES.md): trained on the PhysioNet deid development notes.
DEFAULT_MODEL = "phi_tagger.crfsuite.gz"
FEATURE_VERSION = "1"


def tokens(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in TOKEN.finditer(text)]


def shape(word: str) -> str:
    """Xx, XX, dd, x/x... : each run of one character class written once (long words and short ones alike)."""
    out = []
    for c in word:
        k = "X" if c.isupper() else "x" if c.isalpha() else "d" if c.isdigit() else c
        if not out or out[-1] != k:
            out.append(k)
    return "".join(out)[:12]


@functools.lru_cache(maxsize=1)
def _lists():
    from curate.scrub import allow_list as a

    return dict(first={n.lower() for n in a.first_names()}, last={n.lower() for n in a.last_names()},
                given=a.given_names(), family=a.family_names(), city=a.cities(),
                town={t for t in a.towns() if " " not in t}, dict=a.dictionary_words(), term=a.clinical_terms(),
                allow=a.allow_words(), rank=a.english_rank())


@functools.lru_cache(maxsize=200_000)
def word_features(word: str) -> tuple[str, ...]:
    """The features of a token by itself (cached: words repeat)."""
    lists, low = _lists(), word.lower()
    feats = [f"w={low}", f"sh={shape(word)}", f"p3={low[:3]}", f"s3={low[-3:]}", f"len={min(len(word), 8)}"]
    if word.isalpha():
        for name in ("first", "last", "given", "family", "city", "town", "dict", "term", "allow"):
            if low in lists[name]:
                feats.append(f"in={name}")
        rank = lists["rank"].get(low)
        feats.append("rank=" + ("none" if rank is None else "1k" if rank < 1000 else "10k" if rank < 10_000 else "60k"))
    return tuple(feats)


def features(text: str, spans: list[tuple[int, int]]) -> list[list[str]]:
    """One feature list per token."""
    words = [text[s:e] for s, e in spans]
    n, out = len(words), []
    chunk_shape: dict[tuple[int, int], str] = {}
    for m in re.finditer(r"\S+", text):
        chunk_shape[m.span()] = shape(m.group())[:16]
    chunk_of = []
    chunks = iter(sorted(chunk_shape))
    current = next(chunks, None)
    for s, _ in spans:
        while current is not None and current[1] <= s:
            current = next(chunks, None)
        chunk_of.append(chunk_shape.get(current, "") if current else "")
    for i, (s, _) in enumerate(spans):
        f = list(word_features(words[i]))
        f.append(f"chunk={chunk_of[i]}")
        f.append("glued" if s > 0 and not text[s - 1].isspace() else "spaced")
        if s == 0 or text[s - 1] == "\n":
            f.append("linestart")
        for d in (-2, -1, 1, 2):
            j = i + d
            f.append(f"w{d:+d}={words[j].lower() if 0 <= j < n else '#'}")
        if i > 0:
            f.append(f"sh-1={shape(words[i - 1])}")
            f.append(f"w-1|w={words[i - 1].lower()}|{words[i].lower()}")
        if i + 1 < n:
            f.append(f"sh+1={shape(words[i + 1])}")
        out.append(f)
    return out


def labels(text: str, spans: list[tuple[int, int]], gold) -> list[str]:
    """The gold label of each token: the entity of a gold span it overlaps, else O."""
    mark = [OUTSIDE] * len(text)
    for start, end, category, *_ in gold:
        entity = LABELS.get(category)
        if entity:
            for k in range(start, end):
                mark[k] = entity
    return [next((mark[k] for k in range(s, e) if mark[k] != OUTSIDE), OUTSIDE) for s, e in spans]


# ---------------------------------------------------------------- tagging


@dataclass
class Tagger:
    """A loaded CRF model: `find(text, threshold)` gives (start, end, entity) findings."""

    crf: object
    #: the model bytes: crfsuite reads them in place, so they must live as long as the tagger.
    data: bytes = b""

    @classmethod
    def load(cls, path: str | Path) -> Tagger:
        import pycrfsuite

        raw = Path(path).read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        crf = pycrfsuite.Tagger()
        crf.open_inmemory(raw)
        return cls(crf, raw)

    def probabilities(self, text: str) -> tuple[list[tuple[int, int]], list[float], list[str]]:
        """The tokens, each one's probability of being PHI, and its most likely entity type."""
        spans = tokens(text)
        if not spans:
            return [], [], []
        crf = self.crf
        crf.set(features(text, spans))
        entities = [label for label in crf.labels() if label != OUTSIDE]
        probs, kinds = [], []
        for i in range(len(spans)):
            p = {label: crf.marginal(label, i) for label in entities}
            best = max(p, key=p.get) if p else OUTSIDE
            probs.append(1.0 - crf.marginal(OUTSIDE, i))
            kinds.append(best)
        return spans, probs, kinds

    def find(self, text: str, threshold: float) -> list[tuple[int, int, str]]:
        return select(text, *self.probabilities(text), threshold)


#: A common word ("syndrome", "for", "Mesangial") that is on no name list is PHI only when the tagger is this sure:
#: the CRF spreads a little probability along a whole phrase before a name, and a low threshold would take it.
COMMON_WORD_THRESHOLD = 0.5
_MONTH_WORDS = frozenset(
    "january february march april may june july august september october november december jan feb mar apr jun jul "
    "aug sep sept oct nov dec st nd rd th of".split())


#: The tagger reads a word's context; in a text shorter than this many words (an answer option, a heading) it has
#: none and guesses from the word alone, so it is not run (the rules still are).
MIN_WORDS = 8


def select(text: str, spans, probs, kinds, threshold: float) -> list[tuple[int, int, str]]:
    """The findings of a text from its tokens' PHI probabilities: tokens above the threshold, widened to whole words
    and joined, then the spans that are medicine, a year alone or a number pair that is no date dropped. A word
    must also read as an identifier: in text written in mixed case a name or place is capitalised; a common word on
    no name list ("syndrome", "Doctor", "True") needs the tagger SURE (COMMON_WORD_THRESHOLD in text of one case) and
    never starts a sentence; in mixed case any word needs COMMON_WORD_THRESHOLD;
    a word in a date must be a month."""
    lists = _lists()
    if sum(1 for s, e in spans if text[s:e].isalnum()) < MIN_WORDS:
        return []
    mixed = _mixed_case(text)
    flagged = []
    for (s, e), p, k in zip(spans, probs, kinds):
        if p <= threshold:
            continue
        word = text[s:e]
        if k in ("PERSON", "LOCATION") and not any(c.isalpha() for c in word):
            continue  # a number is no name or place
        if mixed and k in ("PERSON", "LOCATION") and word.isupper() and len(word) <= 5:
            continue  # an acronym in text written in mixed case ("PPH", "FiO2", "ZOE")
        if word.isalpha():
            low = word.lower()
            if k == "DATE" and low not in _MONTH_WORDS:
                continue
            if mixed and not word[0].isupper():
                continue
            if _common(low, lists) and p <= (SURE if mixed else COMMON_WORD_THRESHOLD):
                continue
            if mixed and p <= COMMON_WORD_THRESHOLD:
                continue  # in prose, where a capital marks a name, a low probability is a guess ("Vibrio", "Pons")
            if _sentence_start(text, s) and _common(low, lists):
                continue  # "Spring back in bending", "Calcium pyrophosphate": a common word that starts a sentence
            if p <= SURE and _sentence_start(text, s) and not _listed(low, lists):
                continue  # "A. Mesangial proliferation": a capital that only starts a sentence or an option
        flagged.append((s, e, k))
    return medical_checks(text, widen(text, flagged))


def _mixed_case(text: str) -> bool:
    """Written in mixed case (capitals carry meaning), not all capitals or all lower case."""
    upper = sum(1 for c in text if c.isupper())
    lower = sum(1 for c in text if c.islower())
    return lower > 0 and upper > 0 and upper < 0.5 * lower


#: How sure the tagger must be of a word on no name or place list that starts a sentence.
SURE = 0.9


def _sentence_start(text: str, start: int) -> bool:
    before = text[max(0, start - 3):start].rstrip(" \t")
    return not before or before[-1] in ".:;!?\n(\""


def _listed(low: str, lists: dict) -> bool:
    return not _common(low, lists) and any(low in lists[name] for name in ("given", "family", "first", "last", "city",
                                                                          "town"))


def _common(low: str, lists: dict) -> bool:
    """A very frequent English word ("an", "he", "true", "human"), or a frequent or dictionary word or clinical term
    that is no Census first or last name."""
    rank = lists["rank"].get(low, 10**9)
    if rank < 5_000:
        return True
    if low in lists["first"] or low in lists["last"]:
        return False
    return rank < 20_000 or low in lists["dict"] or low in lists["term"]


def widen(text: str, flagged: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Flagged tokens widened to whole words, neighbours of one entity type on one line joined into one span
    ("Nevada" and "6" of "Nevada 6 months" stay apart, each then checked on its own)."""
    out: list[list] = []
    for start, end, entity in flagged:
        while start > 0 and _WORD.match(text[start - 1]) and _WORD.match(text[start]):
            start -= 1
        while end < len(text) and _WORD.match(text[end]) and _WORD.match(text[end - 1]):
            end += 1
        if not text[start:end].strip(".,;:()-/'\"[] \t"):
            continue  # punctuation alone is no identifier
        if out and start <= out[-1][1] + 1 and "\n" not in text[out[-1][1]:start] and \
                (entity == out[-1][2] or start < out[-1][1]):
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end, entity])
    return [tuple(s) for s in out]  # type: ignore[misc]


_LONE_LETTER = re.compile(r"[A-Za-z]\.?")
_YEAR = re.compile(r"(?:1[89]|20)\d\d")
_YEAR_RANGE = re.compile(r"(?:1[89]|20)\d\d\s*[-–]\s*(?:1[89]|20)\d\d|\d{4}-(?:1[89]|20)\d\d\b")
_DATE_SHAPE = re.compile(r"(?i)\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)|"
                         r"(?<!\d)(?:0?[1-9]|1[0-2])\s*[/\-.]\s*(?:0?[1-9]|[12]\d|3[01])(?!\d)")
#: A fraction beside a decimal or a percentage is arithmetic: "0.625 is 5/8", "4/23 (17.4%)".
_DECIMAL_BEFORE = re.compile(r"\d\.\d+\s*(?:is|=|or|of|and|,)?\s*\(?$")
_PERCENT_AFTER = re.compile(r"\s*[(=]?\s*\d+(?:\.\d+)?\s*%")
_NUMBER_PAIR = re.compile(r"(\d{1,2})\s*([/-])\s*(\d{1,2})")
#: "Curve of Wilson", "Circle of Willis", "Tetralogy of Fallot": a name after "<noun> of" is an eponym, unless the
#: noun is a person's relation ("wife of John").
_NOUN_OF = re.compile(r"\b([A-Za-z]+)\s+of\s+(?:the\s+)?$")
#: The second word after a name: an eponym's head word there ("Cherry red spot") makes the name medicine.
_HEAD_NEAR = re.compile(r"(?:['’]s)?[\s\-]+[a-z]+\s+([A-Za-z]+)\b")
_RELATIONS = frozenset("wife husband son daughter mother father brother sister friend care home family niece nephew "
                       "aunt uncle grandson granddaughter partner widow cousin name names".split())


def medical_checks(text: str, found: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """The tagger's findings less medical language: eponyms and listed terms (as for the rules' NER findings), a
    lone letter (an option letter, "vitamin K"), a year alone (Safe Harbor allows it), a month and year without a day
    ("(AIIMS May 2015)", as the rules read it), and a number pair that the rules would not take for a date (a murmur
    2/6, GCS 6/15, "5/8" in arithmetic, a range "4-6 hours")."""
    from curate.scrub.allow_list import EPONYM_HEADS, allow_words, clinical_terms, is_allowed_place, is_medical_name
    from curate.scrub.patterns import _DATE_CUE_BEFORE, _bare_month_day

    terms, allowed, heads = clinical_terms(), allow_words(), frozenset(EPONYM_HEADS)
    kept = []
    for start, end, entity in found:
        span, after, before = text[start:end], text[end:end + 40], text[max(0, start - 40):start]
        words = re.findall(r"[^\W\d_]+", span.lower())
        if _LONE_LETTER.fullmatch(span.strip()):
            continue
        if words and all(w in terms or w in allowed for w in words):
            continue
        if is_medical_name(span, after) or is_allowed_place(span, after) or (words and words[-1] in EPONYM_HEADS):
            continue
        if entity == "DATE" and not _DATE_SHAPE.search(span) and not (_YEAR.fullmatch(span) and
                                                                       _glued_date(text, start, end)):
            continue  # no month and no month/day: a number or a range ("200*(5/8)", "70-120") is no date
        if entity == "PHONE" and (len(re.sub(r"\D", "", span)) < 4 or _YEAR_RANGE.search(span)):
            continue  # "416 CrPC": a section number; "1975-1990", "ISO 6876-2001": years
        if entity == "DATE" and (re.search(r"\d[.,]\d", span) or re.search(r"\d(?:st|nd|rd|th)\b", span)
                                 and "/" in span):
            continue  # "0.9–9.7" (a decimal range), "3/4th" (a fraction)
        if entity in ("PERSON", "LOCATION") and _HEAD_NEAR.match(after) and \
                _HEAD_NEAR.match(after).group(1).lower() in heads:
            continue  # "Cherry red spot", "Edinburgh depression scale", "Dunlop's beta hypothesis"
        if re.search(r"\b(?:St|Saint)\.?\s+$", before) and re.match(r"['’]s\b", after):
            continue  # "St. Anthony's fire", "St. George's Respiratory Questionnaire": a saint's eponym
        noun = _NOUN_OF.search(before)
        if noun and noun.group(1).lower() not in _RELATIONS and entity in ("PERSON", "LOCATION", "DATE") \
                and not any(c.isdigit() for c in span):
            continue
        if _YEAR.fullmatch(span) and not _glued_date(text, start, end):
            continue
        numbers = re.findall(r"\d+", span)
        if entity == "DATE" and numbers and all(_YEAR.fullmatch(n) for n in numbers) and "of" not in words:
            continue  # months and years without a day: "September 2005, 2010, March 2007" (an exam's date)
        pair = _NUMBER_PAIR.fullmatch(span)
        if pair and (not _bare_month_day(text, start, end) or pair.group(2) == "-" and not
                     _DATE_CUE_BEFORE.search(before) or _DECIMAL_BEFORE.search(before) or _PERCENT_AFTER.match(after)):
            continue
        kept.append((start, end, entity))
    return kept


def _glued_date(text: str, start: int, end: int) -> bool:
    """Is this year part of a written date ("3/4/2019", "March 4, 2019", "2019-03-04")?"""
    before, after = text[max(0, start - 12):start], text[end:end + 3]
    return bool(re.search(r"[/\-.]$|\d,?\s*$", before) or re.match(r"[/\-.]\d", after))


@functools.lru_cache(maxsize=4)
def load_tagger(model: str) -> Tagger:
    """The tagger of a model file, or of the shipped model for "default"."""
    if model == "default":
        from importlib import resources

        with resources.as_file(resources.files("curate.scrub").joinpath("data", DEFAULT_MODEL)) as path:
            return Tagger.load(path)
    return Tagger.load(model)
