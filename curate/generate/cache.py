"""The durable response cache: append-only JSONL segments keyed by each request's content hash.

Each process appends to a segment of its own (so runs and machines can share one cache directory), writes every
finished response at once with one `write` (a `kill -9` cannot lose it: it is in the page cache) and fsyncs in
batches (a power cut loses at most the last second). Loading reads every segment and ignores a torn last line.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

FSYNC_INTERVAL_S = 1.0


class ResponseCache:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.entries: dict[str, dict[str, Any]] = {}
        self.torn_lines = 0
        self._fd: int | None = None
        self._unsynced = 0
        self._last_sync = time.monotonic()
        self._syncing: threading.Thread | None = None

    def load(self) -> int:
        """Read every segment; returns the number of entries."""
        if not self.directory.is_dir():
            return 0
        entries = self.entries
        for path in sorted(self.directory.glob("*.jsonl")):
            with open(path, "rb") as fh:
                data = fh.read()
            lines = data.split(b"\n")
            if lines and lines[-1]:  # no newline at the end: the last write was cut short
                self.torn_lines += 1
            for raw in lines[:-1]:
                if not raw:
                    continue
                try:
                    item = json.loads(raw)
                    entries[item["k"]] = item["r"]
                except (ValueError, KeyError, TypeError):
                    self.torn_lines += 1
        return len(entries)

    def get(self, key: str) -> dict[str, Any] | None:
        return self.entries.get(key)

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def _open(self) -> int:
        if self._fd is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            name = f"segment-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
            self._fd = os.open(self.directory / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        return self._fd

    def put_many(self, items: list[tuple[str, dict[str, Any]]]) -> None:
        """Append responses in one write (all samples of one request land together)."""
        if not items:
            return
        payload = b"".join(json.dumps({"k": k, "r": r}, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
                           for k, r in items)
        fd = self._open()
        view = memoryview(payload)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        for key, response in items:
            self.entries[key] = response
        self._unsynced += len(items)
        if time.monotonic() - self._last_sync >= FSYNC_INTERVAL_S:
            self.sync(background=True)

    def sync(self, background: bool = False) -> None:
        """fsync what was written. In the background during a run (an fsync can take tens of milliseconds, and the
        event loop must not stall on it); in the foreground at the end."""
        if self._syncing is not None and (not background or not self._syncing.is_alive()):
            self._syncing.join()
            self._syncing = None
        if self._fd is not None and self._unsynced and self._syncing is None:
            if background:
                self._syncing = threading.Thread(target=os.fsync, args=(self._fd,), name="cache-fsync", daemon=True)
                self._syncing.start()
            else:
                os.fsync(self._fd)
            self._unsynced = 0
        self._last_sync = time.monotonic()

    def close(self) -> None:
        if self._fd is not None:
            self.sync()
            os.close(self._fd)
            self._fd = None
