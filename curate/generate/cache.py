"""The durable response cache: append-only JSONL segments keyed by each request's content hash.

Each process appends to a segment of its own (so runs and machines can share one cache directory), writes every
finished response at once with one `write` (a `kill -9` cannot lose it: it is in the page cache) and fsyncs in
batches (a power cut loses at most the last second). Loading reads every segment and ignores a torn last line.

Only an index (key -> segment, offset, length) stays in memory; a response is read back from its segment when the
output is assembled. So resuming a large cache reads the files once without parsing every completion, and memory
does not grow with the texts.
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
_PREFIX = b'{"k":"'  # every line starts with its key: the index is built without parsing the response
_MAX_READ_FDS = 64


def _line(key: str, response: dict[str, Any]) -> bytes:
    return json.dumps({"k": key, "r": response}, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


class ResponseCache:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.torn_lines = 0
        self._index: dict[str, tuple[int, int, int]] = {}
        self._paths: list[Path] = []
        self._read_fds: dict[int, int] = {}
        self._fd: int | None = None
        self._segment = -1
        self._offset = 0
        self._unsynced = 0
        self._last_sync = time.monotonic()
        self._syncing: threading.Thread | None = None

    # ------------------------------------------------------------ reading

    def load(self) -> int:
        """Index every segment; returns the number of entries."""
        if not self.directory.is_dir():
            return 0
        index = self._index
        for path in sorted(self.directory.glob("*.jsonl")):
            if path in self._paths:
                continue
            segment = len(self._paths)
            self._paths.append(path)
            data = path.read_bytes()
            pos, size = 0, len(data)
            while pos < size:
                end = data.find(b"\n", pos)
                if end < 0:  # no newline at the end: the last write was cut short
                    self.torn_lines += 1
                    break
                quote = data.find(b'"', pos + len(_PREFIX), end)
                if data.startswith(_PREFIX, pos) and quote > 0 and data[end - 1:end] == b"}":
                    index[data[pos + len(_PREFIX):quote].decode()] = (segment, pos, end - pos)
                elif end > pos:
                    self.torn_lines += 1
                pos = end + 1
        return len(index)

    def get(self, key: str) -> dict[str, Any] | None:
        where = self._index.get(key)
        if where is None:
            return None
        segment, offset, length = where
        fd = self._read_fds.get(segment)
        if fd is None:
            if len(self._read_fds) >= _MAX_READ_FDS:
                self._close_readers()
            fd = self._read_fds[segment] = os.open(self._paths[segment], os.O_RDONLY)
        try:
            return json.loads(os.pread(fd, length, offset))["r"]
        except (ValueError, KeyError, TypeError):  # a damaged line: treat as never answered
            self.torn_lines += 1
            del self._index[key]
            return None

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def __len__(self) -> int:
        return len(self._index)

    # ------------------------------------------------------------ writing

    def _open(self) -> int:
        if self._fd is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            name = f"segment-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
            path = self.directory / name
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            self._segment, self._offset = len(self._paths), 0
            self._paths.append(path)
        return self._fd

    def put_many(self, items: list[tuple[str, dict[str, Any]]]) -> None:
        """Append responses in one write (all samples of one request land together)."""
        if not items:
            return
        lines = [_line(key, response) for key, response in items]
        fd = self._open()
        view = memoryview(b"".join(lines))
        while view:
            written = os.write(fd, view)
            view = view[written:]
        for (key, _), line in zip(items, lines):
            self._index[key] = (self._segment, self._offset, len(line) - 1)
            self._offset += len(line)
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

    def _close_readers(self) -> None:
        for fd in self._read_fds.values():
            os.close(fd)
        self._read_fds.clear()

    def close(self) -> None:
        """Sync and close the segment this process writes. The index stays usable: reads reopen segments."""
        if self._fd is not None:
            self.sync()
            os.close(self._fd)
            self._fd = None
        self._close_readers()
