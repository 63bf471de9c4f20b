"""PHI scrubbing with presidio: HIPAA Safe Harbor identifiers, clinical recognizers, an allow-list for medicine."""

from __future__ import annotations

from curate.scrub.entities import ENTITIES, TEXT_FIELDS
from curate.scrub.runner import run_scrub, scrub_rows

__all__ = ["ENTITIES", "TEXT_FIELDS", "run_scrub", "scrub_rows"]
