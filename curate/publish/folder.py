"""The `--local-dir` folder: curate replaces only a folder it published itself, and checks it before any work.

A publish writes the whole dataset into a staging folder beside the target and swaps it into place, so a crash leaves
any earlier publish untouched. Swapping means the earlier folder is deleted: curate therefore marks every folder it
publishes with `.curate-publish.json` (each file it wrote and its sha256) and replaces only a folder whose files are
exactly those, unchanged. Any other non-empty folder (a project with a `.git`, a folder holding the input, a publish
folder someone has since added files to or edited) is refused by name before any work, and nothing in it is touched.

- a symlinked `--local-dir` stays a link: the folder it points at is what gets replaced;
- the current folder (or a folder above it) is refused: it cannot be swapped away from under the shell;
- the folder's parent gets a real write probe (bytes written, not an empty file) before any work, so a read-only or
  full disk is one located line, not a traceback after the whole PHI scan.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from curate.io import OutputError, file_sha256
from curate.stage import ConfigError

#: The marker every folder curate publishes carries: {"written_by": "curate publish", "files": {path: sha256}}.
MANIFEST = ".curate-publish.json"
#: Staging and swap folders are made beside the target under this prefix (a killed run's are removed later).
STAGING_PREFIX = ".publish-"
#: Bytes the write probe writes: an empty file passes on a full disk, a real write does not.
PROBE_BYTES = 1 << 20
SHOWN = 5


def written_files(folder: Path) -> dict[str, str]:
    """Every file under `folder` (the manifest aside) -> its sha256, by relative path."""
    return {p.relative_to(folder).as_posix(): file_sha256(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.is_symlink() and p.name != MANIFEST}


def write_manifest(folder: Path) -> None:
    """Mark a finished staging folder as curate's own: the files it holds and their hashes."""
    manifest = {"written_by": "curate publish", "files": written_files(folder)}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def foreign_entries(folder: Path) -> list[str] | None:
    """What in `folder` curate did not write, or changed since: None when it is not a publish folder at all (no
    valid manifest), [] when it is exactly what an earlier publish left. A folder curate did not make is one entry."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
        if manifest.get("written_by") != "curate publish" or not isinstance(files, dict):
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    parents = {parent.as_posix() for name in files for parent in Path(name).parents if parent.as_posix() != "."}
    out = []

    def walk(here: Path) -> None:
        for path in sorted(here.iterdir()):
            entry = path.relative_to(folder).as_posix()
            if entry == MANIFEST:
                continue
            if entry in parents and path.is_dir() and not path.is_symlink():
                walk(path)
            elif entry not in files:
                out.append(f"{entry}{'/' if path.is_dir() and not path.is_symlink() else ''} (added)")
            elif path.is_symlink() or not path.is_file() or file_sha256(path) != files[entry]:
                out.append(f"{entry} (changed)")

    walk(folder)
    return out + [f"{name} (removed)" for name in files if not (folder / name).exists()]


def _shown(items: list[str]) -> str:
    return ", ".join(items[:SHOWN]) + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


def published_by_run(folder: Path) -> bool:
    """Whether `folder` is, unchanged, the publish output that the run directory holding it recorded (its manifest
    keeps the output's sha256): a publish folder from before the marker existed, which `curate run` may replace."""
    import json

    from curate.pipeline.rundir import MANIFEST as RUN_MANIFEST
    from curate.pipeline.rundir import sha256_path

    try:
        entry = json.loads((folder.parent / RUN_MANIFEST).read_text(encoding="utf-8"))["stages"]["publish"]
        output = entry.get("output") or entry["previous_output"]  # while publish runs, what it wrote last time
        recorded = (folder.parent / output["path"]).resolve() == folder.resolve()
        return recorded and output["sha256"] == sha256_path(folder)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def check_replaceable(target: Path, folder: Path) -> None:
    """Refuse (ConfigError, naming the folder) unless `folder` is absent, empty, or exactly an earlier publish."""
    if not folder.exists():
        return
    if not folder.is_dir():
        raise ConfigError(f"--local-dir {target}: is a file, not a folder: choose a new or empty folder")
    if not any(folder.iterdir()):
        return
    foreign = foreign_entries(folder)
    if foreign is None and published_by_run(folder):
        return
    if foreign is None:
        raise ConfigError(f"--local-dir {target}: not empty, and not a folder curate published (no {MANIFEST}): "
                          "publishing replaces the whole folder, so curate writes only into a new or empty folder or "
                          "one it published itself; choose another --local-dir (a publish folder from an earlier curate "
                          "has no marker: remove it yourself if it is one)")
    if foreign:
        raise ConfigError(f"--local-dir {target}: an earlier publish folder, changed since curate wrote it "
                          f"({_shown(foreign)}): publishing replaces the whole folder and would lose these; move them "
                          "out or choose another --local-dir")


def probe_writable(target: Path, parent: Path) -> None:
    """A real write in the folder the staging folder goes to (the target's parent): OutputError naming the target
    when it is read-only, full, or cannot be made."""
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f"{STAGING_PREFIX}probe-{os.getpid()}-", dir=parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(b"\0" * PROBE_BYTES)
                fh.flush()
                os.fsync(fh.fileno())
        finally:
            os.unlink(probe)
    except OSError as exc:
        raise OutputError(target, exc) from None


def check_folder(target: Path, reads: list[Path]) -> Path:
    """The folder a publish to `--local-dir target` replaces (a link's target, not the link), checked before any
    work: not the current folder or above it, holding none of the input files, absent or empty or an earlier publish,
    and its parent writable."""
    folder = Path(os.path.realpath(target))
    cwd = Path.cwd().resolve()
    if folder == cwd or folder in cwd.parents:
        raise ConfigError(f"--local-dir {target}: is the current folder{'' if folder == cwd else ' or above it'}; "
                          "publishing replaces the whole folder: choose a folder of its own, e.g. --local-dir out")
    for read in reads:
        real = Path(os.path.realpath(read))
        if real == folder or folder in real.parents:
            raise ConfigError(f"--local-dir {target}: holds the input {read}; publishing replaces the whole folder: "
                              "choose another --local-dir")
    check_replaceable(target, folder)
    probe_writable(target, folder.parent)
    return folder


def make_staging(parent: Path) -> Path:
    """A fresh staging folder beside the target (mode from the user's umask); folders a killed run left go first."""
    from curate.io import dir_mode, process_alive

    parent.mkdir(parents=True, exist_ok=True)
    for old in parent.glob(f"{STAGING_PREFIX}*"):
        pid = old.name[len(STAGING_PREFIX):].removeprefix("probe-").split("-", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=parent))
    os.chmod(staging, dir_mode())
    return staging


def swap_into_place(staging: Path, target: Path, folder: Path) -> None:
    """Swap the finished staging folder in as `folder` (the real folder behind `target`): a crash before this leaves
    any earlier publish untouched. The folder is checked again first: files added while the rows were checked are
    not deleted either."""
    check_replaceable(target, folder)
    if not folder.exists():
        os.replace(staging, folder)
        return
    old = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-old-", dir=folder.parent))
    try:
        os.replace(folder, old / "x")
        os.replace(staging, folder)
    finally:
        if (old / "x").exists() and not folder.exists():  # put the earlier publish back: the swap failed halfway
            os.replace(old / "x", folder)
        shutil.rmtree(old, ignore_errors=True)
