"""Stratified sampling: which traces clinicians review.

Proportional allocation with a minimum per stratum (so a small source or a rare subject is still looked at), the
largest-remainder method for rounding, and a seeded draw inside each stratum that depends only on the seed, the
stratum and its members (not on file order, nor on the other strata), and that only grows when the sample does.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from curate.records import stable_hash

T = TypeVar("T")


@dataclass(frozen=True)
class Stratum:
    name: str
    population: int
    sampled: int


def allocate(sizes: dict[str, int], n: int, *, minimum: int = 1) -> dict[str, int]:
    """How many to draw from each stratum: proportional to its size, at least `minimum` (or all it has), `n` in all.

    When `n` cannot give every stratum its minimum, the largest strata get theirs first (ties by name), so the sample
    stays as representative as `n` allows. Returns {stratum: count}, counts summing to min(n, total).
    """
    if n < 0 or minimum < 0:
        raise ValueError("sample size and minimum must be >= 0")
    total = sum(sizes.values())
    if n >= total:
        return dict(sizes)
    by_size = sorted(sizes, key=lambda name: (-sizes[name], name))
    floor = {name: min(minimum, sizes[name]) for name in sizes}
    if sum(floor.values()) >= n:
        allocation = dict.fromkeys(sizes, 0)
        left = n
        while left:  # round-robin over strata, largest first, one at a time up to their minimum
            for name in by_size:
                if left and allocation[name] < floor[name]:
                    allocation[name] += 1
                    left -= 1
        return allocation
    quota = {name: n * sizes[name] / total for name in sizes}
    allocation = {name: max(floor[name], min(sizes[name], math.floor(quota[name]))) for name in sizes}
    # Largest remainder: hand out what is left to the strata furthest below their quota, take back any excess from
    # the strata furthest above it (never below their minimum).
    while sum(allocation.values()) < n:
        name = max((s for s in sizes if allocation[s] < sizes[s]), key=lambda s: (quota[s] - allocation[s], -by_size.index(s)))
        allocation[name] += 1
    while sum(allocation.values()) > n:
        name = max((s for s in sizes if allocation[s] > floor[s]), key=lambda s: (allocation[s] - quota[s], -by_size.index(s)))
        allocation[name] -= 1
    return allocation


def stratified_sample(
    items: Iterable[T],
    n: int | None,
    *,
    stratum: Callable[[T], str],
    key: Callable[[T], str],
    seed: int = 0,
    minimum: int = 1,
) -> tuple[list[T], list[Stratum]]:
    """Draw `n` items (all when n is None) stratified by `stratum(item)`; `key(item)` is a unique, stable id.

    Returns the sample (ordered by stratum, then key) and the strata with their population and sample sizes.
    """
    groups: dict[str, list[T]] = defaultdict(list)
    for item in items:
        groups[stratum(item)].append(item)
    sizes = {name: len(members) for name, members in groups.items()}
    allocation = dict(sizes) if n is None else allocate(sizes, n, minimum=minimum)
    sample: list[T] = []
    strata: list[Stratum] = []
    for name in sorted(groups):
        members = sorted(groups[name], key=key)
        # A seeded permutation of the stratum, then its first k: a larger sample (same seed) keeps every trace of a
        # smaller one, so growing a review never throws away responses already given.
        random.Random(stable_hash("review-sample", seed, name)).shuffle(members)
        chosen = members[: allocation[name]]
        sample.extend(sorted(chosen, key=key))
        strata.append(Stratum(name=name, population=sizes[name], sampled=allocation[name]))
    return sample, strata
