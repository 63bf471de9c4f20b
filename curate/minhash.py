"""MinHash signatures and LSH banding, vectorised with numpy (the blocking step of near-duplicate search).

Same scheme as datasketch's MinHash/MinHashLSH (min over universal hashes of the shingle set; a pair becomes a
candidate when all rows of at least one band agree), but computed for a whole chunk of documents at once with
array arithmetic instead of one Python call per document: `bench/dedupe.py` compares the two.
"""

from __future__ import annotations

import numpy as np

from curate.ngrams import mix64

EMPTY = np.uint32(0xFFFFFFFF)  # signature value of a document with no shingles (never paired)


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Parameters of h_i(x) = (a_i * x + b_i) mod 2^32, a_i odd: a bijection of 32-bit x for each i. The shingle
    hashes x are already well mixed (splitmix64), so min over h_i behaves like a random permutation's min, and
    32-bit arithmetic moves a quarter of the bytes that 64-bit multiply-shift would."""
    rng = np.random.default_rng(seed)
    a = (rng.integers(0, 2**31, size=num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)).astype(np.uint32)
    b = rng.integers(0, 2**32, size=num_perm, dtype=np.uint32)
    return a, b


def signatures(hashes: np.ndarray, owner: np.ndarray, n_docs: int, *, num_perm: int = 64, seed: int = 1,
               block: int = 1 << 17) -> np.ndarray:
    """MinHash signatures (n_docs, num_perm) uint32 from shingle hashes grouped by `owner` (ascending).

    Work goes in blocks of `block` shingles so the temporary (num_perm x block) array stays near 32 MB."""
    a, b = permutations(num_perm, seed)
    sig = np.full((n_docs, num_perm), EMPTY, dtype=np.uint32)
    if not len(hashes):
        return sig
    # Cut blocks at document boundaries so each document's minimum is taken in one go.
    doc_starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    begin = 0
    while begin < len(doc_starts):
        first = doc_starts[begin]
        end = int(np.searchsorted(doc_starts, first + block, side="right"))
        end = max(end, begin + 1)
        last = doc_starts[end] if end < len(doc_starts) else len(hashes)
        chunk = (hashes[first:last] >> np.uint64(32)).astype(np.uint32)
        values = np.multiply(a[:, None], chunk[None, :])  # wraps mod 2^32
        values += b[:, None]
        local_starts = doc_starts[begin:end] - first
        sig[owner[doc_starts[begin:end]]] = np.minimum.reduceat(values, local_starts, axis=1).T
        begin = end
    return sig


def band_keys(sig: np.ndarray, bands: int) -> np.ndarray:
    """One 64-bit key per (document, band): equal keys <=> equal band rows (up to 2^-64 collisions)."""
    n_docs, num_perm = sig.shape
    if num_perm % bands:
        raise ValueError(f"num_perm ({num_perm}) must be a multiple of bands ({bands})")
    rows = num_perm // bands
    keys = np.zeros((n_docs, bands), dtype=np.uint64)
    grouped = sig.reshape(n_docs, bands, rows).astype(np.uint64)
    for r in range(rows):
        keys = mix64(keys * np.uint64(0x100000001B3) + grouped[:, :, r])
    return keys


def candidate_pairs(keys: np.ndarray, valid: np.ndarray | None = None, *, max_bucket: int = 16) -> np.ndarray:
    """Unique (i, j) pairs, i < j, of documents sharing a band key. Buckets of up to `max_bucket` members give all
    their pairs; larger ones (templated texts) give each member paired with the bucket's first member and with its
    predecessor, so the pair count stays linear in the corpus size whatever the buckets look like."""
    n_docs, bands = keys.shape
    docs = np.arange(n_docs, dtype=np.int64)
    if valid is not None:
        docs = docs[valid]
    chunks: list[np.ndarray] = []
    for band in range(bands):
        k = keys[docs, band]
        order = np.argsort(k, kind="stable")
        sk, sd = k[order], docs[order]
        starts = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]])
        sizes = np.diff(np.r_[starts, len(sk)])
        multi = sizes > 1
        if not multi.any():
            continue
        # Star pairs (first member, each other member) and chain pairs (each member, its predecessor), vectorised.
        bucket_of = np.repeat(np.arange(len(starts)), sizes)
        follower = np.ones(len(sk), dtype=bool)
        follower[starts] = False
        follower &= np.repeat(multi, sizes)
        idx = np.flatnonzero(follower)
        chunks.append(np.stack([sd[starts[bucket_of[idx]]], sd[idx]], axis=1))
        chunks.append(np.stack([sd[idx - 1], sd[idx]], axis=1))
        # All remaining pairs inside small buckets (rare: most buckets are pairs).
        small = multi & (sizes > 3) & (sizes <= max_bucket)
        for s, size in zip(starts[small], sizes[small]):
            members = sd[s : s + size]
            ii, jj = np.triu_indices(len(members), k=2)
            chunks.append(np.stack([members[ii], members[jj]], axis=1))
    if not chunks:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = np.sort(np.concatenate(chunks), axis=1)
    flat = np.unique(pairs[:, 0] * np.int64(n_docs) + pairs[:, 1])
    return np.stack([flat // n_docs, flat % n_docs], axis=1)
