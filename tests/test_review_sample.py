"""Stratified sampling: allocation by hand, determinism, independence from file order and from other strata."""

from __future__ import annotations

import pytest

from review.sample import allocate, stratified_sample


def test_allocation_is_proportional_with_a_minimum():
    # quotas 16, 3, 1 of 20; c is raised to its minimum 2, which pushes the total to 21; the excess comes off the
    # stratum furthest above its quota among those above their minimum (ties: the largest) -> a: 15.
    assert allocate({"a": 80, "b": 15, "c": 5}, 20, minimum=2) == {"a": 15, "b": 3, "c": 2}
    # Pure proportional with largest remainder: quotas 4.5, 3.5, 2.0 -> 4, 3, 2, then the remainder to a (0.5, tie
    # with b, larger stratum first) -> 5, 3, 2.
    assert allocate({"a": 45, "b": 35, "c": 20}, 10, minimum=0) == {"a": 5, "b": 3, "c": 2}
    # A stratum smaller than the minimum gives all it has.
    assert allocate({"big": 100, "tiny": 1}, 10, minimum=3) == {"big": 9, "tiny": 1}


def test_allocation_when_n_cannot_cover_every_stratum():
    assert allocate({"a": 10, "b": 10, "c": 10}, 2, minimum=1) == {"a": 1, "b": 1, "c": 0}
    assert allocate({"a": 5, "b": 50, "c": 20}, 2, minimum=1) == {"a": 0, "b": 1, "c": 1}
    assert allocate({"a": 3, "b": 2}, 10) == {"a": 3, "b": 2}
    with pytest.raises(ValueError):
        allocate({"a": 3}, -1)


def _items(n: int) -> list[dict]:
    return [{"id": f"id{i:04d}", "s": ("x", "y", "z")[i % 3] if i < 900 else "w"} for i in range(n)]


def test_sample_sizes_and_strata_report():
    items = _items(1000)  # x, y, z: 300 each; w: 100
    sample, strata = stratified_sample(items, 100, stratum=lambda it: it["s"], key=lambda it: it["id"], seed=1)
    assert len(sample) == 100
    assert {s.name: (s.population, s.sampled) for s in strata} == {"w": (100, 10), "x": (300, 30), "y": (300, 30), "z": (300, 30)}
    assert len({it["id"] for it in sample}) == 100
    for s in strata:
        assert sum(1 for it in sample if it["s"] == s.name) == s.sampled


def test_sample_is_seeded_and_independent_of_order_and_other_strata():
    items = _items(1000)
    pick = dict(stratum=lambda it: it["s"], key=lambda it: it["id"])
    first, _ = stratified_sample(items, 100, seed=7, **pick)
    again, _ = stratified_sample(list(reversed(items)), 100, seed=7, **pick)
    other, _ = stratified_sample(items, 100, seed=8, **pick)
    assert [it["id"] for it in first] == [it["id"] for it in again]
    assert {it["id"] for it in first} != {it["id"] for it in other}
    # Removing stratum w (and 10 from the sample) leaves the draws inside x, y, z unchanged.
    without_w, _ = stratified_sample([it for it in items if it["s"] != "w"], 90, seed=7, **pick)
    assert [it["id"] for it in without_w] == [it["id"] for it in first if it["s"] != "w"]


def test_no_sample_size_takes_everything():
    items = _items(30)
    sample, strata = stratified_sample(items, None, stratum=lambda it: it["s"], key=lambda it: it["id"])
    assert len(sample) == 30 and sum(s.sampled for s in strata) == 30


def test_a_larger_sample_contains_the_smaller_one():
    items = _items(1000)
    pick = dict(stratum=lambda it: it["s"], key=lambda it: it["id"], seed=3)
    small, _ = stratified_sample(items, 40, **pick)
    large, _ = stratified_sample(items, 100, **pick)
    assert {it["id"] for it in small} < {it["id"] for it in large}
