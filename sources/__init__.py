"""Public QA sets, one module each, registered by name: native release files or Hub copies -> Question."""

from __future__ import annotations

from types import ModuleType

from sources import custom, medmcqa, medqa, pubmedqa
from sources.base import SourceResult

#: name -> module with NAME, DESCRIPTION, HUB_ID, SPLITS, LICENSE, CITATION (BibTeX, for the public sets) and
#: `load(path, split=, limit=, config=, ...)`.
SOURCES: dict[str, ModuleType] = {m.NAME: m for m in (medqa, medmcqa, pubmedqa, custom)}


def get_source(name: str) -> ModuleType:
    try:
        return SOURCES[name]
    except KeyError:
        raise KeyError(f"unknown source {name!r}; known: {', '.join(SOURCES)}") from None


def load_source(name: str, path: str | None = None, **options) -> SourceResult:
    """Load questions from a registered source: `load_source("medqa", "test.jsonl", split="test", limit=10)`."""
    return get_source(name).load(path, **options)


__all__ = ["SOURCES", "SourceResult", "get_source", "load_source"]
