"""Names and places from context, in any case: the words around a token say what it is.

A name list alone is no name detector (a census list misses Oluwaseun and Wojciech, and "grace", "rob", "will" are
names and words), and clinical notes are often ALL CAPS or all lower case, so capitals say little. A token is taken
for a name or a place when a cue stands next to it and the token itself can be one:

- names: after a title (dr, mrs, NP...), a relation word (son, wife, dtr...), a speech cue (per, spoke with,
  called...) or a `Name:` field; before a credential (RN, RRT, MD) or a provider verb (aware, notified); an initial
  and a surname ("E. WELSH"); a listed first name followed by a listed last name ("grace dudak");
- places: after a place cue (lives in, transferred to, admitted from...), before a facility word (hospital, rehab,
  medical center), a listed city, and "City, ST".

"Can be one" means: on the multinational name lists (curate/scrub/data/names_*.txt), or not an English word at all
(a surname the lists lack), and never a clinical term or a common English word that is not also a name. A name or
place found once in a text is found everywhere else in that text.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

from curate.scrub.allow_list import (
    EPONYM_HEADS,
    allow_words,
    allowed_places,
    cities,
    clinical_terms,
    dictionary_words,
    english_rank,
    family_names,
    given_names,
    is_medical_name,
    towns,
)
from curate.scrub.patterns import TOKEN

TITLES = frozenset("dr dr. drs doctor mr mrs ms miss mister mx prof professor".split())
#: Weaker titles: the word after them must itself look like a name.
ROLES = frozenset(("np pa rn md ho attending fellow resident intern nurse caseworker cm sw chaplain rrt "
                   "pharmacist therapist surgeon physician").split())
RELATIONS = frozenset(("son sons daughter daughters dtr dau wife husband hus brother brothers sister sisters niece "
                       "nephew mother mom father dad friend grandson granddaughter grandaughter grandchild aunt uncle "
                       "cousin spouse partner fiance fiancee girlfriend boyfriend guardian proxy hcp contact neighbor "
                       "neighbour companion sitter sibling stepson stepdaughter").split())
SPEECH = ("per", "spoke with", "spoke w", "spoke to", "talked with", "talked to", "discussed with", "called",
          "contacted", "contacts", "met with", "met w", "reported to", "paged", "seen by", "evaluated by",
          "examined by", "to meet", "given to", "update to", "signed by", "work with", "notified", "informed",
          "name is", "named", "as per")
CREDENTIALS = frozenset("rn rrt np md pa lpn cna msw licsw rph pharmd crnp rd do pa-c dpt".split())
PROVIDER_AFTER = ("aware", "notified", "made aware", "paged", "called", "in to see", "into see", "to bedside",
                  "at bedside", "ordered", "informed", "updated", "placing", "pronounced", "consulted", "in to assess",
                  "into eval", "to see", "is aware", "was notified", "came by", "wants", "spoke")
PLACE_CUES = ("lives in", "lives at", "living in", "resides in", "home in", "lives alone in", "lives with",
              "transfer to", "transferred to", "transfered to", "tranfered to", "transferring to", "trans to",
              "tx to", "tx'd to", "txd to", "tx'd from", "transfer from", "transferred from", "transfered from",
              "admitted to", "admitted from", "admit from", "adm from", "adm to", "admitted at", "sent to",
              "taken to", "referred to", "referred from", "came to", "went to", "go to", "going to", "arrived to",
              "arrived from", "arrived at", "presented to", "presenting to", "returned to", "returned from",
              "discharge to", "discharged to", "d/c to", "flighted to", "flighted from", "medflight from",
              "flown to", "flown from", "followed at", "seen at", "treated at", "retired from", "works at",
              "worked at", "works for", "vacationing in", "visiting from", "moved to", "moved from", "born in",
              "raised in", "from", "at", "to", "on", "in", "in the church in", "transplant at", "back to", "cath at",
              "found in")
FACILITY = frozenset(("hospital hosp hospiatal rehab rehabilitation clinic agency house campus hospice manor institute "
                      "university college church memorial infirmary sanatorium er ew va").split())
#: Two-word facility heads: "Kessler Medical Center", "Greater Baltimore Med Ctr".
FACILITY_PAIRS = frozenset(("medical center", "med ctr", "med center", "medical ctr", "health center", "nursing home",
                            "care center", "rehab center", "heart center", "cancer center"))
#: Place cues that are also everyday words: the place after them must be a listed city, a unit code or no English.
WEAK_PLACE_CUES = frozenset(("from", "at", "to", "on", "in", "found in", "back to", "go to", "going to", "went to",
                             "came to"))
#: Words whose "to" is no motion towards a place ("according to ACOG", "due to HPV", "lesser to ZnPO4").
NOT_MOTION = frozenset(("according due compared equal equivalent similar prior secondary related close adjacent lesser "
                        "greater superior inferior distal proximal lateral medial attributed exposed sensitive resistant "
                        "susceptible allergic converted bound applied leading prone analogous identical parallel "
                        "perpendicular opposite contrary ptc pta atp adp").split())
#: First words of place names that are also English words: "Holy Cross", "St Mary", "Mount Sinai".
PLACE_PREFIX = frozenset("holy st saint mt mount lake fort port new north south east west san santa".split())
#: Words before an option letter ("the answer is C. Von Willebrand disease").
OPTION_CUES = frozenset("is answer answers option options choice choices".split())
#: Words before a facility word that are generic ("the hospital", "outside hospital").
GENERIC = frozenset(("the a an this that another other outside local area referring community previous prior osh "
                     "same new old his her their our my your nursing rehab to at from in of and or for by with "
                     "state county city general children's childrens pt patient home").split())
STOP = frozenset(("and or of the to at in on for with by from is was are were be been has had have will would "
                  "can could should may might not no yes a an this that these those he she they him her his hers "
                  "them their it its who whom which what when where why how there here also then than so as if "
                  "but all any some very about after before into over under up down out off again now today "
                  "tonight tomorrow yesterday am pm").split())
_AFTER_FIRST = frozenset(p.split()[0] for p in PROVIDER_AFTER)
#: A listed name is a name without any context when it is not among this many most frequent English words.
UNAMBIGUOUS_RANK = 60_000
#: Endings of English and medical words that names and places rarely have.
WORD_ENDING = re.compile(r"[a-z]{3}(?:ed|ing|ings|tion|tions|sion|ment|ments|ness|ize|ized|izing|ise|ised|ous|ive|ity"
                         r"|ical|ally|ular|emia|aemia|itis|osis|ectomy|otomy|ostomy|pathy|plasty|graphy|scopy|ology"
                         r"|uria|algia|penia|cytosis|ated|ating|ation|ations|ial)$")


_HEAD_OF = re.compile(r"(?i:\b(?:" + "|".join(EPONYM_HEADS) + r"|curve|circle|loop|pouch|space|canal)\s+of\s+(?:the\s+)?$)")
_CAPITAL_LAST = re.compile(r"[A-Z][a-z]+[A-Z]$")
_WORD = re.compile(r"[A-Za-z]{2,}")
#: Mixed case: a good share of the words in lower case and some capitalised ("Kessler"); else the note is ALL CAPS
#: or all lower case, where capitals say nothing.
MIXED_LOWER, MIXED_TITLE = 0.3, 0.02
SHORT_TEXT_WORDS = 8


def is_mixed_case(text: str) -> bool:
    """Is `text` written in mixed case? A short text (an answer option, a title) is, unless three or more words are
    all in capitals or all in lower case."""
    words = _WORD.findall(text)
    lower = sum(w.islower() for w in words)
    if len(words) < SHORT_TEXT_WORDS:
        upper = sum(w.isupper() for w in words)
        return len(words) < 3 or 0 < lower < len(words) and upper < len(words)
    title = sum(w[0].isupper() and w[1:].islower() for w in words)
    return lower > MIXED_LOWER * len(words) and title >= max(1.0, MIXED_TITLE * len(words))


class Tok(NamedTuple):
    start: int
    end: int
    text: str
    low: str


def tokens(text: str) -> list[Tok]:
    return [Tok(m.start(), m.end(), word, word.lower().replace("’", "'"))
            for m in TOKEN.finditer(text) for word in (m.group(),)]


@functools.lru_cache(maxsize=1)
def _lists():
    return given_names(), family_names(), english_rank(), clinical_terms() | allow_words(), cities(), allowed_places()


@functools.lru_cache(maxsize=1)
def _towns() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """The postal place names, the first words of those of several words, and the rare dictionary words."""
    names = towns()
    return names, frozenset(name.split(" ", 1)[0] for name in names if " " in name), dictionary_words()


class Context:
    """The findings of one text: (start, end, entity) for PERSON and LOCATION."""

    def __init__(self, text: str, toks: list[Tok] | None = None) -> None:
        self.text = text
        self.toks = tokens(text) if toks is None else toks
        ends = [0] + [t.end for t in self.toks[:-1]]
        self.gaps = [text[end:t.start] for end, t in zip(ends, self.toks)]
        self.given, self.family, self.rank, self.clinical, self.cities, self.allowed = _lists()
        self.towns, self.town_starts, self.dictionary = _towns()
        #: Capitals carry information only in mixed-case text.
        self.mixed = is_mixed_case(text)
        self.found: dict[int, str] = {}

    # ------------------------------------------------------------ what a token can be

    def gap(self, i: int) -> str:
        """The characters between token i-1 and token i."""
        return self.gaps[i]

    def is_initial(self, i: int) -> bool:
        t = self.toks[i]
        # "2L NP", "4L": a letter right after a digit is a unit
        return len(t.text) == 1 and t.text.isalpha() and (t.text.isupper() or not self.mixed) and not (
            t.start and self.text[t.start - 1].isdigit())

    def english(self, low: str, top: int = 20_000) -> bool:
        rank = self.rank.get(low)
        if rank is None and len(low) > 3 and low.endswith("s"):
            rank = self.rank.get(low[:-2] if low.endswith("es") and low[:-2] in self.rank else low[:-1])
        if rank is None:  # an unranked word is a rare one: not among the 3,000 commonest ("deaconess hospital")
            return top > 3000 and self.wordlike(low)
        return rank < top

    def wordlike(self, low: str) -> bool:
        """A word the frequency list does not rank: a dictionary word ("palatine", "bedpan") or one with the
        ending of a word ("diuresed", "titrating"), and not on the name or place lists."""
        return (low in self.dictionary or bool(WORD_ENDING.search(low))) and low not in self.given \
            and low not in self.family and low not in self.cities

    def nameish(self, i: int, strict: bool = False) -> bool:
        """Can token i be (part of) a name?"""
        t = self.toks[i]
        low = t.low
        if not t.text.isalpha() and "'" not in low or len(low) < 2 or low in STOP or low in self.clinical \
                or low in RELATIONS or _CAPITAL_LAST.match(t.text):  # "IgG", "HbS": no names
            return False
        if self.mixed and t.text.islower() and strict:
            return False
        listed = low in self.given or low in self.family
        if listed:
            return not strict or not self.english(low, 3000)
        return not self.english(low, 40_000 if strict else 20_000)

    def placeish(self, i: int) -> bool:
        t = self.toks[i]
        low = t.low
        if not t.text.isalpha() or len(low) < 2 or low in STOP or low in self.clinical or low in self.allowed:
            return False
        if low in self.cities and (low not in self.dictionary or not self.english(low, 5000)):
            return True  # "Baltimore", "laurel"; not "normal" (Normal, IL)
        if self.mixed:
            return t.text[0].isupper() and not self.english(low, 5000) or not self.english(low, 40_000)
        if t.text.isupper() and len(low) <= 5:
            return not self.english(low, 5000)  # unit codes such as "GH"
        return not self.english(low, 40_000)

    # ------------------------------------------------------------ marking

    def mark(self, i: int, j: int, entity: str) -> None:
        if any(self._eponym(k) for k in range(i, j)):
            return
        for k in range(i, j):
            self.found.setdefault(k, entity)

    def name_from(self, i: int, first_ok: bool, limit: int = 3) -> int:
        """Mark a name starting at token i (when `first_ok` or it is nameish); returns the index after it."""
        n = len(self.toks)
        if i >= n or not (first_ok or self.nameish(i) or self.is_initial(i)):
            return i
        j = i + 1
        while j < n and j - i < limit:
            gap = self.gap(j)
            if gap not in (" ", ". ", ".", "-", "  ", " . ") or "\n" in gap:
                break
            if self.is_initial(j) or (self.nameish(j) and (self.toks[j].low in self.given or
                                                             self.toks[j].low in self.family or
                                                             not self.english(self.toks[j].low, 20_000))):
                j += 1
                continue
            break
        if self.is_initial(j - 1) and j - 1 > i and not self.text[self.toks[j - 1].end:].startswith("."):
            j -= 1  # "Dr Lucie Lange, Dr" keeps the names; a lone trailing letter is a word ("A" of "A fib")
        self.mark(i, j, "PERSON")
        return j

    def phrase_before(self, i: int, words: tuple[str, ...]) -> bool:
        """Do the tokens right before token i spell one of `words` (lower case, space separated)?"""
        return self.cue_before(i, words) is not None

    def cue_before(self, i: int, words: tuple[str, ...]) -> str | None:
        """The cue phrase right before token i, if any (longest first)."""
        if i == 0:
            return None
        index = _CUE_INDEX.get(id(words)) or _by_last(words)
        last = self.toks[i - 1].low
        if last not in index:
            return None
        for phrase, parts in index[last]:
            if i >= len(parts) and all(self.toks[i - len(parts) + k].low == w for k, w in enumerate(parts)):
                if "\n" not in self.text[self.toks[i - len(parts)].start:self.toks[i].start]:
                    return phrase
        return None

    def strong_place(self, k: int, cue: str) -> bool:
        """Can token k be a place after a weak cue ("to", "at", "in")? A listed city or town that is no common
        word; after "to", "from", "at" also a word no list knows, or a unit code such as "GH" ("in LDL", "on USG"
        are acronyms of medicine)."""
        t = self.toks[k]
        if t.low not in self.dictionary and (t.low in self.cities or t.low in self.towns
                                             and not self.english(t.low, 5000)):  # not "at apex" (Apex, NC)
            return True
        if self.mixed and t.text.isupper() and len(t.low) > 2:
            return False  # "proceed to DRE", "obstruction from BPH": acronyms of medicine; "at GH" may be a place
        if cue in ("in", "on", "found in") and self.mixed:
            # in mixed text a unit code only, before a stop: "knows he is in GH, ..."; not "in LDL particle"
            return t.text.isupper() and 2 <= len(t.low) <= 4 and not self.english(t.low, 15_000) and \
                self.text[t.end:t.end + 1] in ("", ",", ".", ";", ")", "\n")
        return not self.english(t.low, 60_000) or (
            (t.text.isupper() or not self.mixed) and 2 <= len(t.low) <= 4 and not self.english(t.low, 15_000))

    def phrase_after(self, j: int, words: tuple[str, ...]) -> bool:
        for phrase in words:
            parts = phrase.split()
            if [t.low for t in self.toks[j:j + len(parts)]] == parts:
                return True
        return False

    # ------------------------------------------------------------ the rules

    def run(self) -> list[tuple[int, int, str]]:
        toks, n = self.toks, len(self.toks)
        for i, t in enumerate(toks):
            low = t.low
            nxt = i + 1
            if nxt >= n:
                break
            gap_after = self.gap(nxt)
            if "\n" in gap_after:
                continue
            title_gap = gap_after in (" ", ". ", ".", "  ", "/", " / ")
            if title_gap and (low in TITLES or (low == "dr" and gap_after.startswith("."))) and not (
                    self.mixed and t.text.isupper() and low in ("ms", "mr", "mrs", "mx")) and not (  # "is MS. Then"
                    self.mixed and toks[nxt].text.islower() and (self.english(toks[nxt].low, 60_000)
                                                                 or toks[nxt].low in self.dictionary)):
                # not "the doctor decides", "MR angiography"; but "Dr. peruzzi"
                self.name_from(nxt, first_ok=toks[nxt].low not in STOP and toks[nxt].low not in self.clinical
                               and toks[nxt].text.isalpha())
            elif title_gap and low in ROLES and (t.text.isupper() or not self.mixed or len(low) > 3
                                                 or toks[nxt].text[0].isupper()):
                if self.nameish(nxt, strict=True) and not self.english(toks[nxt].low, 3000):
                    self.name_from(nxt, first_ok=True)
            elif self.is_relation(i) and gap_after in (" ", "  ", ", ", ": ", " - ", "-", ":", " ("):
                k = nxt
                while k < n and toks[k].low in ("is", "named", "called") and k - nxt < 2:
                    k += 1
                if k < n and self.nameish(k) and (toks[k].low in self.given or not self.english(toks[k].low)) \
                        and not (self.mixed and toks[k].text.islower()):  # "his wife come", "miss school"
                    end = self.name_from(k, first_ok=True)
                    # "Sons Smokey, Morris and Roger": a list of names
                    while end + 1 < n and toks[end].low in ("and", "&") or (end < n and self.gap(end).strip() == ","):
                        k = end + 1 if toks[end].low in ("and", "&") else end
                        if k < n and toks[k].low in self.given and not self.english(toks[k].low, 3000):
                            end = self.name_from(k, first_ok=True)
                        else:
                            break
            if self.is_initial(i) and self.text[t.end:t.end + 1] == "." and nxt < n and not self._option_letter(i):
                if self.nameish(nxt, strict=True) and toks[nxt].text[0].isupper() and self.gap(nxt) in (". ", "."):
                    self.mark(i, self.name_from(nxt, first_ok=True, limit=2), "PERSON")
        for i in range(n):
            low = toks[i].low
            if self.phrase_before(i, SPEECH) and i not in self.found:
                if self.nameish(i, strict=True) and (low in self.given or low in self.family
                                                     or not self.english(low, 40_000)):
                    self.name_from(i, first_ok=True)
            if low in CREDENTIALS and i > 0 and (toks[i].text.isupper() or low in ("rn", "rrt", "np")):
                self._credential(i)
            if (i + 1 < n and toks[i + 1].low in _AFTER_FIRST and self.phrase_after(i + 1, PROVIDER_AFTER)
                    and i not in self.found and self.nameish(i, strict=True)):
                prev = i - 1
                if (low in self.family or low in self.given) and prev >= 0 and (self.is_initial(prev)
                                                                                 or self.nameish(prev, True)):
                    self.mark(prev, i + 1, "PERSON")
            if low in self.given and not self.english(low, 3000) and i + 1 < n and i not in self.found:
                nxt = toks[i + 1]
                if self.gap(i + 1) == " " and self.nameish(i + 1, strict=True) and (
                        nxt.low in self.family or not self.english(nxt.low, 60_000)):
                    self.name_from(i, first_ok=True)
        for i in range(n - 1):
            if self.gaps[i + 1] in (" (", ", ", " - ", " -"):
                self._name_before_relation(i)
        self._unambiguous_names()
        self._places()
        self._spread()
        return self._spans()

    def is_relation(self, i: int) -> bool:
        """A relation word: "wife", "dtr", and the "law" of "son-in-law"."""
        t = self.toks[i]
        return t.low in RELATIONS or t.low == "law" and self.text[max(0, t.start - 4):t.start].lower() == "-in-"

    def _name_before_relation(self, i: int) -> None:
        """"Lucinda (daughter)", "MARY, HIS WIFE": a name right before a relation in brackets or after a comma."""
        toks, n = self.toks, len(self.toks)
        j = i + 1
        if j >= n or self.gap(j) not in (" (", ", ", " - ", " -"):
            return
        if toks[j].low in ("his", "her", "pt's", "pts", "the", "patient's") and j + 1 < n and self.gap(j + 1) == " ":
            j += 1
        if self.is_relation(j) and (j + 1 >= n or self.text[toks[j].end:toks[j].end + 1] in ")," or
                                    self.gap(j) == ", "):
            k = i
            while k > 0 and i - k < 2 and self.gap(k) == " " and self.nameish(k - 1, strict=True):
                k -= 1
            if self.nameish(i, strict=True) and (toks[i].low in self.given or toks[i].low in self.family
                                                 or not self.english(toks[i].low)):
                self.mark(k, i + 1, "PERSON")

    def _unambiguous_names(self) -> None:
        """deid.pl's "unambiguous name": a token on the name lists that is no English or clinical word (not among
        the 60,000 most frequent English words) is a name wherever it stands ("dudak", "szymanska")."""
        for k, t in enumerate(self.toks):
            low = t.low
            if k in self.found or len(low) < 3 or not t.text.isalpha() or low in self.clinical or low in STOP:
                continue
            if (low in self.given or low in self.family) and not self.english(low, UNAMBIGUOUS_RANK) and not (
                    self.mixed and not t.text.istitle()) and low not in self.dictionary and not self.typo(low):
                self.name_from(k, first_ok=True)

    def typo(self, low: str, top: int = 10_000) -> bool:
        """Is `low` a common word with one letter dropped or two letters swapped ("stong", "afer", "deines")?"""
        rank = self.rank
        for i in range(len(low) - 1):
            swapped = low[:i] + low[i + 1] + low[i] + low[i + 2:]
            if rank.get(swapped, top) < top:
                return True
        return any(rank.get(low[:i] + c + low[i:], top) < top for i in range(len(low) + 1)
                   for c in "abcdefghijklmnopqrstuvwxyz")

    def _credential(self, i: int) -> None:
        """Names before a credential at the end of a line or sentence: "Maria Silva, RN", "EARL N. RAND, RRT"."""
        toks = self.toks
        after = self.text[toks[i].end:toks[i].end + 3]
        if not (after == "" or after[:1] in "\n.,;)" or after.startswith((" \n", "  ")) or
                self.phrase_after(i + 1, PROVIDER_AFTER)):
            return
        j = i
        if self.gap(j).strip() not in ("", ","):
            return
        k = j - 1
        while k >= 0 and j - k <= 3 and (self.nameish(k) or self.is_initial(k)) and "\n" not in self.gap(k + 1):
            if k < j - 1 and self.gap(k + 1).strip() not in ("", "."):
                break
            k -= 1
        if k + 1 < j:
            self.mark(k + 1, j, "PERSON")

    def town_end(self, k: int) -> int:
        """The end of the longest postal place name of two to four words starting at token k ("glen burnie",
        "owings mills"), or k."""
        toks, names = self.toks, self.towns
        if toks[k].low not in self.town_starts:
            return k
        for j in range(min(len(toks), k + 4), k + 1, -1):
            if all(self.gap(m) == " " for m in range(k + 1, j)) and \
                    " ".join(t.low for t in toks[k:j]) in names:
                return j
        return k

    def _towns(self, i: int, cue: str | None) -> bool:
        """A place name of several words after a place cue, or anywhere when it is written capitalised in mixed
        text and one of its words is no common English word. Returns whether one was marked."""
        j = self.town_end(i)
        if j == i or any(self.toks[m].low in self.clinical for m in range(i, j)):
            return False
        words = self.toks[i:j]
        if (not cue or cue in WEAK_PLACE_CUES) and all(self.english(t.low, 5000) for t in words):
            return False  # "in left hand", "Center Point"
        if not cue and (not self.mixed or not all(t.text[0].isupper() and t.text[1:].islower() for t in words)):
            return False
        self.mark(i, j, "LOCATION")
        return True

    def _places(self) -> None:
        toks, n = self.toks, len(self.toks)
        for i in range(n):
            low = toks[i].low
            if i in self.found:
                continue
            cue = self.cue_before(i, PLACE_CUES)
            if cue == "to" and i > 1 and toks[i - 2].low in NOT_MOTION:
                cue = None  # "according to ACOG", "equal to ZnPO4"
            k = i + (bool(cue) and low == "the")
            if k < n and toks[k].low in self.town_starts and self._towns(k, cue):
                continue
            if cue:
                if k + 1 < n and toks[k].low in PLACE_PREFIX and self.gap(k + 1) in (" ", ". ") \
                        and toks[k + 1].text.isalpha() and toks[k + 1].low not in STOP \
                        and toks[k + 1].low not in self.clinical and self._prefixed_place(k):
                    self.mark(k, k + 2, "LOCATION")
                    continue
                if k < n and self.placeish(k) and not (self.mixed and toks[k].text.islower()
                                                       and toks[k].low not in self.cities
                                                       and toks[k].low not in self.towns
                                                       and (cue in WEAK_PLACE_CUES
                                                            or self.english(toks[k].low, 40_000))):
                    if cue in WEAK_PLACE_CUES and not self.strong_place(k, cue):
                        continue
                    j = k + 1
                    while j < n and j - k < 3 and self.gap(j) == " " and self.placeish(j):
                        j += 1
                    self.mark(k, j, "LOCATION")
            pair = i + 1 < n and f"{low} {toks[i + 1].low}" in FACILITY_PAIRS
            if (low in FACILITY or pair) and i > 0 and self.gap(i) == " ":  # not "reticulum (ER)"
                k = i - 1
                while k >= 0 and i - k <= 3 and toks[k].low not in GENERIC and toks[k].text.isalpha() \
                        and not self.english(toks[k].low, 300) and "\n" not in self.gap(k + 1):
                    if low not in ("hospital", "hosp", "hospiatal", "medical", "med") and not self.placeish(k):
                        break
                    if not self._facility_word(k):
                        break
                    k -= 1
                if k + 1 < i:
                    self.mark(k + 1, i + 1 if low in ("memorial", "rehab", "campus") else i, "LOCATION")
            if low in self.cities and low not in self.clinical and low not in self.allowed \
                    and low not in self.dictionary and not (
                    self.mixed and toks[i].text.islower()) and (
                    not self.english(low, 20_000) or self.mixed and toks[i].text[0].isupper() and i > 0
                    and self.gap(i).strip() not in (".", ":", "-") and not self.english(low, 5000)):
                self.mark(i, i + 1, "LOCATION")
            if low in ("u", "univ", "university") and i + 1 < n and toks[i + 1].low in ("maryland", "of"):
                self.mark(i, i + 2, "LOCATION")

    def _option_letter(self, i: int) -> bool:
        """"the answer is C. Von Willebrand", "D. Allosteric change": in mixed text a capital A-J that starts a line
        or a sentence, or follows an answer word, is an option letter, not an initial ("seen by J. Marsh" still is)."""
        t = self.toks[i]
        if not self.mixed or t.text not in "ABCDEFGHIJ":
            return False
        before = self.gap(i)
        return i == 0 or "\n" in before or before.rstrip(" ").endswith((".", ":", "(", ")", "*")) or \
            self.toks[i - 1].low in OPTION_CUES

    def _facility_word(self, k: int) -> bool:
        """Can token k be part of a facility's name ("Calvert", "holy cross")? Capitalised in mixed text; else a
        name, a place or a word that is not among the commoner ones ("required multiple hospital admissions")."""
        t = self.toks[k]
        if self.mixed and t.text.islower() and (t.low in self.dictionary or WORD_ENDING.search(t.low)):
            return False  # "the nearest hospital", "an isolated hospital room": words, in text that capitalises names
        return self.mixed and t.text[0].isupper() or t.low in self.given or t.low in self.family \
            or t.low in self.cities or t.low in self.towns or not self.english(t.low, 3000)

    def _prefixed_place(self, k: int) -> bool:
        """"Holy Cross", "St. Agnes", "Lake Mary": a place word and the name after it, not a region ("South
        America", "the east coast", "the new born")."""
        nxt = self.toks[k + 1]
        return f"{self.toks[k].low} {nxt.low}" not in self.allowed and \
            nxt.low not in ("coast", "side", "end", "wing", "born", "part", "half")

    def _eponym(self, k: int) -> bool:
        """Is token k the name in an eponym ("Wilson disease", "Bell palsy", "curve of Wilson")?"""
        t = self.toks[k]
        return is_medical_name(t.text, self.text[t.end:t.end + 40]) or \
            bool(_HEAD_OF.search(self.text[max(0, t.start - 30):t.start]))

    def _spread(self) -> None:
        """A word found as a name or place once is one everywhere in the text."""
        seen = {self.toks[k].low: e for k, e in self.found.items()
                if len(self.toks[k].low) > 2 and not self.english(self.toks[k].low, 3000)}
        if not seen:
            return
        for k, t in enumerate(self.toks):
            if k not in self.found and t.low in seen:
                self.found[k] = seen[t.low]

    def _spans(self) -> list[tuple[int, int, str]]:
        spans: list[list] = []
        for k in sorted(self.found):
            t, entity = self.toks[k], self.found[k]
            if spans and spans[-1][2] == entity and spans[-1][3] == k - 1 and \
                    self.text[spans[-1][1]:t.start].strip(" .-,") == "" and "\n" not in self.text[spans[-1][1]:t.start]:
                spans[-1][1], spans[-1][3] = t.end, k
            else:
                spans.append([t.start, t.end, entity, k])
        return [(s, e, ent) for s, e, ent, _ in spans]


@functools.lru_cache(maxsize=8)
def _by_last(words: tuple[str, ...]) -> dict[str, list[tuple[str, list[str]]]]:
    """Cue phrases indexed by their last word, longest first."""
    index: dict[str, list[tuple[str, list[str]]]] = {}
    for phrase in sorted(words, key=lambda w: -len(w.split())):
        parts = phrase.split()
        index.setdefault(parts[-1], []).append((phrase, parts))
    return index


_CUE_INDEX = {id(words): _by_last(words) for words in (SPEECH, PLACE_CUES, PROVIDER_AFTER)}


def find(text: str) -> list[tuple[int, int, str]]:
    """(start, end, PERSON or LOCATION) found from context in `text`."""
    if not text:
        return []
    return Context(text).run()
