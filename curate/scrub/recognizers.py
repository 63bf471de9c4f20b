"""curate's recognizers as presidio recognizers, for the side-by-side benchmark (bench/scrub.py) and for users who
want them inside their own presidio AnalyzerEngine.

This is how presidio runs recognizers: each one scans the whole text on its own, one pattern at a time, and the
analyzer merges their results. curate's engine (curate.scrub.engine.Scrubber) runs the same patterns in one
candidate scan instead; the benchmark compares the two on the same notes. Presidio is imported here only.
"""

from __future__ import annotations

import re

from presidio_analyzer import LocalRecognizer, RecognizerResult

from curate.scrub import context
from curate.scrub.engine import name_list_findings
from curate.scrub.patterns import patterns


class RegexRecognizer(LocalRecognizer):
    """One entity type from its patterns, each scanned over the whole text; a named group `v` marks the value."""

    def __init__(self, entity: str, pats: list) -> None:
        self.entity = entity
        self.compiled = [(re.compile(p.regex, re.MULTILINE), p.check) for p in pats]
        super().__init__(supported_entities=[entity], name=f"Curate{entity.title().replace('_', '')}",
                         supported_language="en")

    def load(self) -> None:  # nothing to load: patterns compile in __init__
        pass

    def analyze(self, text: str, entities: list[str], nlp_artifacts=None) -> list[RecognizerResult]:
        results = []
        for rx, check in self.compiled:
            for match in rx.finditer(text):
                start, end = match.span("v") if "v" in rx.groupindex and match.start("v") >= 0 else match.span()
                if end > start and (check is None or check(text, start, end)):
                    results.append(RecognizerResult(self.entity, start, end, 0.9))
        return results


class ContextRecognizer(LocalRecognizer):
    """Names and places from context (curate.scrub.context) and the listed-first-name rule."""

    def __init__(self) -> None:
        super().__init__(supported_entities=["PERSON", "LOCATION"], name="CurateContext", supported_language="en")

    def load(self) -> None:
        pass

    def analyze(self, text: str, entities: list[str], nlp_artifacts=None) -> list[RecognizerResult]:
        found = [RecognizerResult(e, s, t, 0.8) for s, t, e in context.find(text) if e in entities]
        if "PERSON" in entities:
            found += [RecognizerResult(f.entity_type, f.start, f.end, f.score) for f in name_list_findings(text)]
        return found


def build_recognizers(entities: list[str]) -> list:
    """curate's pattern and context recognizers for the wanted entity types, one presidio recognizer per type."""
    by_entity: dict[str, list] = {}
    for pattern in patterns():
        by_entity.setdefault(pattern.entity, []).append(pattern)
    recognizers: list = [RegexRecognizer(e, pats) for e, pats in by_entity.items() if e in entities]
    if {"PERSON", "LOCATION"} & set(entities):
        recognizers.append(ContextRecognizer())
    return recognizers
