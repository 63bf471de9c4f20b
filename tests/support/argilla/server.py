"""A real argilla-server for tests and local trials: its own virtual environment, started on loopback.

argilla-server 2.8 pins old pydantic/typer/httpx that clash with curate's, so it lives in a separate venv (built once,
cached under $CURATE_ARGILLA_VENV, default ~/.cache/curate/argilla-server-venv; `.ci/setup.d/review.sh` builds it
ahead of time). `ArgillaServer` runs `argilla_launcher.py` in that venv: SQLite, fakeredis and an in-memory search
engine instead of Elasticsearch (which cannot be installed here), the real API and UI otherwise.

    python -m tests.support.argilla.server build        # create the venv (idempotent)
    python -m tests.support.argilla.server lock         # resolve it afresh: rewrite requirements/argilla-server.txt
    python -m tests.support.argilla.server serve        # start a server, print URL and credentials, Ctrl-C stops it
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import subprocess
import tempfile
import time
from pathlib import Path

from curate.testing import venvs
from curate.testing.server_process import free_port
from curate.testing.venvs import cache_root

#: What the server venv holds. click<8.2: argilla-server's CLI (and its typer) break on click 8.2's flag checks.
SERVER_REQUIREMENTS = ("argilla-server==2.8.0", "click<8.2", "fakeredis>=2.24")
BUILD_STEPS = (("install", *SERVER_REQUIREMENTS),)
LAUNCHER = Path(__file__).resolve().parent / "argilla_launcher.py"
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0


def venv_dir() -> Path:
    return Path(os.environ.get("CURATE_ARGILLA_VENV") or cache_root() / "argilla-server-venv")


def venv_python(path: Path | None = None) -> Path:
    return venvs.venv_python(path or venv_dir())


#: The pins the tests ran against (`pip freeze` of this venv): `python -m tests.support.argilla.server lock` refreshes it.
LOCK = venvs.lock_path("argilla-server")


def venv_ready(path: Path | None = None) -> bool:
    return venvs.venv_ready(path or venv_dir(), BUILD_STEPS, LOCK)


def ensure_venv(path: Path | None = None, *, quiet: bool = True, timeout_s: float = 900) -> Path:
    """Build the argilla-server venv unless it is already there with the same requirements and lock. Returns its path."""
    return venvs.ensure_venv(path or venv_dir(), BUILD_STEPS, lock=LOCK, quiet=quiet, timeout_s=timeout_s)


class ArgillaServer:
    """A running argilla-server: `url`, the owner's `username`, `password` and `api_key`. Use as a context manager."""

    def __init__(self, home: Path, *, host: str = "127.0.0.1", port: int | None = None, venv: Path | None = None) -> None:
        self.home = Path(home)
        self.host = host
        self.port = port or free_port(host)
        self.venv = venv or venv_dir()
        self.username = "argilla"
        self.password = "curate-" + secrets.token_hex(6)
        self.api_key = "curate.test." + secrets.token_hex(12)
        self.log_path = self.home / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = START_TIMEOUT_S) -> ArgillaServer:
        import httpx  # here, so that `build` needs nothing but the standard library

        if not venv_ready(self.venv):
            raise RuntimeError(f"no argilla-server venv at {self.venv}: run `python -m tests.support.argilla.server build`")
        self.home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "CURATE_ARGILLA_OWNER_API_KEY": self.api_key, "CURATE_ARGILLA_OWNER_PASSWORD": self.password,
               "TMPDIR": str(self.home / "tmp")}
        env.pop("PYTHONPATH", None)  # the server venv must not see curate's packages
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(venv_python(self.venv)), str(LAUNCHER), "--host", self.host, "--port", str(self.port),
                 "--home", str(self.home), "--parent-pid", str(os.getpid())],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.home, start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"argilla-server exited with {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                response = httpx.get(f"{self.url}/api/v1/me", headers={"X-Argilla-Api-Key": self.api_key}, timeout=2)
                if response.status_code == 200:
                    return self
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"argilla-server did not answer within {timeout_s:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> ArgillaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="argilla-server for curate's tests and local trials")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="create the argilla-server venv (idempotent)")
    sub.add_parser("lock", help="resolve the venv afresh and write requirements/argilla-server.txt")
    serve = sub.add_parser("serve", help="start a server until Ctrl-C")
    serve.add_argument("--port", type=int, default=6900)
    serve.add_argument("--home", type=Path, default=None)
    args = parser.parse_args()
    if args.command == "lock":
        header = ("# argilla-server venv (tests/support/argilla/server.py): what its tests last passed with.\n"
                  "# Refresh: python -m tests.support.argilla.server lock (or bash scripts/lock.sh)\n")
        print(f"wrote {venvs.write_lock(BUILD_STEPS, LOCK, header=header)}")
        return
    path = ensure_venv(quiet=True)
    if args.command == "build":
        print(f"argilla-server venv ready: {path}")
        return
    with tempfile.TemporaryDirectory(prefix="argilla-") as tmp, ArgillaServer(args.home or Path(tmp), port=args.port) as server:
        print(f"Argilla at {server.url}  user {server.username}  password {server.password}\n"
              f"export ARGILLA_API_URL={server.url} ARGILLA_API_KEY={server.api_key}\n(Ctrl-C stops it)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while server.process is not None and server.process.poll() is None:
                time.sleep(1)


if __name__ == "__main__":
    main()
