"""Side virtual environments for real servers whose pins clash with curate's (argilla-server, vLLM's CPU build).

Each is built once, in place, under a file lock, and cached (by default under ~/.cache/curate/). A venv cannot be
moved once built (its scripts name their interpreter by absolute path), so the marker listing the steps it was built
with is written last: an interrupted build has no marker and is rebuilt from scratch, and a venv whose steps changed
(a new pin) is rebuilt the next time it is asked for. Standard library only, so `build` runs before anything else.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

MARKER = "curate-requirements.txt"

#: One pip invocation per step, e.g. ("install", "torch==2.13.0") then ("uninstall", "-y", "torchvision").
Steps = Sequence[Sequence[str]]


def cache_root() -> Path:
    return Path.home() / ".cache" / "curate"


def venv_python(path: Path) -> Path:
    return path / "bin" / "python"


def _marker_text(steps: Steps) -> str:
    # An install step lists its requirements one a line (the form the first argilla-server venvs were marked with,
    # so those are not rebuilt); any other step is one line.
    lines = [line for step in steps for line in (step[1:] if step[0] == "install" else [" ".join(step)])]
    return "\n".join(lines) + "\n"


def venv_ready(path: Path, steps: Steps) -> bool:
    marker = path / MARKER
    return venv_python(path).exists() and marker.exists() and marker.read_text() == _marker_text(steps)


def ensure_venv(path: Path, steps: Steps, *, quiet: bool = True, timeout_s: float = 1800) -> Path:
    """Build the venv at `path` by running `pip STEP` for each step, unless it is already there with the same steps."""
    path = Path(path).expanduser()
    if venv_ready(path, steps):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if venv_ready(path, steps):
            return path
        shutil.rmtree(path, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=timeout_s)
        deadline = time.monotonic() + timeout_s
        for step in steps:
            args = [str(venv_python(path)), "-m", "pip", step[0], *(["-q"] if quiet else []),
                    "--disable-pip-version-check", *step[1:]]
            done = subprocess.run(args, timeout=max(1.0, deadline - time.monotonic()), capture_output=quiet, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"building {path}: pip {' '.join(step)} failed:\n{(done.stderr or '')[-3000:]}")
        (path / MARKER).write_text(_marker_text(steps))
    return path
