"""Decontaminate: drop training rows whose question is a benchmark test item, or a light rewrite of one.

The benchmarks (a few thousand items) are indexed; training rows (up to millions) stream past in chunks:
- exact: the normalised stem equals an item's (and the options agree when either is short);
- ngram: the row shares long word n-grams (13 words by default) of an item's stem or context, covering half of
  the item or backed by a fair fuzzy likeness; boilerplate is left out of the index (an n-gram found in more than
  `long_max_df` items, or holding a 10-gram found in more than `sub_max_df` items);
- fuzzy: short n-grams (weighted by rarity across the benchmark, boilerplate left out) pick the top candidates, and
  rapidfuzz confirms one: Indel ratio for rewrites, best partial alignment for a truncated stem or a stem embedded
  in a longer vignette, token-sort ratio (word order ignored) for a rewrite whose sentences were moved. Items with a
  short stem need their options to agree as well, so that distinct questions sharing boilerplate ("Which of the
  following is the most likely diagnosis?") never match.
A flagged row carries `contaminated_by` = {benchmark, item_id, method, score}. `exposure` runs the other way:
which benchmark items occur in a training file.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator
from rapidfuzz import fuzz

from curate.io import InputError, Rejected
from curate.ngrams import NgramIndex, Vocab
from curate.progress import Progress
from curate.question_rows import QUESTIONS_INPUT, group_by_question, load_questions, row_id
from curate.records import DecontaminateColumns
from curate.stage import Batch, ConfigError, Outcome, Stage, StageConfig, StageReport, option
from curate.textnorm import QuestionText, option_overlap, question_text, reordered_similarity

STAGE = "decontaminate"
REASON = "benchmark_contamination"
#: Default native file of each benchmark split, relative to $CURATE_BENCHMARK_DIR (the layout of shared/data).
DEFAULT_FILES = {
    "medqa:test": "medqa/test.4_options.jsonl",
    "medmcqa:dev": "medmcqa/dev.jsonl",
    "pubmedqa:test": "pubmedqa/ori_pqal.json",
}
BENCHMARK_DIR_ENV = "CURATE_BENCHMARK_DIR"



class DecontaminateConfig(StageConfig):
    benchmarks: list[str] = option(default_factory=lambda: list(DEFAULT_FILES), flag="--benchmark", short="-b",
                                   help="SOURCE:SPLIT of each benchmark to check against (medqa:test, medmcqa:dev, "
                                   "pubmedqa:test)")
    benchmark_paths: dict[str, str] = option(default_factory=dict, flag="--benchmark-path", metavar="SOURCE:SPLIT=FILE",
                                             help="SOURCE:SPLIT=FILE, the native file of a benchmark (default: "
                                             "$CURATE_BENCHMARK_DIR, else the Hub)")
    reverse: bool = option(False, "check the benchmarks against INPUT (a training file): OUTPUT gets the benchmark "
                                  "items INPUT does not contain, --rejected the exposed ones")
    threshold: float = option(0.9, "rapidfuzz similarity (0-1) that confirms a fuzzy match", gt=0, le=1)
    reorder_threshold: float | None = option(None, "word-order-free similarity (rapidfuzz token-sort ratio, 0-1) "
                                             "that confirms a rewrite with its sentences moved (default: --threshold)",
                                             gt=0, le=1)
    ngram: int = option(13, "words in a long n-gram: sharing one is contamination", ge=5)
    long_max_df: int = option(1, "a long n-gram in more than this many items is boilerplate", ge=1, cli=False)
    sub_max_df: int = option(2, "... and so is one holding an (ngram-3)-gram found in more items than this", ge=1,
                             cli=False)
    ngram_min_share: float = option(0.5, "shared long n-grams (weighted share of the item's) that alone flag a row",
                                    gt=0, le=1, cli=False)
    ngram_min_similarity: float = option(0.7, "otherwise the fuzzy similarity that must back a shared long n-gram",
                                         ge=0, le=1, cli=False)
    cand_ngram: int = option(3, "words per n-gram for fuzzy candidate search", ge=1, cli=False)
    cand_max_df: int = option(20, "short n-grams in more items than this are boilerplate, no evidence", ge=1, cli=False)
    min_coverage: float = option(0.25, "share of an item's (weighted) short n-grams a row must contain to be compared",
                                 ge=0, le=1, cli=False)
    top_k: int = option(5, "candidates compared per row", ge=1, cli=False)
    short_words: int = option(12, "stems shorter than this need their options to agree too", ge=0, cli=False)
    medium_words: int = option(30, "stems shorter than this must share at least one option (when both have options)",
                               ge=0, cli=False)
    min_partial_chars: int = option(40, "shortest text allowed to match by partial alignment (15 when options agree)",
                                    ge=1, cli=False)
    same_options_slack: float = option(0.05, "threshold lowered by this when all (4+) options are the same", ge=0,
                                       lt=1, cli=False)
    chunk: int = option(5_000, "rows matched per pass", ge=1, cli=False, volatile=True)

    @field_validator("benchmarks")
    @classmethod
    def _specs(cls, specs: list[str]) -> list[str]:
        if not specs:
            raise ValueError("no benchmark given: pass --benchmark SOURCE:SPLIT (e.g. medqa:test)")
        for spec in specs:
            parse_benchmark(spec)
        return specs


class DecontaminateReport(StageReport):
    direction: Literal["training_vs_benchmark", "benchmark_in_training"]
    benchmarks: list[str]
    threshold: float
    items: int = 0
    per_benchmark: dict[str, int] = Field(default_factory=dict, description="rows flagged per benchmark")
    items_hit: dict[str, int] = Field(default_factory=dict, description="distinct benchmark items hit")
    per_method: dict[str, int] = Field(default_factory=dict)
    exposed_per_benchmark: dict[str, int] = Field(default_factory=dict, description="--reverse: items found in training")
    boilerplate_ngrams_ignored: int = 0
    boilerplate_short_ngrams_ignored: int = 0

    def summary(self) -> str:
        if self.direction == "benchmark_in_training":
            return f"{self.stage}: {self.rows_out} of {self.rows_in} benchmark items are not in the input"
        return super().summary()

    def details(self) -> list[str]:
        if self.direction == "benchmark_in_training":
            return [f"{name}: {count} items found in training" for name, count in sorted(self.exposed_per_benchmark.items())]
        lines = [f"{name}: {count} rows contaminated ({self.items_hit.get(name, 0)} items)"
                 for name, count in self.per_benchmark.items()]
        if self.per_method:
            lines.append("by method: " + ", ".join(f"{k} {v}" for k, v in sorted(self.per_method.items())))
        return lines


@dataclass
class Item:
    benchmark: str
    item_id: str
    text: QuestionText
    stem_words: int


@dataclass
class Match:
    benchmark: str
    item_id: str
    method: str
    score: float

    def as_dict(self) -> dict[str, Any]:
        return {"benchmark": self.benchmark, "item_id": self.item_id, "method": self.method,
                "score": round(float(self.score), 4)}


# ---------------------------------------------------------------- benchmarks


def parse_benchmark(spec: str) -> tuple[str, str]:
    """'medqa:test' -> ('medqa', 'test'); a bare name means its test split ('medmcqa' -> dev, which is its eval split)."""
    name, _, split = spec.partition(":")
    if not name:
        raise ValueError(f"bad --benchmark {spec!r}: expected SOURCE:SPLIT, e.g. medqa:test")
    return name, split or ("dev" if name == "medmcqa" else "test")


def benchmark_path(spec: str, paths: dict[str, str] | None) -> str | None:
    """The file for a benchmark: an explicit path, else $CURATE_BENCHMARK_DIR/<default file>, else None (Hub)."""
    name, split = parse_benchmark(spec)
    key = f"{name}:{split}"
    for candidate in (spec, key, name):
        if paths and candidate in paths:
            return paths[candidate]
    root = os.environ.get(BENCHMARK_DIR_ENV)
    if root and key in DEFAULT_FILES and (Path(root) / DEFAULT_FILES[key]).exists():
        return str(Path(root) / DEFAULT_FILES[key])
    return None


def load_benchmarks(specs: Sequence[str], paths: dict[str, str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """{'medqa:test': [Question rows]} through `sources` (a native file, or the Hub copy when no path is known)."""
    from sources import load_source

    out: dict[str, list[dict[str, Any]]] = {}
    for spec in specs:
        name, split = parse_benchmark(spec)
        path = benchmark_path(spec, paths)
        try:
            result = load_source(name, path, split=split, skip_invalid=True)
        except InputError as exc:
            if path is None:
                raise InputError(exc.path, f"{exc.message}. No local file for benchmark {name}:{split}: pass "
                                 f"--benchmark-path {name}:{split}=FILE or set ${BENCHMARK_DIR_ENV}") from None
            raise
        if not result.questions:
            raise InputError(path or name, f"benchmark {name}:{split} has no usable items")
        out[f"{name}:{split}"] = [q.row() for q in result.questions]
    return out


# ---------------------------------------------------------------- index


def _words(t: QuestionText) -> list[str]:
    """Words the long n-grams come from: stem and context (options are too generic and reorderable)."""
    return (t.stem + " " + t.context).split()


def _candidate_words(t: QuestionText) -> list[str]:
    """Words the candidate n-grams come from: the options too, so a two-word stem still finds its item."""
    return t.full.split()


class BenchmarkIndex:
    """Benchmark items, ready to be matched against any number of training rows."""

    def __init__(self, benchmarks: dict[str, list[dict[str, Any]]], options: DecontaminateConfig | None = None) -> None:
        self.options = options = options or DecontaminateConfig()
        self.items = [Item(benchmark=name, item_id=str(row.get("id")), text=(t := question_text(row)),
                           stem_words=len(t.stem.split()))
                      for name, rows in benchmarks.items() for row in rows]
        self.vocab = Vocab()
        ids, offsets = self.vocab.encode([_candidate_words(it.text) for it in self.items])
        self.candidates = NgramIndex.build(ids, offsets, options.cand_ngram, max_df=options.cand_max_df)
        ids, offsets = self.vocab.encode([_words(it.text) for it in self.items])
        self.long = NgramIndex.build(ids, offsets, options.ngram, max_df=options.long_max_df,
                                     sub_n=max(options.ngram - 3, options.cand_ngram), sub_max_df=options.sub_max_df)
        self.vocab.frozen = True  # training words the benchmark never uses cannot help a match
        self.by_stem: dict[str, list[int]] = {}
        for i, it in enumerate(self.items):
            if it.text.stem:
                self.by_stem.setdefault(it.text.stem, []).append(i)

    @property
    def stats(self) -> dict[str, int]:
        return {"items": len(self.items), "boilerplate_ngrams_ignored": self.long.dropped_boilerplate,
                "boilerplate_short_ngrams_ignored": self.candidates.dropped_boilerplate}

    def fuzzy(self, q: QuestionText, it: Item, *, options_agree: bool, cutoff: float = 0.0) -> float:
        """Stem similarity: Indel ratio; or, for a stem embedded in a longer row, the best alignment of the item
        inside it; or, for a truncated stem (at least half the item), the ratio against the item's same-length
        prefix. Short texts may align only when the options agree too. Scores under `cutoff` may come back as 0
        (rapidfuzz stops early: partial alignment of long texts is the costly part)."""
        a, b = q.stem, it.text.stem
        cut = cutoff * 100
        score = fuzz.ratio(a, b, score_cutoff=cut)
        min_chars = 15 if options_agree else self.options.min_partial_chars
        if score >= 100 or len(b) < min_chars:
            return score / 100.0
        if len(a) >= len(b) + 10:  # item inside a longer row
            score = max(score, fuzz.partial_ratio(b, a, score_cutoff=max(cut, score)))
        elif min_chars <= len(a) < len(b) and len(a) >= 0.5 * len(b):  # truncated stem
            score = max(score, fuzz.ratio(a, b[: len(a)], score_cutoff=max(cut, score)))
        return score / 100.0

    def reordered(self, q: QuestionText, it: Item, cutoff: float) -> float:
        """Stem similarity whatever the order of the words: a rewrite that moved the stem's sentences around (the
        closing question first, the vitals before the history) keeps its words and loses its order."""
        return reordered_similarity(q.stem_words_sorted, it.text.stem_words_sorted, cutoff)

    def confirm(self, q: QuestionText, i: int, long_hit: float) -> Match | None:
        it = self.items[i]
        o = self.options
        overlap = option_overlap(q.options, it.text.options) if q.options and it.text.options else None
        if it.stem_words < o.short_words and it.text.options and (overlap is None or overlap < 0.75):
            return None  # a short stem alone does not identify a question: its options must agree
        if it.text.context and q.context and not _context_agrees(q.context, it.text.context):
            return None  # same question wording about a different abstract
        if q.stem == it.text.stem:
            return Match(it.benchmark, it.item_id, "exact", 1.0)
        # The same options (all of them, and distinctive ones: not yes/no/maybe) make a lightly reworded short stem
        # the same question, so the stem may differ a little more.
        same_options = overlap == 1.0 and len(it.text.options) >= 4
        slack = o.same_options_slack if same_options else 0.0
        fuzzy_bar = o.threshold - slack
        score = self.fuzzy(q, it, options_agree=overlap is not None and overlap >= 0.75,
                           cutoff=min(fuzzy_bar, o.ngram_min_similarity) if long_hit > 0 else fuzzy_bar)
        # A long verbatim passage is contamination when it is much of the item, or backed by a fair overall
        # likeness: one shared 13-gram can still be a template phrase the benchmark happens to use once.
        if long_hit >= o.ngram_min_share or (long_hit > 0 and score >= o.ngram_min_similarity):
            return Match(it.benchmark, it.item_id, "ngram", max(long_hit, score))
        if it.stem_words < o.medium_words and overlap is not None and overlap < 0.25:
            return None  # a mid-length stem with none of the same options asks something else
        if score >= fuzzy_bar:
            return Match(it.benchmark, it.item_id, "fuzzy", score)
        reorder_bar = (o.threshold if o.reorder_threshold is None else o.reorder_threshold) - slack
        moved = self.reordered(q, it, cutoff=reorder_bar)
        if moved:
            return Match(it.benchmark, it.item_id, "fuzzy", moved)
        return None

    def match(self, texts: Sequence[QuestionText], progress: Progress | None = None) -> list[Match | None]:
        """The best benchmark match of each question (or None), chunk by chunk."""
        o = self.options
        out: list[Match | None] = []
        for start in range(0, len(texts), o.chunk):
            chunk = texts[start : start + o.chunk]
            candidates: list[dict[int, float]] = [{} for _ in chunk]
            long_hits: list[dict[int, float]] = [{} for _ in chunk]
            lq, li, lw = self.long.query(*self.vocab.encode([_words(t) for t in chunk]))
            for q, i, w in zip(lq.tolist(), li.tolist(), lw.tolist()):
                long_hits[q][i] = w / max(self.long.doc_weight[i], 1e-9)
                candidates[q][i] = 2.0  # always compared, and first
            cq, ci, cw = self.candidates.query(*self.vocab.encode([_candidate_words(t) for t in chunk]))
            coverage = cw / np.maximum(self.candidates.doc_weight[ci], 1e-9)
            keep = coverage >= o.min_coverage
            for q, i, c in zip(cq[keep].tolist(), ci[keep].tolist(), coverage[keep].tolist()):
                candidates[q][i] = max(candidates[q].get(i, 0.0), c)
            for k, t in enumerate(chunk):
                for i in self.by_stem.get(t.stem, ()):
                    candidates[k][i] = 3.0  # exact stems first
                best = None
                ranked = sorted(candidates[k].items(), key=lambda kv: (-kv[1], kv[0]))[: o.top_k + len(long_hits[k])]
                for i, _ in ranked:
                    m = self.confirm(t, i, long_hits[k].get(i, 0.0))
                    if m is not None and (best is None or _rank(m) > _rank(best)):
                        best = m
                out.append(best)
            if progress:
                progress("match", min(start + o.chunk, len(texts)), len(texts))
        return out


def _rank(m: Match) -> tuple[int, float]:
    return ({"exact": 3, "ngram": 2, "fuzzy": 1}[m.method], m.score)


def _context_agrees(a: str, b: str) -> bool:
    """Two abstracts are the same source when most of the shorter one's words are in the other."""
    wa, wb = set(a.split()), set(b.split())
    return len(wa & wb) >= 0.5 * min(len(wa), len(wb))


