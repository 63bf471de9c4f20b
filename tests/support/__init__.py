"""Test-only helpers (not part of the library)."""
