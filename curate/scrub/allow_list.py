"""Medical language that is not PHI: the allow-list of eponyms, drugs and terms, the places Safe Harbor allows
(states, countries, regions), and the rule that a name followed by "disease", "syndrome", "sign"... is an eponym.

The lists are data files in `curate/scrub/data/` so clinicians can extend them without touching code.
"""

from __future__ import annotations

import functools
import gzip
import re
import unicodedata
from importlib import resources

#: Words that, right after a capitalised name, make it an eponym ("Graves disease", "Cushing's syndrome").
EPONYM_HEADS = (
    "disease diseases syndrome syndromes sign signs pupil test tests maneuver manoeuvre reflex reflexes lymphoma sarcoma "
    "tumor tumour palsy phenomenon triad pentad law principle classification criteria score scale stain staining "
    "bodies body cells cell nodes node nodule nodules spots ulcer fracture procedure operation repair pouch duct "
    "diverticulum hernia anomaly malformation disorder murmur respiration breathing reaction equation effect "
    "incision point triangle canal ligament fascia gland glands area aphasia encephalopathy thyroiditis contracture "
    "cyst granuloma curve lines line ring rings angina arteritis anemia anaemia ataxia dystrophy neuralgia "
    "neuropathy fever bundle block node's membrane space plexus loop capsule corpuscles corpuscle fibers fibres "
    "organ organs crisis type lesion lesions deformity disc disk sheath vasculitis purpura thrombocytopenia "
    "agammaglobulinemia leukemia carcinoma nephritis hepatitis esophagus oesophagus ileus patch regimen catheter "
    "formula method technique position solution agar medium index theory analysis screw protein stitch suture "
    "placental separation mechanism harness flap sequence questionnaire assessment agar cartilage wiring plane "
    "grading regime glossitis commissure knife osteotomy cycle potential sound apparatus retainer hypothesis "
    "microscopy retractor class spot tendon chart model diagram rating tetralogy"
).split()

# A span whose last word is one of these (or a disease-like word) is medical even when NER put it in the name:
# "Hashimoto thyroiditis" tagged PERSON as a whole.
_MEDICAL_LAST_WORD = re.compile(
    r"(?:disease|syndrome|sign|lymphoma|sarcoma|palsy|reflex|test|maneuver|manoeuvre|phenomenon|triad|criteria"
    r"|classification|scale|score|stain|bodies|cells|nodes|ulcer|fracture|procedure|hernia|anomaly|malformation"
    r"|disorder|murmur|index|theory|screw|protein|analysis|\w+itis|\w+oma|\w+osis|\w+emia|\w+aemia|\w+pathy|\w+plasia|\w+algia|\w+ectomy|\w+otomy)",
    re.IGNORECASE,
)
#: The head right after the name, or after a second name ("Thayer-Martin agar", "Guillain-Barre syndrome").
_HEAD_AFTER = re.compile(r"(?:['’]s|s['’])?(?:-(?-i:[A-Z][a-z]+)(?:['’]s)?)?[\s\-]+(?:" + "|".join(EPONYM_HEADS) + r")\b",
                         re.IGNORECASE)
_POSSESSIVE = re.compile(r"(?:['’]s|s['’]|['’])$")


