"""The gold-label audit: a question whose samples agree on one letter that is not its gold letter.

When several independent samples (other teachers, other prompts, several samples of one teacher) converge on the
same wrong-by-the-key letter, the key is as likely wrong as the teachers: such a question's correct-by-the-key traces
are suspect training data, and its wrongly rejected traces may be the right ones. The audit only flags (the
`gold_suspect` column on every trace of the question, with the votes); the filter excludes them on request, and
review asks clinicians whether the gold answer is right, first.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from curate.records import GoldAudit


def audit_gold(answers: Iterable[tuple[str, str, str | None]], *, min_votes: int,
               min_share: float) -> dict[str, GoldAudit]:
    """{question_id: GoldAudit} for the questions whose answered samples name one letter other than the gold letter
    at least `min_votes` times and with at least `min_share` of the answered samples (1.0: every one of them).

    `answers` holds (question_id, gold letter, parsed answer or None) per sample; unparsed samples do not vote."""
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    gold: dict[str, str] = {}
    for question_id, gold_letter, predicted in answers:
        gold[question_id] = gold_letter
        if predicted is not None:
            votes[question_id][predicted] += 1
    flagged = {}
    for question_id, counts in votes.items():
        answered = sum(counts.values())
        (letter, top), *rest = counts.most_common()
        tied = bool(rest) and rest[0][1] == top
        if letter != gold[question_id] and not tied and top >= min_votes and top / answered >= min_share - 1e-9:
            flagged[question_id] = GoldAudit(gold=gold[question_id], suspect=letter, votes=dict(sorted(counts.items())),
                                             samples=answered)
    return flagged
