"""Side virtual environments for real servers whose pins clash with curate's (argilla-server, vLLM's CPU build).

Each is built once, in place, under a file lock, and cached (by default under ~/.cache/curate/). A venv cannot be
moved once built (its scripts name their interpreter by absolute path), so the marker listing the steps it was built
with is written last: an interrupted build has no marker and is rebuilt from scratch, and a venv whose steps changed
(a new pin, a refreshed lock file) is rebuilt the next time it is asked for.

Every install step runs under the venv's lock file (`requirements/<name>.txt`, a `pip freeze` of the venv the tests
last passed in, used as pip constraints), so a fresh machine installs exactly what was tested; `lock` rebuilds the
venv from its loose requirements in a temporary folder and writes that file anew (`bash scripts/lock.sh`). Standard
library only, so `build` runs before anything else.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

MARKER = "curate-requirements.txt"
REPO_ROOT = Path(__file__).resolve().parents[2]
LOCK_DIR = REPO_ROOT / "requirements"

#: One pip invocation per step, e.g. ("install", "torch==2.13.0") then ("uninstall", "-y", "torchvision").
Steps = Sequence[Sequence[str]]


def cache_root() -> Path:
    return Path.home() / ".cache" / "curate"


def venv_python(path: Path) -> Path:
    return path / "bin" / "python"


def lock_path(name: str) -> Path:
    return LOCK_DIR / f"{name}.txt"


def _marker_text(steps: Steps, lock: Path | None) -> str:
    # An install step lists its requirements one a line; any other step is one line; the lock file by its hash, so
    # a refreshed lock rebuilds the venv.
    lines = [line for step in steps for line in (step[1:] if step[0] == "install" else [" ".join(step)])]
    if lock is not None and lock.exists():
        lines.append(f"constraints {lock.name} sha256:{hashlib.sha256(lock.read_bytes()).hexdigest()[:16]}")
    return "\n".join(lines) + "\n"


def venv_ready(path: Path, steps: Steps, lock: Path | None = None) -> bool:
    marker = path / MARKER
    return venv_python(path).exists() and marker.exists() and marker.read_text() == _marker_text(steps, lock)


def _run_steps(path: Path, steps: Steps, *, lock: Path | None, quiet: bool, deadline: float) -> None:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=max(1.0, deadline - time.monotonic()))
    for step in steps:
        constraints = ["-c", str(lock)] if step[0] == "install" and lock is not None and lock.exists() else []
        args = [str(venv_python(path)), "-m", "pip", step[0], *(["-q"] if quiet else []),
                "--disable-pip-version-check", *constraints, *step[1:]]
        done = subprocess.run(args, timeout=max(1.0, deadline - time.monotonic()), capture_output=quiet, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"building {path}: pip {' '.join(step)} failed:\n{(done.stderr or '')[-3000:]}")


def ensure_venv(path: Path, steps: Steps, *, lock: Path | None = None, quiet: bool = True,
                timeout_s: float = 1800) -> Path:
    """Build the venv at `path` by running `pip STEP` for each step (installs constrained by `lock`), unless it is
    already there with the same steps and lock."""
    path = Path(path).expanduser()
    if venv_ready(path, steps, lock):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if venv_ready(path, steps, lock):
            return path
        shutil.rmtree(path, ignore_errors=True)
        _run_steps(path, steps, lock=lock, quiet=quiet, deadline=time.monotonic() + timeout_s)
        (path / MARKER).write_text(_marker_text(steps, lock))
    return path


def write_lock(steps: Steps, lock: Path, *, header: str, quiet: bool = True, timeout_s: float = 3600) -> Path:
    """Resolve `steps`' install steps afresh (no constraints) in a temporary venv and write its `pip freeze` to `lock`:
    the refresh of a lock file. Uninstall steps are left out, so what they remove is pinned too."""
    installs = [step for step in steps if step[0] == "install"]
    with tempfile.TemporaryDirectory(prefix="curate-lock-") as tmp:
        venv = Path(tmp) / "venv"
        _run_steps(venv, installs, lock=None, quiet=quiet, deadline=time.monotonic() + timeout_s)
        frozen = subprocess.run([str(venv_python(venv)), "-m", "pip", "freeze", "--exclude-editable"], check=True,
                                capture_output=True, text=True).stdout
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(header + "".join(line + "\n" for line in sorted(frozen.splitlines(), key=str.lower)
                                     if line and not line.startswith("#")))
    return lock
