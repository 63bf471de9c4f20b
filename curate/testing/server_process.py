"""A real OpenAI-compatible server in a process of its own on loopback (vLLM, `transformers serve`), for tests and
benchmarks: started, waited for until `GET /v1/models` answers, stopped with everything it started.

The server runs in a session of its own behind `process_launcher.py`, which takes the whole process group down when
this process dies (vLLM's API server starts its engine core as a child), so a crashed test run leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

LAUNCHER = Path(__file__).resolve().parent / "process_launcher.py"
STOP_TIMEOUT_S = 20.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class ServerProcess:
    """`command` (its first element the Python that runs it) serving the OpenAI API at `url` (ending in /v1).
    Use as a context manager, or `start()` / `stop()`; `log_tail()` shows what it printed."""

    name = "server"

    def __init__(self, command: Sequence[str], url: str, log_path: str | os.PathLike[str], *,
                 env: dict[str, str] | None = None, start_timeout_s: float = 300.0) -> None:
        self.command = [str(c) for c in command]
        self.url = url
        self.log_path = Path(log_path)
        self.env = env
        self.start_timeout_s = start_timeout_s
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        import httpx

        python, *rest = self.command
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([python, str(LAUNCHER), "--parent-pid", str(os.getpid()), "--", python, *rest],
                                            stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code, self.process = self.process.returncode, None
                raise RuntimeError(f"{self.name} exited with {code}:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/models", timeout=2).status_code == 200:
                    return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer within {self.start_timeout_s:.0f} s:\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):  # the whole group: e.g. vLLM's API server and its engine core
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
                break
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError):  # a child that outlived the launcher
            os.killpg(process.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def transformers_serve(model: str | os.PathLike[str], log_path: str | os.PathLike[str], *, python: str,
                       host: str = "127.0.0.1", port: int | None = None) -> ServerProcess:
    """`transformers serve MODEL` (transformers[serving]) on CPU: the served model's name is `str(model)`."""
    port = port or free_port(host)
    command = [python, "-m", "transformers.cli.transformers", "serve", str(model), "--host", host, "--port", str(port),
               "--device", "cpu", "--log-level", "info"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    server = ServerProcess(command, f"http://{host}:{port}/v1", log_path, env=env, start_timeout_s=180.0)
    server.name = "transformers serve"
    return server
