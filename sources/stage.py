"""The sources stage: one or more registered sources (native files or Hub copies) into one Question file.

One code path for `curate sources pull NAME ...` (one `SourceSpec` from its flags) and `curate run`'s `[[sources]]`
entries (a list of them): each spec is loaded by `load_spec`, ids stay unique across specs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from curate.io import Rejected
from curate.records import Question
from curate.stage import Batch, Outcome, Stage, StageConfig, StageReport, option
from sources.base import SourceResult

#: Options only the custom source takes.
CUSTOM_ONLY = ("mapping", "answer_format", "source_name")


class SourceSpec(StageConfig):
    """One source to load: what `curate sources pull` takes as flags and a `[[sources]]` entry as keys."""

    name: str = option(..., "registered source: medqa, medmcqa, pubmedqa, custom (see `curate sources list`)",
                       argument=True)
    path: str | None = option(None, "native release file or folder; omit to use the Hub copy")
    split: str | None = option(None, "split name (default: from the file name, or the source's test split)")
    limit: int | None = option(None, "keep only the first N questions", ge=1)
    config: str | None = option(None, "Hub config (PubMedQA: pqa_labeled, pqa_artificial, ...)")
    hub_format: bool = option(False, "the path holds Hub-format rows (a local Hub export)")
    skip_invalid: bool = option(False, "reject bad rows (with a reason) instead of failing")
    mapping: dict[str, str] | None = option(None, "custom source: KEY=COLUMN (question, answer, options or A/B/C..., "
                                            "id, context, split, or any meta key)", flag="--map",
                                            metavar="KEY=COLUMN")
    answer_format: Literal["letter", "index0", "index1", "text"] = option(
        "letter", "custom source: how the answer column is written")
    source_name: str | None = option(None, "custom source: the name used in ids (default custom)", flag="--name")

    @field_validator("name")
    @classmethod
    def _registered(cls, name: str) -> str:
        from sources import SOURCES

        if name not in SOURCES:
            raise ValueError(f"unknown source {name!r}; known: {', '.join(SOURCES)}")
        return name

    @model_validator(mode="after")
    def _custom_options(self) -> SourceSpec:
        if self.name != "custom":
            given = [k for k in CUSTOM_ONLY if getattr(self, k) != type(self).model_fields[k].get_default()]
            if given:
                raise ValueError(f"{', '.join(given)}: only the custom source takes {'these' if len(given) > 1 else 'this'}")
        return self

    def describe(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(mode="json").items() if v is not None}


def load_spec(spec: SourceSpec) -> SourceResult:
    """Load one source spec through its registered module."""
    from sources import get_source

    options: dict[str, Any] = dict(split=spec.split, limit=spec.limit, config=spec.config, hub_format=spec.hub_format,
                                   skip_invalid=spec.skip_invalid)
    if spec.name == "custom":
        options.update(mapping=spec.mapping, answer_format=spec.answer_format, source_name=spec.source_name or "custom")
    return get_source(spec.name).load(spec.path, **options)


class SourcesConfig(StageConfig):
    sources: list[SourceSpec] = option(..., "the sources to load, in order", min_length=1, cli=False)

    @field_validator("sources")
    @classmethod
    def _unique(cls, sources: list[SourceSpec]) -> list[SourceSpec]:
        return unique_sources(sources)


def unique_sources(sources: list[Any]) -> list[Any]:
    """The same source entry twice is a mistake (its questions would be loaded twice): refused."""
    seen = set()
    for s in sources:
        key = (s.name, s.path, s.split, s.config)
        if key in seen:
            raise ValueError(f"source {s.name!r} (path {s.path}, split {s.split}) is listed twice")
        seen.add(key)
    return sources


class SourcesReport(StageReport):
    sources: list[dict[str, Any]] = Field(default_factory=list, description="each spec as given (unset keys left out)")

    def summary(self) -> str:
        line = f"{self.stage}: {self.rows_out} questions"
        if self.rejected:
            line += f" ({self.rejected} rejected: {', '.join(self.reasons)})"
        return line


class SourcesStage(Stage[SourcesConfig, SourcesReport]):
    """Load every spec into one Question file; a question listed by two specs (overlapping splits) is kept once."""

    name = "sources"
    Config, Report, Columns = SourcesConfig, SourcesReport, Question
    reads_input = False

    def process(self, batch: Batch) -> Outcome:
        questions: list[Question] = []
        dropped: list[Rejected] = []
        seen: set[str] = set()
        for spec in self.config.sources:
            result = load_spec(spec)
            for q in result.questions:
                if q.id in seen:
                    dropped.append(Rejected(row=q.row(), reasons=["duplicate_id"], detail=f"{q.id} already loaded"))
                    continue
                seen.add(q.id)
                questions.append(q)
            # Native rows that did not load carry no `source`: count them under the spec's name.
            dropped.extend(Rejected(row={"source": spec.name, **r.row}, reasons=r.reasons, detail=r.detail)
                           for r in result.rejected)
        return Outcome(kept=questions, rejected=dropped,
                       stats={"sources": [s.describe() for s in self.config.sources]})


def pull_sources(output: Any, *, sources: list[dict[str, Any] | SourceSpec], **kwargs: Any) -> SourcesReport:
    """The sources stage as one function: `pull_sources("q.parquet", sources=[{"name": "medqa", "path": ...}])`."""
    return SourcesStage.invoke(None, output, sources=sources, **kwargs)
