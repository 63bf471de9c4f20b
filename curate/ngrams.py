"""Word n-gram hashing and an inverted n-gram index, vectorised with numpy.

Words become integer ids through a `Vocab` (deterministic: ids follow first appearance, unlike Python's salted
`hash`), n-grams become 64-bit hashes, and an `NgramIndex` maps each hash to the documents containing it. The
whole-corpus work is array arithmetic over chunks, so a million documents cost seconds per pass and memory stays
proportional to one chunk plus the index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_MULT = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant (golden ratio) for the polynomial roll
UNKNOWN = 0  # id of words a frozen vocab has never seen: grams containing it can match nothing indexed


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads every input bit over the output so that hashes (and MinHash) behave randomly."""
    x = x.astype(np.uint64, copy=True)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


class Vocab:
    """word -> id (1-based; 0 is UNKNOWN). `frozen` vocabs map unseen words to UNKNOWN instead of growing."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.frozen = False

    def encode(self, docs: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
        """Word lists -> (concatenated ids int64, offsets of length len(docs)+1)."""
        ids = self.ids
        flat: list[int] = []
        offsets = np.zeros(len(docs) + 1, dtype=np.int64)
        if self.frozen:
            for i, words in enumerate(docs):
                flat.extend([ids.get(w, UNKNOWN) for w in words])
                offsets[i + 1] = len(flat)
        else:
            for i, words in enumerate(docs):
                for w in words:
                    wid = ids.get(w)
                    if wid is None:
                        wid = ids[w] = len(ids) + 1
                    flat.append(wid)
                offsets[i + 1] = len(flat)
        return np.asarray(flat, dtype=np.int64), offsets


def _rolling(ids: np.ndarray, offsets: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Hash of the n words starting at every position of the concatenated ids, and whether those n words lie in
    one document (positions past the last full gram are absent: arrays have len(ids) - n + 1 entries)."""
    total = len(ids)
    if total < n:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=bool)
    width = total - n + 1
    h = np.zeros(width, dtype=np.uint64)
    values = ids.astype(np.uint64)
    for j in range(n):
        h = h * _MULT + values[j : j + width]
    owners = np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), np.diff(offsets))[:width]
    valid = np.arange(width, dtype=np.int64) + n <= offsets[owners + 1]
    return mix64(h), valid


def gram_hashes(ids: np.ndarray, offsets: np.ndarray, n: int, *, whole_if_short: bool) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every word n-gram of every document: (hashes uint64, owner doc index int64), in document order.

    Documents shorter than n contribute one hash of all their words when `whole_if_short` (MinHash needs at least
    one shingle per non-empty document) and nothing otherwise (a "long n-gram" index must not match short texts).
    """
    lengths = np.diff(offsets)
    h, valid = _rolling(ids, offsets, n)
    owner_of_pos = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)[: len(h)]
    hashes, owner = h[valid], owner_of_pos[valid]
    if whole_if_short:
        short = np.nonzero((lengths > 0) & (lengths < n))[0]
        if len(short):
            extra = np.empty(len(short), dtype=np.uint64)
            for k, doc in enumerate(short):  # few documents: plain loop
                acc = np.uint64(0)
                for v in ids[offsets[doc] : offsets[doc + 1]].astype(np.uint64):
                    acc = acc * _MULT + v
                extra[k] = acc
            hashes = np.concatenate([hashes, mix64(extra)])
            owner = np.concatenate([owner, short])
            order = np.argsort(owner, kind="stable")
            hashes, owner = hashes[order], owner[order]
    return hashes, owner


def boilerplate_grams(ids: np.ndarray, offsets: np.ndarray, n: int, sub_n: int, max_df: int) -> np.ndarray:
    """For each valid n-gram (in `gram_hashes` order): does it contain a sub-n-gram found in more than `max_df`
    documents? "bilaterally. Which of the following is the most appropriate next step in the management of this"
    is one item's 13-gram, but 12 of its words are the exam's boilerplate: it proves nothing."""
    h, valid = _rolling(ids, offsets, n)
    sub, sub_valid = _rolling(ids, offsets, sub_n)
    owner = np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), np.diff(offsets))[: len(sub)]
    uh, uo = unique_per_doc(sub[sub_valid], owner[sub_valid])
    grams, df = np.unique(uh, return_counts=True)
    frequent = grams[df > max_df]
    flag = np.isin(sub, frequent) & sub_valid
    contains = np.zeros(len(h), dtype=bool)
    for j in range(n - sub_n + 1):
        contains |= flag[j : j + len(h)]
    return contains[valid]


def unique_per_doc(hashes: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop repeated grams within a document (a phrase said twice is one piece of evidence)."""
    if not len(hashes):
        return hashes, owner
    order = np.lexsort((hashes, owner))
    h, o = hashes[order], owner[order]
    keep = np.ones(len(h), dtype=bool)
    keep[1:] = (h[1:] != h[:-1]) | (o[1:] != o[:-1])
    return h[keep], o[keep]


