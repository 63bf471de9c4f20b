"""pytest fixtures over the replay server, for any test suite: add `pytest_plugins = ["curate.testing.fixtures"]` to
the root conftest.py, then ask for `replay_server` (synthetic completions) in a test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from curate.generate.replay import ReplayHandle
from curate.generate.replay import replay_server as _replay_server


@pytest.fixture
def replay_server() -> Iterator[ReplayHandle]:
    """A replay server on 127.0.0.1 in a thread of the test process; `.url`, `.configure(...)`, `.log()`."""
    with _replay_server() as handle:
        yield handle
