"""The durable response cache: append-only JSONL segments keyed by each request's content hash.

Each process appends to a segment of its own (so runs and machines can share one cache directory), writes every
finished response at once with one `write` (a `kill -9` cannot lose it: it is in the page cache) and fsyncs in
batches (a power cut loses at most the last second). Loading reads every segment and ignores a torn last line.

Only an index (key -> segment, offset, length) stays in memory; a response is read back from its segment when the
output is assembled. So resuming a large cache reads the files once without parsing every completion, and memory
does not grow with the texts.

Each line carries a CRC-32 of its key and response: `{"k":"KEY","c":"1a2b3c4d","r":{...}}`. It is checked when the
response is read back (`get`), where the line is parsed anyway, so indexing stays a scan for newlines. A line that
fails the check (a flipped byte, two lines glued together) counts in `damaged_lines`; another copy of the same key
(an older segment) is read instead, and without one the key leaves the index and reads as never answered: the runner
asks for it again. Lines written before checksums existed (no `"c"`) are read as they
are and checked only as JSON (a cut or glued line is caught, a changed letter inside a text cannot be); they count in
`unverified_lines`.

A write that fails (full disk, read-only folder, a file where the folder should be) raises `CacheWriteError` naming
the segment and the errno; the segment is cut back to its last whole line and the cache takes no more writes, so what
was written before stays readable. Before the first request, `check_writable` writes a probe of a long line's size
(an empty file fits on a full disk; a response does not).

The folder is curate's own: a marker file (`MARKER`) says so. A folder without it is used only when it is empty or
holds nothing but segments (a cache from before the marker); any other folder (`--cache .`, a folder of the user's
files) is refused by name before anything is read or paid for, so no user file is read as a segment.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

from curate.generate.backends import GenerateError

FSYNC_INTERVAL_S = 1.0
_PREFIX = b'{"k":"'  # every line starts with its key: the index is built without parsing the response
_CHECKSUM = b'","c":"'  # then, in lines with a checksum, 8 hex digits
_RESPONSE = b'","r":'
_MAX_READ_FDS = 64
_SAFE_KEY = re.compile(r'[^"\\\x00-\x1f]+')
#: The file that marks a folder as a response cache curate made (see `check_folder`).
MARKER = ".curate-response-cache"
#: What the write probe writes: a long completion's line (about 4,000 tokens of text). An empty file is no test of a
#: full disk, and each line lost to one is a paid response.
PROBE_BYTES = 16 * 1024
#: Names curate writes in a cache folder: segments, the marker, write probes, generate's output locks.
_OWN_NAME = re.compile(rf"segment-.+\.jsonl|{re.escape(MARKER)}|\.write-probe-.+\.tmp|\.lock-[0-9a-f]+")


def checksum(key: bytes | memoryview, body: bytes | memoryview) -> int:
    """CRC-32 of a line's key and its response's JSON bytes."""
    return zlib.crc32(body, zlib.crc32(key))


def _line(key: str, response: dict[str, Any]) -> bytes:
    if not _SAFE_KEY.fullmatch(key):
        raise ValueError(f"cache keys are plain text without quotes or backslashes, got {key!r}")
    k = key.encode()
    body = json.dumps(response, ensure_ascii=False, separators=(",", ":")).encode()
    return b'%s%s%s%08x%s%s}\n' % (_PREFIX, k, _CHECKSUM, checksum(k, body), _RESPONSE, body)


def parse_line(raw: bytes) -> tuple[dict[str, Any] | None, bool]:
    """(the response of one cache line without its newline, or None when the line is damaged; whether it was
    verified by its checksum). The checksum is read on the bytes as they are (no copy); the line is then parsed
    whole, which also catches damage to its frame."""
    quote = raw.find(b'"', len(_PREFIX))
    if raw.startswith(_CHECKSUM, quote):
        start = quote + len(_CHECKSUM)
        view = memoryview(raw)
        try:
            if checksum(view[len(_PREFIX):quote], view[start + 8 + len(_RESPONSE):-1]) != int(raw[start:start + 8], 16):
                return None, True
            response = json.loads(raw)["r"]
        except (ValueError, KeyError, TypeError):
            return None, True
        return (response if isinstance(response, dict) else None), True
    try:  # a line from before checksums
        response = json.loads(raw)["r"]
    except (ValueError, KeyError, TypeError):
        return None, False
    return (response if isinstance(response, dict) else None), False


class CacheWriteError(GenerateError):
    """The cache could not be written: one located line, and the run stops (every later response would be lost)."""

    exit_code = 1

    def __init__(self, path: str | os.PathLike[str], exc: OSError, *, directory: Path, kept: int) -> None:
        reason = f"[Errno {exc.errno}] {exc.strerror or os.strerror(exc.errno or 0)}" if exc.errno else str(exc)
        super().__init__(f"cannot write the response cache {path}: {reason}",
                         hint=f"what was written before ({kept} responses) is kept in {directory}; make room (or "
                              "give --cache another folder) and re-run the same command: only the requests that were "
                              "in flight are asked again")
        self.errno = exc.errno


class CacheFolderError(GenerateError):
    """The cache folder is not one curate made (a folder of the user's files): refused before anything is read or
    paid for."""

    exit_code = 2

    def __init__(self, directory: Path, foreign: list[str]) -> None:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        super().__init__(f"{directory} is not a response cache: it holds files curate did not write ({shown})",
                         hint="give --cache a new or empty folder (curate marks its cache folders with a "
                              f"{MARKER} file); nothing was read or asked")


class ResponseCache:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.torn_lines = 0
        #: lines that failed their checksum (or, without one, did not parse) when read back: asked again
        self.damaged_lines = 0
        #: lines from before checksums that were read back (trusted as written)
        self.unverified_lines = 0
        self.error: CacheWriteError | None = None
        self._index: dict[str, tuple[int, int, int]] = {}
        self._copies: dict[str, list[tuple[int, int, int]]] = {}  # earlier lines of a key, should the last be damaged
        self._paths: list[Path] = []
        self._read_fds: dict[int, int] = {}
        self._fd: int | None = None
        self._segment = -1
        self._offset = 0
        self._unsynced = 0
        self._last_sync = time.monotonic()
        self._syncing: threading.Thread | None = None
        self._sync_error: OSError | None = None

    # ------------------------------------------------------------ reading

    def check_folder(self) -> None:
        """Refuse a folder that is not a response cache (see the module's notes); a missing one is made later."""
        if not self.directory.is_dir() or (self.directory / MARKER).is_file():
            return
        foreign = sorted(p.name for p in self.directory.iterdir() if not (_OWN_NAME.fullmatch(p.name) and p.is_file()))
        if foreign:
            raise CacheFolderError(self.directory, foreign)

    def load(self) -> int:
        """Index every segment; returns the number of entries. A folder that is not a cache is refused first."""
        self.check_folder()
        if not self.directory.is_dir():
            return 0
        index, copies = self._index, self._copies
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
                    key = data[pos + len(_PREFIX):quote].decode()
                    earlier = index.get(key)
                    if earlier is not None:
                        copies.setdefault(key, []).append(earlier)
                    index[key] = (segment, pos, end - pos)
                elif end > pos:
                    self.torn_lines += 1
                pos = end + 1
        return len(index)

    def get(self, key: str) -> dict[str, Any] | None:
        """The response cached under `key`, checked; None when there is none or every line of it is damaged (the
        key then leaves the index, so the runner asks for it again)."""
        where = self._index.get(key)
        while where is not None:
            response, verified = parse_line(self._read(*where))
            if response is not None:
                if not verified:
                    self.unverified_lines += 1
                return response
            self.damaged_lines += 1
            copies = self._copies.get(key)
            where = copies.pop() if copies else None
            if where is None:
                del self._index[key]
            else:
                self._index[key] = where
        return None

    def _read(self, segment: int, offset: int, length: int) -> bytes:
        fd = self._read_fds.get(segment)
        if fd is None:
            if len(self._read_fds) >= _MAX_READ_FDS:
                self._close_readers()
            fd = self._read_fds[segment] = os.open(self._paths[segment], os.O_RDONLY)
        return os.pread(fd, length, offset)

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def __len__(self) -> int:
        return len(self._index)

    # ------------------------------------------------------------ writing

    def _fail(self, path: Path | str, exc: OSError) -> CacheWriteError:
        self.error = CacheWriteError(path, exc, directory=self.directory, kept=len(self._index))
        return self.error

    def check_writable(self) -> None:
        """Fail now, before any request is paid for, if the cache folder cannot be made or written."""
        if self.error is not None:
            raise self.error
        self.check_folder()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".write-probe-", suffix=".tmp", dir=self.directory)
            try:
                view = memoryview(b"\n" * PROBE_BYTES)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
                os.unlink(probe)
            self._mark()
        except OSError as exc:
            raise self._fail(self.directory, exc) from None

    def _mark(self) -> None:
        marker = self.directory / MARKER
        if not marker.is_file():
            marker.write_text("a curate response cache: append-only segments of teacher responses\n")

    def _open(self) -> int:
        if self._fd is None:
            now = time.time_ns()  # to the nanosecond: segments sort in the order they were started (later lines win)
            stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(now // 1_000_000_000))
            name = f"segment-{stamp}.{now % 1_000_000_000:09d}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
            path = self.directory / name
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._mark()
                self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            except OSError as exc:
                raise self._fail(path, exc) from None
            self._segment, self._offset = len(self._paths), 0
            self._paths.append(path)
        return self._fd

    def put_many(self, items: list[tuple[str, dict[str, Any]]]) -> None:
        """Append responses in one write (all samples of one request land together). Raises CacheWriteError when
        the write fails, and on every later call."""
        if self.error is not None:
            raise self.error
        if not items:
            return
        lines = [_line(key, response) for key, response in items]
        fd = self._open()
        view = memoryview(b"".join(lines))
        try:
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except OSError as exc:
            error = self._fail(self._paths[self._segment], exc)
            try:  # cut a partly written line off, so the segment ends with a whole line
                os.ftruncate(fd, self._offset)
            except OSError:
                pass  # then it is a torn last line, which loading skips
            raise error from None
        for (key, _), line in zip(items, lines):
            self._index[key] = (self._segment, self._offset, len(line) - 1)
            self._offset += len(line)
        self._unsynced += len(items)
        if time.monotonic() - self._last_sync >= FSYNC_INTERVAL_S:
            self.sync(background=True)

    def _fsync(self, fd: int) -> None:
        try:
            os.fsync(fd)
        except OSError as exc:  # seen by the next put or sync, in the event loop's thread
            self._sync_error = exc

    def sync(self, background: bool = False) -> None:
        """fsync what was written. In the background during a run (an fsync can take tens of milliseconds, and the
        event loop must not stall on it); in the foreground at the end."""
        if self._syncing is not None and (not background or not self._syncing.is_alive()):
            self._syncing.join()
            self._syncing = None
        if self._sync_error is not None and self.error is None:
            raise self._fail(self._paths[self._segment], self._sync_error)
        if self.error is not None:
            return
        if self._fd is not None and self._unsynced and self._syncing is None:
            if background:
                self._syncing = threading.Thread(target=self._fsync, args=(self._fd,), name="cache-fsync", daemon=True)
                self._syncing.start()
            else:
                self._fsync(self._fd)
                if self._sync_error is not None:
                    raise self._fail(self._paths[self._segment], self._sync_error)
            self._unsynced = 0
        self._last_sync = time.monotonic()

    def _close_readers(self) -> None:
        for fd in self._read_fds.values():
            os.close(fd)
        self._read_fds.clear()

    def close(self) -> None:
        """Sync and close the segment this process writes (after a failed write: close only). The index stays
        usable: reads reopen segments."""
        if self._fd is not None:
            try:
                self.sync()
            finally:
                os.close(self._fd)
                self._fd = None
        self._close_readers()
