"""Per question: the pass rate over its samples, and which correct samples to keep.

The pass rate (share of a question's samples whose answer is correct) is the difficulty column GRPO later uses.
Selection keeps every correct, well-formed sample (`all`), or at most k per question, either the shortest or the
most mutually different ones (greedy farthest-first on rapidfuzz similarity of the reasoning).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

SELECT_POLICIES = ("all", "k")
SELECT_BY = ("shortest", "diverse")


@dataclass(frozen=True)
class Candidate:
    """A correct, well-formed sample of one question: what selection needs to know about it."""

    index: int  # position in the caller's list
    question_id: str
    length: int  # tokens (estimated) of its reasoning
    reasoning: str
    trace_id: str


def pass_rates(outcomes: Sequence[tuple[str, bool | None]]) -> dict[str, float]:
    """{question_id: correct / samples}; samples with outcome None (failed generation) do not count."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for question_id, correct in outcomes:
        if correct is None:
            continue
        entry = totals[question_id]
        entry[0] += int(correct)
        entry[1] += 1
    return {qid: round(ok / n, 4) for qid, (ok, n) in totals.items() if n}


def _shortest(cands: list[Candidate], k: int) -> list[Candidate]:
    return sorted(cands, key=lambda c: (c.length, c.trace_id))[:k]


def _diverse(cands: list[Candidate], k: int) -> list[Candidate]:
    """Greedy farthest-first: start from the shortest, then add the sample least similar to all chosen so far."""
    from rapidfuzz import fuzz

    ordered = sorted(cands, key=lambda c: (c.length, c.trace_id))
    chosen = [ordered[0]]
    rest = ordered[1:]
    # closest[i]: highest similarity of rest[i] to any chosen sample (updated incrementally: O(n k) comparisons).
    closest = [fuzz.ratio(c.reasoning, chosen[0].reasoning) for c in rest]
    while rest and len(chosen) < k:
        best = min(range(len(rest)), key=lambda i: (closest[i], rest[i].length, rest[i].trace_id))
        pick = rest.pop(best)
        closest.pop(best)
        chosen.append(pick)
        closest = [max(s, fuzz.ratio(c.reasoning, pick.reasoning)) for s, c in zip(closest, rest)]
    return chosen


def check_selection(policy: str, k: int | None, by: str) -> None:
    """A clear error for a bad policy, before any work is done."""
    if policy not in SELECT_POLICIES:
        raise ValueError(f"select policy must be one of {', '.join(SELECT_POLICIES)}, got {policy!r}")
    if by not in SELECT_BY:
        raise ValueError(f"select-by must be one of {', '.join(SELECT_BY)}, got {by!r}")
    if policy == "k" and (k is None or k < 1):
        raise ValueError(f"select policy 'k' needs k >= 1, got {k!r}")


def select(candidates: Sequence[Candidate], *, policy: str = "all", k: int | None = None, by: str = "shortest") -> set[int]:
    """Indices of the candidates to keep."""
    check_selection(policy, k, by)
    if policy == "all":
        return {c.index for c in candidates}
    assert k is not None
    groups: dict[str, list[Candidate]] = defaultdict(list)
    for cand in candidates:
        groups[cand.question_id].append(cand)
    keep: set[int] = set()
    pick = _shortest if by == "shortest" else _diverse
    for cands in groups.values():
        chosen = cands if len(cands) <= k else pick(cands, k)
        keep.update(c.index for c in chosen)
    return keep
