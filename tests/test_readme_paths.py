"""The README's first stage commands run as written on a fresh clone, offline, on the files the project ships
(issue 21: they pointed at ../shared/data, which a user does not have, without saying what it is)."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys

from curate.io import read_rows
from tests.conftest import REPO_ROOT, run_cli

README = (REPO_ROOT / "README.md").read_text()


def _line(prefix: str) -> str:
    """The README's command line that starts with `prefix` (there must be exactly one)."""
    lines = [line.strip() for line in README.splitlines() if line.strip().startswith(prefix)]
    assert len(lines) == 1, (prefix, lines)
    return lines[0]


def test_the_readme_says_what_shared_data_is_before_using_it():
    first_use = README.index("../shared/data/")
    said = README.index("A path\nunder `../shared/data/` is the full public files kept beside this checkout")
    assert said < first_use + 20 and "not\nshipped with it" in README and "your own\ndownload" in README


def test_the_readme_sources_and_replay_commands_run_as_written_on_the_shipped_demo(tmp_path):
    """`curate sources pull medqa --path examples/demo/...`, the replay server on `examples/demo/recording.jsonl.gz`
    and `curate generate` against it, run from a folder where `examples/` is the checkout's (the port aside: a
    free one, not 8001)."""
    (tmp_path / "examples").symlink_to(REPO_ROOT / "examples")
    pull = shlex.split(_line("curate sources pull medqa"))
    assert pull[:3] == ["curate", "sources", "pull"] and pull[pull.index("--path") + 1].startswith("examples/demo/")
    proc = run_cli(*pull[1:], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(read_rows(tmp_path / "q.parquet")) == 100

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    serve = shlex.split(_line("python -m curate.generate.replay").rstrip("&").replace("8001", port))
    assert serve[serve.index("--traces") + 1] == "examples/demo/recording.jsonl.gz"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    server = subprocess.Popen([sys.executable, *serve[1:]], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().startswith("READY ")
        generate = shlex.split(_line("curate generate -i q.parquet -o traces.parquet --teacher replay-teacher")
                               .replace("8001", port))
        proc = run_cli(*generate[1:], cwd=tmp_path)
    finally:
        server.terminate()
        server.wait(10)
    assert proc.returncode == 0, proc.stderr[-2000:]
    traces = read_rows(tmp_path / "traces.parquet")
    assert len(traces) == 200 and all(t["completion"] and t["error"] is None for t in traces)
    assert "repeat another sample" not in proc.stderr  # -n matches the recording's 2 completions per question
    assert re.search(r"wrote 200 traces for 100 questions", proc.stderr)