# ---------------------------------------------------------------- rows and files


@dataclass
class DecontaminateResult:
    kept: list[dict[str, Any]]
    rejected: list[Rejected]
    per_benchmark: dict[str, int]
    per_method: dict[str, int]
    items_hit: dict[str, int]


def decontaminate(rows: list[dict[str, Any]], index: BenchmarkIndex, *, questions: dict[str, dict[str, Any]] | None = None,
                  path: str | os.PathLike[str] = "<rows>", progress: Progress | None = None,
                  locs: list[int] | None = None) -> DecontaminateResult:
    """Split rows into clean and contaminated; a contaminated question takes all its rows (traces) with it."""
    groups = group_by_question(rows, questions, path=path, locs=locs)
    matches = index.match([question_text(q) for q in groups.questions], progress)
    kept, rejected = [], []
    per_benchmark: Counter[str] = Counter()
    per_method: Counter[str] = Counter()
    hit_items: dict[str, set[str]] = {}
    for i, row in enumerate(rows):
        m = matches[groups.group_of[i]]
        if m is None:
            kept.append({**row, "contaminated_by": None})  # checked, and clean: later stages and publish see it
            continue
        per_benchmark[m.benchmark] += 1
        per_method[m.method] += 1
        hit_items.setdefault(m.benchmark, set()).add(m.item_id)
        rejected.append(Rejected(row={**row, "contaminated_by": m.as_dict()}, reasons=[REASON],
                                 detail=f"{m.method} match of {m.benchmark} item {m.item_id} (score {m.score:.3f})"))
    return DecontaminateResult(kept=kept, rejected=rejected, per_benchmark=dict(per_benchmark),
                               per_method=dict(per_method), items_hit={k: len(v) for k, v in hit_items.items()})