def normalise(text: str) -> str:
    """Lower case, accents removed, possessive and a leading "the" dropped, spaces collapsed."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower().strip(" .,;:")
    text = _POSSESSIVE.sub("", text)
    if text.startswith("the "):
        text = text[4:]
    return " ".join(text.split())


def _read_lines(name: str) -> list[str]:
    path = resources.files("curate.scrub").joinpath("data", name)
    raw = gzip.decompress(path.read_bytes()).decode("utf-8") if name.endswith(".gz") else path.read_text("utf-8")
    return [line.strip() for line in raw.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@functools.lru_cache(maxsize=1)
def allow_terms() -> frozenset[str]:
    """Normalised eponyms, drugs and terms (whole phrases)."""
    return frozenset(normalise(t) for t in _read_lines("allow_list.txt"))


@functools.lru_cache(maxsize=1)
def allow_words() -> frozenset[str]:
    """The single words of the allow-list phrases ("Guillain-Barré" gives "guillain" and "barre"), less first names
    ("Robert" of "Robert Koch"), so that "Robert Johnson" is not taken for "Dubin-Johnson"."""
    given = {n.lower() for n in first_names()}
    words = {w for term in allow_terms() for w in re.split(r"[\s\-]+", term) if w}
    return frozenset(w for w in words if w not in given or w in allow_terms())


@functools.lru_cache(maxsize=1)
def allowed_places() -> frozenset[str]:
    return frozenset(normalise(t) for t in _read_lines("places.txt"))


@functools.lru_cache(maxsize=1)
def first_names() -> frozenset[str]:
    return frozenset(_read_lines("first_names.txt"))


@functools.lru_cache(maxsize=1)
def last_names() -> frozenset[str]:
    return frozenset(_read_lines("last_names.txt"))


# A single-word place is kept only after a word that introduces a place ("lives in Springfield"): alone, the
# small NER model tags capitalised medical words ("Placenta", "Rifampicin") as places.
PLACE_CUES = (
    r"(?:(?:lives?|living|resides?|residing|moved|born|raised|works?|working|hospital|clinic|vacation(?:ing)?|trip|"
    r"camping|hiking|stay(?:ed|ing)?)\s+(?:in|at|near|to)|from|near|visited|visiting|resident\s+of|travell?ed\s+to|"
    r"returned\s+(?:home\s+)?from|flew\s+to|drove\s+to|city\s+of|town\s+of|county\s+of)"
)
_PLACE_CUE = re.compile(rf"\b{PLACE_CUES}\s+(?:the\s+)?(?:city\s+of\s+|town\s+of\s+)?$", re.IGNORECASE)


def looks_like_name(span_text: str, text: str = "", before: str = "") -> bool:
    """An NER PERSON finding is believed when it reads as a name on the Census lists: one word that is a first name,
    not at the start of a sentence or option ("Cherry red spot", "Mark true or false") and not also written in lower
    case in the same text ("Amber" but not "Knee ... knee"); or several capitalised words
    starting with a first name ("April Barnes"). Medical-looking words never."""
    words = [_POSSESSIVE.sub("", w) for w in re.findall(r"[A-Za-z][A-Za-z'’]*", span_text)]
    words = [w for w in words if len(w) > 1]  # initials
    if not words or any(_MEDICAL_LAST_WORD.fullmatch(w.lower()) for w in words):
        return False
    if not all(w[:1].isupper() and not w.isupper() for w in words):
        return False
    names_first = first_names()
    if len(words) == 1:
        word = words[0]
        if not before.strip() or before.rstrip()[-1] in ".!?:;|\n\"'(":
            return False
        return word in names_first and re.search(rf"\b{re.escape(word.lower())}\b", text) is None
    return words[0] in names_first


def looks_like_place(span_text: str, preceding_text: str) -> bool:
    """An NER LOCATION finding is believed when it is two or more capitalised words ("Lake Mary"), or one word after
    a place cue ("moved to Springfield"); medical-looking words ("Astrocytoma") never."""
    words = re.findall(r"[A-Za-z][A-Za-z'’.\-]*", span_text)
    if not words or _MEDICAL_LAST_WORD.fullmatch(words[-1].lower()):
        return False
    if len(words) >= 2:
        return all(w[:1].isupper() or w.lower() in {"of", "de", "la", "du"} for w in words)
    return bool(_PLACE_CUE.search(preceding_text))


@functools.lru_cache(maxsize=1)
def street_suffixes() -> tuple[str, ...]:
    return tuple(_read_lines("street_suffixes.txt"))


def is_medical_name(span_text: str, following_text: str) -> bool:
    """True when an NER PERSON finding is medical language: a listed term, only listed words, or an eponym
    (followed by a head word such as "disease")."""
    norm = normalise(span_text)
    if norm in allow_terms():
        return True
    words = [w for w in re.split(r"[\s\-]+", norm) if w]
    if words and all(w in allow_words() for w in words):
        return True
    if len(words) > 1 and _MEDICAL_LAST_WORD.fullmatch(words[-1]):
        return True
    return bool(_HEAD_AFTER.match(following_text))


def is_allowed_place(span_text: str, following_text: str = "") -> bool:
    """True when an NER LOCATION finding is not PHI: a state, country or broad region, or an eponym/term."""
    norm = normalise(span_text)
    return norm in allowed_places() or norm in allow_terms() or bool(_HEAD_AFTER.match(following_text))


@functools.lru_cache(maxsize=1)
def given_names() -> frozenset[str]:
    """First names of every Latin-script Faker locale and the Census, lower case (data/LICENSES.md)."""
    return frozenset(_read_lines("names_given.txt"))


@functools.lru_cache(maxsize=1)
def family_names() -> frozenset[str]:
    return frozenset(_read_lines("names_family.txt"))


@functools.lru_cache(maxsize=1)
def english_rank() -> dict[str, int]:
    """English word -> frequency rank (0 = most frequent), from wordfreq (data/LICENSES.md)."""
    return {word: rank for rank, word in enumerate(_read_lines("english_words.txt"))}


@functools.lru_cache(maxsize=1)
def cities() -> frozenset[str]:
    return frozenset(_read_lines("cities.txt"))


@functools.lru_cache(maxsize=1)
def dictionary_words() -> frozenset[str]:
    """Dictionary words ("palatine", "cementum", "bedpan"): web2's common-noun entries (data/LICENSES.md). A token
    found here is a word, not a name, unless the name lists have it too."""
    return frozenset(_read_lines("dictionary_words.txt.gz"))


@functools.lru_cache(maxsize=1)
def towns() -> frozenset[str]:
    """US postal place names, lower case, words joined by one space ("glen burnie"); data/LICENSES.md."""
    return frozenset(_read_lines("towns.txt"))


@functools.lru_cache(maxsize=1)
def clinical_terms() -> frozenset[str]:
    """Clinical abbreviations, charting words and organisms (lower case single words)."""
    words = {w.lower() for line in _read_lines("clinical_terms.txt") for w in line.split()}
    return frozenset(words | set(_read_lines("drugs.txt")))
