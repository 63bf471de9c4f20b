"""Dedupe: one representative per cluster of duplicate questions, and no near-identical traces of one question.

Three passes, each cheaper than the next would be alone:
1. exact duplicates after normalisation (case, whitespace, punctuation, option order: `curate.textnorm`);
2. near-duplicate questions (stem + sorted options + context): MinHash LSH over word shingles proposes candidate
   pairs (no all-pairs comparison), rapidfuzz confirms each one (in order, or with word order ignored for a copy
   whose sentences were moved), union-find turns confirmed pairs into clusters;
3. near-duplicate traces of the same question (their reasoning text), for diversity; optional.
The representative of a cluster is its first row in input order, so the output does not depend on anything but
the input. Rejected rows carry `dup_of` (the kept row's id), `dup_score` and a reason code.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import model_validator
from rapidfuzz import fuzz

from curate.io import Rejected
from curate.minhash import EMPTY, band_keys, candidate_pairs, signatures
from curate.ngrams import Vocab, gram_hashes
from curate.progress import Progress
from curate.question_rows import QUESTIONS_INPUT, group_by_question, load_questions, row_id
from curate.records import DedupeColumns
from curate.stage import Batch, Outcome, Stage, StageConfig, StageReport, option
from curate.textnorm import QuestionText, normalize, option_overlap, question_text, reordered_similarity

STAGE = "dedupe"
EXACT, NEAR, NEAR_TRACE = "exact_duplicate", "near_duplicate", "near_duplicate_trace"
#: Trace text fields, most canonical first (filter writes `reasoning`; servers may return `reasoning_content`).
TRACE_TEXT_FIELDS = ("reasoning", "reasoning_content", "completion")

#: How much less similar than the threshold two stems may be when their full texts (with options) pass it.
STEM_SLACK = 0.1


class DedupeConfig(StageConfig):
    threshold: float = option(0.9, "rapidfuzz similarity (0-1) that makes two questions near-duplicates", gt=0, le=1)
    reorder_threshold: float | None = option(None, "word-order-free similarity (rapidfuzz token-sort ratio, 0-1) "
                                             "that makes a copy with its sentences moved a near-duplicate (default: "
                                             "--threshold)", gt=0, le=1)
    trace_dedupe: bool = option(True, "also drop near-identical traces of one question (their reasoning text)")
    trace_threshold: float = option(0.9, "similarity (0-1) that makes two traces of one question near-identical",
                                    gt=0, le=1)
    num_perm: int = option(64, "MinHash permutations", ge=8)
    bands: int = option(16, "LSH bands (must divide --num-perm): 16 x 4 proposes pairs from Jaccard ~0.5 upwards",
                        ge=1)
    shingle: int = option(2, "words per shingle", ge=1, cli=False)
    seed: int = option(1, "MinHash seed", cli=False)
    chunk: int = option(20_000, "documents hashed per numpy pass (bounds the temporaries)", ge=1, cli=False,
                        volatile=True)
    max_bucket: int = option(16, "LSH buckets larger than this give linearly many candidate pairs, not all of theirs",
                             ge=2, cli=False)

    @model_validator(mode="after")
    def _bands_divide(self) -> DedupeConfig:
        if self.num_perm % self.bands:
            raise ValueError(f"bands ({self.bands}) must divide num_perm ({self.num_perm})")
        return self


class DedupeReport(StageReport):
    threshold: float
    trace_threshold: float | None
    questions: int
    exact_duplicates: int
    near_duplicates: int
    near_duplicate_traces: int
    candidate_pairs: int
    confirmed_pairs: int

    def details(self) -> list[str]:
        return [f"questions: {self.questions}, exact duplicates: {self.exact_duplicates}, near duplicates: "
                f"{self.near_duplicates} ({self.candidate_pairs} LSH candidate pairs, {self.confirmed_pairs} "
                f"confirmed), near-duplicate traces: {self.near_duplicate_traces}"]


@dataclass
class Clusters:
    """Result of a duplicate search over n texts: `rep[i]` is the kept text that i duplicates (i itself if kept)."""

    rep: np.ndarray
    kind: list[str | None]
    score: np.ndarray
    stats: dict[str, int] = field(default_factory=dict)


def question_similarity(a: QuestionText, b: QuestionText, cutoff: float, reorder_cutoff: float | None = None) -> float:
    """Similarity of two questions (0..1): of their full texts (stem, sorted options, context), provided their stems
    alone are nearly as similar (options must not carry two short different stems: "The maxillary / frontal sinus
    drains into the"); or of their stems alone when one is a truncation of the other or lies inside the other (a
    question embedded in a vignette at most twice its length); or, for a copy whose sentences were moved, the same
    two scores with word order ignored, against `reorder_cutoff` (default `cutoff`). 0 when both have options and
    fewer than half of them agree (a shared stem or case vignette with different options asks a different
    question). `cutoff` is the near-duplicate threshold: scores under it (or under `reorder_cutoff` for the
    order-free score) come back as 0."""
    if a.options and b.options and min(option_overlap(a.options, b.options), option_overlap(b.options, a.options)) < 0.5:
        return 0.0
    score = similarity(a.full, b.full, cutoff)
    stem = stem_similarity(a.stem, b.stem, max(cutoff - STEM_SLACK, 0.0) if score else cutoff)
    if score:
        return score if stem else 0.0
    if stem and a.context == b.context:
        return stem
    reorder_cutoff = cutoff if reorder_cutoff is None else reorder_cutoff
    moved = reordered_similarity(a.full_words_sorted, b.full_words_sorted, reorder_cutoff)
    if moved and reordered_similarity(a.stem_words_sorted, b.stem_words_sorted, max(reorder_cutoff - STEM_SLACK, 0.0)):
        return moved
    return 0.0


def stem_similarity(a: str, b: str, cutoff: float = 0.0) -> float:
    """`similarity`, or the best alignment of the shorter stem inside the longer when it is at least half as long."""
    score = similarity(a, b, cutoff)
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    if not score and len(short) >= max(0.5 * len(long), 40):
        score = fuzz.partial_ratio(short, long, score_cutoff=cutoff * 100) / 100.0
    return score


def similarity(a: str, b: str, cutoff: float = 0.0) -> float:
    """rapidfuzz similarity of two normalised texts (0..1): the Indel ratio, or, when the shorter is at least 75% of
    the longer, its ratio against the longer's start (a truncated stem is still the same question). Scores under
    `cutoff` come back as 0 (rapidfuzz then stops early)."""
    cut = cutoff * 100
    score = fuzz.ratio(a, b, score_cutoff=cut)
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    if not score and long and len(short) >= 0.75 * len(long):
        score = fuzz.ratio(short, long[: len(short)], score_cutoff=cut)
    return score / 100.0


class _UnionFind:
    """Union-find whose root is always the smallest index: the first row in input order represents its cluster."""

    def __init__(self, n: int) -> None:
        self.parent = np.arange(n, dtype=np.int64)

    def find(self, x: int) -> int:
        parent = self.parent
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return int(root)

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _full(t: QuestionText | str) -> str:
    return t.full if isinstance(t, QuestionText) else t


def _key(t: QuestionText | str) -> str:
    return t.key if isinstance(t, QuestionText) else t


def find_duplicates(texts: Sequence[QuestionText] | Sequence[str], options: DedupeConfig | None = None,
                    progress: Progress | None = None) -> Clusters:
    """Exact then near-duplicate clusters over questions (`QuestionText`) or plain normalised strings.

    `texts` may be a lazy sequence (`LazyQuestions`): one streaming pass reads each item once for its exact key and
    MinHash band keys, and only the rows in candidate pairs are read again to confirm them; what stays in memory per
    row is a key and `bands` 64-bit integers."""
    options = options or DedupeConfig()
    n = len(texts)
    rep = np.arange(n, dtype=np.int64)
    kind: list[str | None] = [None] * n
    score = np.zeros(n)
    first: dict[str, int] = {}
    vocab = Vocab()
    keys = np.zeros((n, options.bands), dtype=np.uint64)
    valid = np.zeros(n, dtype=bool)
    for start in range(0, n, options.chunk):
        docs, members = [], []
        for i in range(start, min(start + options.chunk, n)):
            t = texts[i]
            j = first.setdefault(_key(t), i)
            if j != i:
                rep[i], kind[i], score[i] = j, EXACT, 1.0
                continue
            docs.append(_full(t).split())
            members.append(i)
        if docs:
            ids, offsets = vocab.encode(docs)
            hashes, owner = gram_hashes(ids, offsets, options.shingle, whole_if_short=True)
            sig = signatures(hashes, owner, len(docs), num_perm=options.num_perm, seed=options.seed)
            keys[members] = band_keys(sig, options.bands)
            valid[members] = sig[:, 0] != EMPTY
        if progress:
            progress("minhash", min(start + options.chunk, n), n)
    del first
    pairs = candidate_pairs(keys, valid, max_bucket=options.max_bucket)
    del keys
    uf = _UnionFind(n)
    best = np.zeros(n)
    confirmed = 0
    # Each row in a candidate pair is read (normalised) once, not once per pair.
    cache = {i: texts[i] for i in np.unique(pairs).tolist()}
    for done, (a, b) in enumerate(pairs.tolist()):
        ta, tb = cache[a], cache[b]
        s = (question_similarity(ta, tb, options.threshold, options.reorder_threshold) if isinstance(ta, QuestionText)
             else similarity(ta, tb, options.threshold))
        if s:  # both return 0 under their thresholds
            confirmed += 1
            uf.union(a, b)
            best[a], best[b] = max(best[a], s), max(best[b], s)
        if progress and done % 50_000 == 0:
            progress("confirm", done, len(pairs))
    del cache
    for i in np.flatnonzero(valid).tolist():
        root = uf.find(i)
        if root != i:
            rep[i], kind[i], score[i] = root, NEAR, best[i]
    # Exact duplicates of a row that is itself a near-duplicate point at the final representative.
    rep = rep[rep]
    stats = {"exact_duplicates": kind.count(EXACT), "near_duplicates": kind.count(NEAR),
             "candidate_pairs": len(pairs), "confirmed_pairs": confirmed}
    return Clusters(rep=rep, kind=kind, score=score, stats=stats)


class LazyQuestions(Sequence):
    """`question_text` of each question row, computed when read: find_duplicates reads most rows once, so a
    million normalised copies never sit in memory together."""

    def __init__(self, rows: Sequence[dict[str, Any]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i):  # type: ignore[override]
        return question_text(self.rows[i])


def trace_text(row: dict[str, Any]) -> str | None:
    for name in TRACE_TEXT_FIELDS:
        value = row.get(name)
        if isinstance(value, str) and value.strip():
            return value
    return None


def near_duplicate_traces(texts: Sequence[str | None], threshold: float) -> list[tuple[int, float] | None]:
    """Among traces of ONE question (input order), each trace that nearly repeats an earlier kept one:
    (index of the kept trace, similarity), else None. Groups are small (samples per question), so pairwise."""
    kept: list[tuple[int, str]] = []
    out: list[tuple[int, float] | None] = []
    cutoff = threshold * 100
    for i, text in enumerate(texts):
        match = None
        if text is not None:
            norm = normalize(text)
            for j, other in kept:
                s = fuzz.ratio(norm, other, score_cutoff=cutoff)
                if s:
                    match = (j, s / 100.0)
                    break
            if match is None:
                kept.append((i, norm))
        out.append(match)
    return out


@dataclass
class DedupeResult:
    kept: list[dict[str, Any]]
    rejected: list[Rejected]
    stats: dict[str, int]


def dedupe(rows: list[dict[str, Any]], *, questions: dict[str, dict[str, Any]] | None = None,
           options: DedupeConfig | None = None, path: str | os.PathLike[str] = "<rows>",
           progress: Progress | None = None, locs: list[int] | None = None) -> DedupeResult:
    """Dedupe rows that carry a question (Question rows, or trace rows with `questions` to join their text).

    Duplicate questions take all their rows with them; `dup_of` names the first row of the kept question."""
    options = options or DedupeConfig()
    groups = group_by_question(rows, questions, path=path, locs=locs)
    clusters = find_duplicates(LazyQuestions(groups.questions), options, progress)
    drop: dict[int, tuple[str, str | None, float]] = {}
    for g, members in enumerate(groups.rows_of):
        r = int(clusters.rep[g])
        if r != g:
            kept_id = row_id(rows[groups.rows_of[r][0]])
            for i in members:
                drop[i] = (clusters.kind[g] or NEAR, kept_id, float(clusters.score[g]))
        elif options.trace_dedupe and len(members) > 1:
            matches = near_duplicate_traces([trace_text(rows[i]) for i in members], options.trace_threshold)
            for i, match in zip(members, matches):
                if match is not None:
                    drop[i] = (NEAR_TRACE, row_id(rows[members[match[0]]]), match[1])
    kept, rejected = [], []
    for i, row in enumerate(rows):
        if i in drop:
            reason, dup_of, s = drop[i]
            rejected.append(Rejected(row={**row, "dup_of": dup_of, "dup_score": round(s, 4)}, reasons=[reason],
                                     detail=f"duplicate of {dup_of} (similarity {s:.3f})"))
        else:
            kept.append(row)
    stats = {**clusters.stats, "questions": len(groups.questions),
             "near_duplicate_traces": sum(1 for v in drop.values() if v[0] == NEAR_TRACE)}
    return DedupeResult(kept=kept, rejected=rejected, stats=stats)


class DedupeStage(Stage[DedupeConfig, DedupeReport]):
    """File-level dedupe (the CLI and `curate run`): every input problem is raised before anything is written."""

    name = STAGE
    Config, Report, Columns = DedupeConfig, DedupeReport, DedupeColumns
    files = {"questions": QUESTIONS_INPUT}

    def process(self, batch: Batch) -> Outcome:
        questions = load_questions(batch.files["questions"]) if batch.files["questions"] else None
        result = dedupe(batch.rows, questions=questions, options=self.config, path=batch.path or "<rows>",
                        progress=batch.progress, locs=batch.locs)
        c = self.config
        return Outcome(kept=result.kept, rejected=result.rejected,
                       stats=dict(threshold=c.threshold, trace_threshold=c.trace_threshold if c.trace_dedupe else None,
                                  **result.stats))


run_dedupe = DedupeStage.invoke