def exposure(training: list[dict[str, Any]], benchmarks: dict[str, list[dict[str, Any]]], *,
             options: DecontaminateConfig | None = None, questions: dict[str, dict[str, Any]] | None = None,
             path: str | os.PathLike[str] = "<rows>", progress: Progress | None = None,
             max_listed: int = 10, locs: list[int] | None = None) -> tuple[list[dict[str, Any]], list[Rejected]]:
    """The other direction: which benchmark items occur in a training file. Returns (clean items, exposed items);
    exposed items carry `found_in` (up to `max_listed` training row ids with method and score) and `found_count`."""
    index = BenchmarkIndex(benchmarks, options)
    groups = group_by_question(training, questions, path=path, locs=locs)
    matches = index.match([question_text(q) for q in groups.questions], progress)
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for g, m in enumerate(matches):
        if m is not None:
            first = training[groups.rows_of[g][0]]
            found.setdefault((m.benchmark, m.item_id), []).append(
                {"row_id": row_id(first), "method": m.method, "score": round(float(m.score), 4)})
    clean, exposed = [], []
    for name, rows in benchmarks.items():
        for row in rows:
            hits = found.get((name, str(row.get("id"))))
            if not hits:
                clean.append(row)
                continue
            exposed.append(Rejected(row={**row, "found_in": hits[:max_listed], "found_count": len(hits)},
                                    reasons=["found_in_training"], detail=f"{len(hits)} training question(s) match"))
    return clean, exposed


