"""`review.pull` and `review.status`: clinicians' submitted responses out of Argilla, one row per record and reviewer."""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from typing import Any

from curate.io import write_rows
from curate.stage import StageReport, Tally
from review.client import connect, find_dataset
from review.dataset import GOLD_CORRECT, METADATA, QUESTIONS


def _usernames(client: Any) -> dict[str, str]:
    try:
        return {str(user.id): user.username for user in client.users}
    except Exception:  # annotators may not list users: fall back to ids
        return {}


def review_rows(records: Any, usernames: dict[str, str]) -> tuple[list[dict[str, Any]], Counter[str]]:
    """One row per (record, reviewer) with a submitted response; counts of responses by status."""
    rows: list[dict[str, Any]] = []
    statuses: Counter[str] = Counter()
    for record in records:
        by_user: dict[str, dict[str, Any]] = defaultdict(dict)
        status_of: dict[str, str] = {}
        for response in record.responses:
            user = str(response.user_id)
            by_user[user][response.question_name] = response.value
            status_of[user] = getattr(response.status, "value", response.status)
        for user, values in sorted(by_user.items(), key=lambda kv: usernames.get(kv[0], kv[0])):
            statuses[status_of[user]] += 1
            if status_of[user] != "submitted":
                continue
            metadata = record.metadata or {}
            row = {"trace_id": str(record.id), "reviewer": usernames.get(user, user), "reviewer_id": user}
            row.update({name: values.get(name) for name in (*QUESTIONS, GOLD_CORRECT)})
            row.update({name: metadata.get(name) for name in METADATA if name != "trace_id"})
            rows.append(row)
    rows.sort(key=lambda r: (r["trace_id"], r["reviewer"]))
    return rows, statuses


class PullReport(StageReport):
    dataset: str
    responses: dict[str, int]
    reviewers: dict[str, int]
    records_reviewed: int


def pull(
    dataset: str,
    output: str | os.PathLike[str],
    *,
    api_url: str | None = None,
    workspace: str | None = None,
    report: str | os.PathLike[str] | None = None,
) -> PullReport:
    """Write every submitted response of `dataset` to `output` (one row per record and reviewer)."""
    import time

    started = time.perf_counter()
    client = connect(api_url)
    ds = find_dataset(client, dataset, workspace)
    records = list(ds.records(with_responses=True, with_suggestions=False))
    rows, statuses = review_rows(records, _usernames(client))
    write_rows(rows, output)
    reviewed = {r["trace_id"] for r in rows}
    sources = [{"source": (record.metadata or {}).get("source")} for record in records]
    tally = Tally()
    tally.add([s for s, record in zip(sources, records) if str(record.id) in reviewed], [], inputs=sources)
    result = PullReport(
        stage="review-pull", **tally.counts(), wall_s=round(time.perf_counter() - started, 3), dataset=dataset,
        responses={"submitted": statuses["submitted"], "draft": statuses["draft"], "discarded": statuses["discarded"]},
        reviewers=dict(sorted(Counter(r["reviewer"] for r in rows).items())), records_reviewed=len(reviewed))
    if report is not None:
        result.write(report)
    return result


def status(dataset: str, *, api_url: str | None = None, workspace: str | None = None) -> dict[str, Any]:
    """Progress of the review: records completed (enough submissions) and pending, and each reviewer's counts."""
    client = connect(api_url)
    ds = find_dataset(client, dataset, workspace)
    progress = ds.progress(with_users_distribution=True)
    progress["reviewers_per_record"] = getattr(ds.settings.distribution, "min_submitted", None)
    progress["dataset"] = dataset
    return progress
