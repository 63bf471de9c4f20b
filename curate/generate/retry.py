"""When to try a request again, and how long to wait: exponential backoff with jitter, or what the server asked."""

from __future__ import annotations

import random
from dataclasses import dataclass

from curate.generate.config import default

#: Failure kinds. Retryable ones are tried again; the others become the trace's error at once (`empty_completion`
#: is asked once more by the backend, then kept as the error: the same request gives the same empty answer).
RETRYABLE = frozenset({"rate_limit", "server_error", "timeout", "connection", "malformed_response"})
#: Kinds that say the server is not answering (rather than answering no): a run of them stops the run.
SERVER_SIDE = frozenset({"server_error", "timeout", "connection", "malformed_response"})


@dataclass
class Failure(Exception):
    """One failed attempt: its kind (see RETRYABLE), a message, and the server's requested wait if any."""

    kind: str
    message: str
    retry_after: float | None = None
    status: int | None = None

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE


#: The longest backoff step between two tries.
BACKOFF_CAP_S = 60.0


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = default("max_retries")
    base_s: float = default("retry_base")
    cap_s: float = BACKOFF_CAP_S

    def delay(self, attempt: int, failure: Failure, rng: random.Random = random._inst) -> float:  # type: ignore[attr-defined]
        """Seconds to wait before retry number `attempt` (0-based). A server's Retry-After is honoured (never less);
        otherwise half the exponential step plus a random half, so clients that failed together do not return together."""
        if failure.retry_after is not None:
            return min(self.cap_s * 10, failure.retry_after) + rng.uniform(0, 0.1 * self.base_s)
        step = min(self.cap_s, self.base_s * (2 ** attempt))
        return step / 2 + rng.uniform(0, step / 2)

    def should_retry(self, attempt: int, failure: Failure) -> bool:
        return failure.retryable and attempt < self.max_retries