class DecontaminateStage(Stage[DecontaminateConfig, DecontaminateReport]):
    """File-level decontamination (the CLI and `curate run`). With `reverse`, the input is the training file and the
    output receives the benchmark items it does NOT contain (exposed ones go to the rejected file)."""

    name = STAGE
    Config, Report, Columns = DecontaminateConfig, DecontaminateReport, DecontaminateColumns
    files = {"questions": QUESTIONS_INPUT}

    def preflight(self) -> None:
        """Every benchmark has a local file, or the Hub may be asked for it."""
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
        for spec in self.config.benchmarks:
            path = benchmark_path(spec, self.config.benchmark_paths or None)
            if path is not None and not Path(path).exists():
                raise ConfigError(f"benchmark {spec}: {path} does not exist")
            if path is None and offline:
                raise InputError(f"benchmark {spec}", f"no local file and the Hub is offline (HF_HUB_OFFLINE): give "
                                 f"benchmark_paths {{ \"{spec}\" = FILE }} (--benchmark-path {spec}=FILE) or set "
                                 f"${BENCHMARK_DIR_ENV} to a folder laid out like shared/data/benchmarks")

    def process(self, batch: Batch) -> Outcome:
        c = self.config
        self.preflight()
        question_map = load_questions(batch.files["questions"]) if batch.files["questions"] else None
        bench = load_benchmarks(c.benchmarks, c.benchmark_paths or None)
        path = batch.path or "<rows>"
        if c.reverse:
            clean, exposed = exposure(batch.rows, bench, options=c, questions=question_map, path=path,
                                      progress=batch.progress, locs=batch.locs)
            per_benchmark = dict(Counter(f"{r.row['source']}:{r.row['split']}" for r in exposed))
            return Outcome(kept=clean, rejected=exposed, stats=dict(
                direction="benchmark_in_training", benchmarks=c.benchmarks, threshold=c.threshold,
                items=sum(len(v) for v in bench.values()), exposed_per_benchmark=per_benchmark))
        index = BenchmarkIndex(bench, c)
        result = decontaminate(batch.rows, index, questions=question_map, path=path, progress=batch.progress,
                               locs=batch.locs)
        return Outcome(kept=result.kept, rejected=result.rejected, stats=dict(
            direction="training_vs_benchmark", benchmarks=c.benchmarks, threshold=c.threshold,
            per_benchmark={b: result.per_benchmark.get(b, 0) for b in bench}, items_hit=result.items_hit,
            per_method=result.per_method, **index.stats))


run_decontaminate = DecontaminateStage.invoke
