"""Test support for review: a real argilla-server process (its own venv) with an in-memory search engine."""
