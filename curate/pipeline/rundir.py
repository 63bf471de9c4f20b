"""A run directory as the report and the dataset card read it: the manifest, each stage's report, its files.

Also the file fingerprints the runner records (sha256 of a file, or of a folder's files) and row counts: one home
for both, so what the runner writes is what the readers check.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.io import file_sha256

MANIFEST = "manifest.json"


def sha256_path(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes; for a folder, of its files' relative names and hashes (temp files ignored)."""
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
            digest.update(child.relative_to(path).as_posix().encode())
            digest.update(b"\0" + sha256_path(child).encode() + b"\n")
        return digest.hexdigest()
    return file_sha256(path)


def count_rows(path: str | os.PathLike[str]) -> int | None:
    """Rows in a stage file without reading it (Parquet footer, JSONL lines); a folder: its data/*.parquet."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("data/*.parquet"))
        return sum(count_rows(f) or 0 for f in files) if files else None
    name = path.name.lower()
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    if name.endswith((".jsonl", ".json")):
        with open(path, "rb") as fh:
            return sum(1 for line in fh if line.strip())
    return None


def read_manifest(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    path = Path(run_dir) / MANIFEST
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); the run directory is damaged") from None


@dataclass
class RunDir:
    """Read-only view of a finished or partly finished run."""

    path: Path
    manifest: dict[str, Any]

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> RunDir:
        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: run directory not found")
        manifest = read_manifest(path)
        if manifest is None:
            raise FileNotFoundError(f"{path}: no {MANIFEST} (is this a `curate run` directory?)")
        return cls(path, manifest)

    def stage(self, name: str) -> dict[str, Any]:
        return self.manifest.get("stages", {}).get(name) or {}

    def status(self, name: str) -> str:
        """done, failed, running, skipped, stale, or `not run`."""
        return self.stage(name).get("status", "not run")

    def done(self, name: str) -> bool:
        return self.status(name) == "done"

    def file(self, name: str, kind: str = "output") -> Path | None:
        """The stage's output / rejected / report file, when the manifest names one and it exists."""
        entry = self.stage(name)
        rel = entry.get(kind, {}).get("path") if kind == "output" else entry.get(kind)
        if not rel:
            return None
        path = Path(rel) if Path(rel).is_absolute() else self.path / rel
        return path if path.exists() else None

    def report(self, name: str) -> Any:
        """The stage's typed report (its stage's `Report` class, see `curate.stage`), if it wrote one."""
        path = self.file(name, "report")
        if path is None:
            return None
        from curate.pipeline.stages import stage_named

        return stage_named(name).stage_class().Report.load(path)

    def rows(self, name: str, kind: str = "output") -> list[dict[str, Any]] | None:
        path = self.file(name, kind)
        if path is None or path.is_dir():
            return None
        from curate.io import read_rows

        return read_rows(path)

    @property
    def order(self) -> list[str]:
        return list(self.manifest.get("order") or self.manifest.get("stages", {}))
