"""From clinicians' responses to a decision on each reviewed trace (one place for the rejection rules).

A single response "finds" a problem when it marks the answer incorrect, rates the reasoning 1-2, marks the content
clinically unsafe, or marks PHI present. A record is rejected when a majority of its reviewers (ties count as a
majority: when in doubt, leave it out) find the answer incorrect or the reasoning unsound, or when any one reviewer
finds it unsafe or finds PHI: safety problems need only one clinician to notice them. With `rule="any"`, any finding
by any reviewer rejects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from review.dataset import ANSWER_CORRECT, COMMENT, PHI, REASONING_SOUND, UNSAFE

#: Reason codes, in the order reports list them.
ANSWER_INCORRECT = "review_answer_incorrect"
REASONING_UNSOUND = "review_reasoning_unsound"
CLINICALLY_UNSAFE = "review_clinically_unsafe"
PHI_PRESENT = "review_phi_present"
REASONS = (ANSWER_INCORRECT, REASONING_UNSOUND, CLINICALLY_UNSAFE, PHI_PRESENT)
#: A row of a question whose answer key clinicians found wrong (a gold-suspect review), whatever else was found.
GOLD_WRONG = "review_gold_wrong"
#: Reasons one reviewer is enough for.
SAFETY_REASONS = frozenset({CLINICALLY_UNSAFE, PHI_PRESENT})
#: Ratings at or below this make the reasoning unsound.
UNSOUND_AT_MOST = 2
RULES = ("majority", "any")


def findings(response: dict[str, Any]) -> list[str]:
    """The problems one reviewer's response reports (empty: the reviewer accepts the example)."""
    found = []
    if response.get(ANSWER_CORRECT) == "incorrect":
        found.append(ANSWER_INCORRECT)
    rating = response.get(REASONING_SOUND)
    if isinstance(rating, (int, float)) and rating <= UNSOUND_AT_MOST:
        found.append(REASONING_UNSOUND)
    if response.get(UNSAFE) == "yes":
        found.append(CLINICALLY_UNSAFE)
    if response.get(PHI) == "yes":
        found.append(PHI_PRESENT)
    return found


def decide(responses: Sequence[dict[str, Any]], rule: str = "majority") -> dict[str, Any]:
    """The `review` column of one reviewed trace, from its submitted responses (one per reviewer)."""
    if rule not in RULES:
        raise ValueError(f"unknown review rule {rule!r}: expected one of {', '.join(RULES)}")
    if not responses:
        raise ValueError("a decision needs at least one response")
    per_reviewer = [findings(r) for r in responses]
    votes = {reason: sum(reason in found for found in per_reviewer) for reason in REASONS}
    n = len(responses)
    reasons = [
        reason
        for reason in REASONS
        if votes[reason] and (rule == "any" or reason in SAFETY_REASONS or 2 * votes[reason] >= n)
    ]
    ratings = [r.get(REASONING_SOUND) for r in responses if isinstance(r.get(REASONING_SOUND), (int, float))]
    return {
        "verdict": "rejected" if reasons else "accepted",
        "reasons": reasons,
        "reviewers": [r.get("reviewer") for r in responses],
        "n_reviewers": n,
        "votes": votes,
        "answer_correct": [r.get(ANSWER_CORRECT) for r in responses],
        "reasoning_sound_mean": sum(ratings) / len(ratings) if ratings else None,
        "comments": [r[COMMENT] for r in responses if r.get(COMMENT)],
    }
