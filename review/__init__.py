"""Clinician spot-review in Argilla: push a stratified sample, pull the verdicts, apply them with error bars.

    from review import push, pull, status, apply_reviews

The argilla SDK is imported only inside the functions that talk to a server (install the `review` extra).
"""

from review.apply import apply_reviews
from review.pull import pull, status
from review.push import push

__all__ = ["apply_reviews", "pull", "push", "status"]
