"""Medical language that is not PHI: the allow-list of eponyms, drugs and terms, the places Safe Harbor allows
(states, countries, regions), and the rule that a name followed by "disease", "syndrome", "sign"... is an eponym.

The lists are data files in `curate/scrub/data/` so clinicians can extend them without touching code.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from importlib import resources

#: Words that, right after a capitalised name, make it an eponym ("Graves disease", "Cushing's syndrome").
EPONYM_HEADS = (
    "disease diseases syndrome syndromes sign signs test tests maneuver manoeuvre reflex reflexes lymphoma sarcoma "
    "tumor tumour palsy phenomenon triad pentad law principle classification criteria score scale stain staining "
    "bodies body cells cell nodes node nodule nodules spots ulcer fracture procedure operation repair pouch duct "
    "diverticulum hernia anomaly malformation disorder murmur respiration breathing reaction equation effect "
    "incision point triangle canal ligament fascia gland glands area aphasia encephalopathy thyroiditis contracture "
    "cyst granuloma curve lines line ring rings angina arteritis anemia anaemia ataxia dystrophy neuralgia "
    "neuropathy fever bundle block node's membrane space plexus loop capsule corpuscles corpuscle fibers fibres "
    "organ organs crisis type lesion lesions deformity disc disk sheath vasculitis purpura thrombocytopenia "
    "agammaglobulinemia leukemia carcinoma nephritis hepatitis esophagus oesophagus ileus patch regimen catheter "
    "formula method technique position solution agar medium"
).split()

# A span whose last word is one of these (or a disease-like word) is medical even when NER put it in the name:
# "Hashimoto thyroiditis" tagged PERSON as a whole.
_MEDICAL_LAST_WORD = re.compile(
    r"(?:disease|syndrome|sign|lymphoma|sarcoma|palsy|reflex|test|maneuver|manoeuvre|phenomenon|triad|criteria"
    r"|classification|scale|score|stain|bodies|cells|nodes|ulcer|fracture|procedure|hernia|anomaly|malformation"
    r"|disorder|murmur|\w+itis|\w+oma|\w+osis|\w+emia|\w+aemia|\w+pathy|\w+plasia|\w+algia|\w+ectomy|\w+otomy)",
    re.IGNORECASE,
)
_HEAD_AFTER = re.compile(r"(?:['’]s|s['’])?[\s\-]+(?:" + "|".join(EPONYM_HEADS) + r")\b", re.IGNORECASE)
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
    raw = resources.files("curate.scrub").joinpath("data", name).read_text(encoding="utf-8")
    return [line.strip() for line in raw.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@functools.lru_cache(maxsize=1)
def allow_terms() -> frozenset[str]:
    """Normalised eponyms, drugs and terms (whole phrases)."""
    return frozenset(normalise(t) for t in _read_lines("allow_list.txt"))


@functools.lru_cache(maxsize=1)
def allow_words() -> frozenset[str]:
    """The single words of the allow-list phrases ("Guillain-Barré" gives "guillain" and "barre")."""
    return frozenset(w for term in allow_terms() for w in re.split(r"[\s\-]+", term) if w)


@functools.lru_cache(maxsize=1)
def allowed_places() -> frozenset[str]:
    return frozenset(normalise(t) for t in _read_lines("places.txt"))


@functools.lru_cache(maxsize=1)
def first_names() -> frozenset[str]:
    return frozenset(_read_lines("first_names.txt"))


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