@dataclass
class NgramIndex:
    """Inverted index of word n-grams over a small document set (a benchmark): hash -> documents.

    Grams found in more than `max_df` documents are boilerplate ("which of the following is the most likely") and
    are left out, so sharing them is no evidence of anything.
    """

    n: int
    hashes: np.ndarray  # sorted unique gram hashes kept (df <= max_df)
    ptr: np.ndarray  # CSR pointers into `postings`
    postings: np.ndarray  # document indexes
    weight: np.ndarray  # per kept gram: idf weight
    doc_weight: np.ndarray  # per document: total weight of its kept grams
    n_docs: int
    dropped_boilerplate: int

    @classmethod
    def build(cls, ids: np.ndarray, offsets: np.ndarray, n: int, *, max_df: int,
              sub_n: int | None = None, sub_max_df: int = 2) -> NgramIndex:
        """Index the n-grams of documents; with `sub_n`, also leave out n-grams that contain a `sub_n`-gram found in
        more than `sub_max_df` documents (mostly boilerplate, see `boilerplate_grams`)."""
        n_docs = len(offsets) - 1
        h, o = gram_hashes(ids, offsets, n, whole_if_short=False)
        dropped = 0
        if sub_n is not None and len(h):
            boiler = boilerplate_grams(ids, offsets, n, sub_n, sub_max_df)
            dropped = int(boiler.sum())
            h, o = h[~boiler], o[~boiler]
        h, o = unique_per_doc(h, o)
        order = np.argsort(h, kind="stable")
        h, o = h[order], o[order]
        uniq, starts, counts = np.unique(h, return_index=True, return_counts=True)
        keep_gram = counts <= max_df
        keep_row = np.repeat(keep_gram, counts)
        h, o = h[keep_row], o[keep_row]
        uniq, counts = uniq[keep_gram], counts[keep_gram]
        ptr = np.zeros(len(uniq) + 1, dtype=np.int64)
        np.cumsum(counts, out=ptr[1:])
        weight = np.log1p(n_docs / counts).astype(np.float64)
        doc_weight = np.bincount(o, weights=np.repeat(weight, counts), minlength=n_docs)
        return cls(n=n, hashes=uniq, ptr=ptr, postings=o, weight=weight, doc_weight=doc_weight, n_docs=n_docs,
                   dropped_boilerplate=int((~keep_gram).sum()) + dropped)

    def query(self, ids: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For a chunk of query documents: (query doc, indexed doc, summed weight of shared grams), one entry per
        pair that shares at least one kept gram."""
        h, o = unique_per_doc(*gram_hashes(ids, offsets, self.n, whole_if_short=False))
        if not len(h) or not len(self.hashes):
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, np.zeros(0)
        pos = np.searchsorted(self.hashes, h)
        pos[pos == len(self.hashes)] = 0
        hit = self.hashes[pos] == h
        pos, o = pos[hit], o[hit]
        counts = self.ptr[pos + 1] - self.ptr[pos]
        total = int(counts.sum())
        # Expand each hit into its posting list without a Python loop: position k of the output reads
        # postings[ptr[pos[g]] + (k - first output index of g)].
        group = np.repeat(np.arange(len(pos)), counts)
        first = np.zeros(len(pos), dtype=np.int64)
        np.cumsum(counts[:-1], out=first[1:])
        within = np.arange(total, dtype=np.int64) - first[group]
        docs = self.postings[self.ptr[pos][group] + within]
        queries = o[group]
        weights = self.weight[pos][group]
        key = queries * np.int64(self.n_docs) + docs
        uniq, inverse = np.unique(key, return_inverse=True)
        summed = np.bincount(inverse, weights=weights)
        return uniq // self.n_docs, uniq % self.n_docs, summed
