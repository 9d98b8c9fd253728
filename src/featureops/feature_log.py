"""Log the feature vectors the service served, to Parquet parts, off the request path.

The request path only appends a batch (the columns of one request, pickled: one bytes
object the garbage collector never scans, however long the queue) to an in-memory queue:
it never converts, writes or waits. A writer thread takes the queue when ``flush_rows``
rows wait, every ``flush_seconds`` whatever the traffic, and at :meth:`FeatureLogger.close`
(the service calls it at shutdown, SIGTERM included), and turns it into
``part-<time>-<pid>-<seq>.parquet`` files, written atomically (a reader never sees half a
file). Several worker processes can log into one folder: part names carry the worker's id.

With ``process=True`` (what the service uses) the Arrow conversion and the Parquet writing
happen in a small child process (see ``_writer_main``) fed through a pipe:
converting thousands of rows holds the GIL for milliseconds, which in a thread of the
serving process stalled requests (the latency tail). The child ignores SIGINT/SIGTERM (the
worker tells it when to finish) and, if the worker dies, writes what it received and exits
when the pipe closes. If the child cannot be used, the thread writes itself.

If the disk falls behind, at most ``max_queued_rows`` rows wait in memory; newer batches are
then dropped and counted in :attr:`FeatureLogger.dropped_rows` (the service exports it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pyarrow as pa

from featureops.io import write_parquet

log = logging.getLogger(__name__)
CHUNK_ROWS = 256  # rows converted to Arrow per step
_LENGTH = struct.Struct("<Q")


@dataclass
class LogBatch:
    """The rows of one request, column by column; ``schema`` types every column."""

    columns: dict[str, list[Any]]
    rows: int
    schema: pa.Schema


# A queued batch: (pickled columns, rows, schema).
Queued = tuple[bytes, int, pa.Schema]


class PartWriter:
    """Turns queued batches into Parquet parts (one per run of batches of one schema)."""

    def __init__(self, directory: Path, owner_pid: int) -> None:
        self.directory = Path(directory)
        self.owner_pid = owner_pid
        self.written_rows = 0
        self.errors = 0
        self._seq = 0

    def write(self, batches: list[Queued]) -> list[Path]:
        groups: list[tuple[pa.Schema, list[pa.RecordBatch]]] = []
        chunk: list[dict[str, list[Any]]] = []
        rows = 0
        schema: pa.Schema | None = None

        def convert() -> None:
            # a few hundred rows per conversion, then a pause for other threads
            nonlocal chunk, rows
            if not chunk or schema is None:  # rows come with their batch's schema
                return
            try:
                columns = {
                    name: list(chain.from_iterable(c[name] for c in chunk)) for name in schema.names
                }
                record = pa.RecordBatch.from_pydict(columns, schema=schema)
            except Exception:
                self.errors += 1
                log.exception("feature log: could not convert %d rows", rows)
            else:
                if groups and groups[-1][0].equals(schema):
                    groups[-1][1].append(record)
                else:
                    groups.append((schema, [record]))
            chunk, rows = [], 0
            time.sleep(0)

        for blob, n, batch_schema in batches:
            if schema is not None and not schema.equals(batch_schema):
                convert()
            schema = batch_schema
            chunk.append(pickle.loads(blob))
            rows += n
            if rows >= CHUNK_ROWS:
                convert()
        convert()
        written = []
        for group_schema, records in groups:
            try:
                table = pa.Table.from_batches(records, schema=group_schema)
                self._seq += 1
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
                path = self.directory / f"part-{stamp}-{self.owner_pid}-{self._seq:06d}.parquet"
                write_parquet(table, path)
            except Exception:
                self.errors += 1
                log.exception("feature log: could not write %d batches", len(records))
                continue
            self.written_rows += table.num_rows
            written.append(path)
        return written


def _send(stream: IO[bytes], message: Any) -> None:
    payload = pickle.dumps(message, protocol=5)
    stream.write(_LENGTH.pack(len(payload)))
    stream.write(payload)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        return None  # the other side is gone
    (size,) = _LENGTH.unpack(header)
    payload = stream.read(size)
    if len(payload) < size:
        return None
    return pickle.loads(payload)


class _Child:
    """The writer process of one FeatureLogger, seen from the serving process."""

    def __init__(self, directory: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD_CODE, str(directory), str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=False,
        )
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None  # both are pipes
        self.stdin: IO[bytes] = stdin
        self.stdout: IO[bytes] = stdout
        self._schemas: dict[int, tuple[pa.Schema, int]] = {}

    def write(self, batches: list[Queued], timeout: float) -> tuple[list[Path], int, int]:
        """Send the batches, wait for the child's parts; (paths, rows written, errors)."""
        refs = []
        for blob, rows, schema in batches:
            known = self._schemas.get(id(schema))
            if known is None or known[0] is not schema:
                known = (schema, len(self._schemas))
                self._schemas[id(schema)] = known
                _send(self.stdin, ("schema", known[1], schema))
            refs.append((blob, rows, known[1]))
        _send(self.stdin, ("write", refs))
        ready, _, _ = select.select([self.stdout], [], [], timeout)
        reply = _receive(self.stdout) if ready else None
        if reply is None:
            raise RuntimeError("the feature log writer process did not answer")
        _, paths, rows, errors = reply
        return [Path(p) for p in paths], rows, errors

    def close(self, timeout: float) -> None:
        with contextlib.suppress(OSError, ValueError):
            _send(self.stdin, ("exit",))
            self.stdin.close()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class FeatureLogger:
    """A buffered writer of served feature vectors, off the request path."""

    def __init__(
        self,
        directory: str | Path,
        flush_rows: int = 1000,
        flush_seconds: float = 30.0,
        max_queued_rows: int = 200_000,
        process: bool = False,
    ) -> None:
        self.directory = Path(directory)
        self.flush_rows = max(1, int(flush_rows))
        self.flush_seconds = float(flush_seconds)
        self.max_queued_rows = max_queued_rows
        self.process = process
        self.dropped_rows = 0
        self._queue: deque[Queued] = deque()
        # one writer each (request path / writer thread): no lock, no lost updates
        self._appended = 0
        self._taken = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._write_lock = threading.Lock()
        self._writer = PartWriter(self.directory, os.getpid())
        self._child: _Child | None = None
        self._child_rows = 0
        self._child_errors = 0
        self._thread: threading.Thread | None = None

    @property
    def written_rows(self) -> int:
        return self._writer.written_rows + self._child_rows

    @property
    def write_errors(self) -> int:
        return self._writer.errors + self._child_errors

    # -- request path ---------------------------------------------------------------

    def log(self, batch: LogBatch) -> None:
        """Queue one request's rows (non-blocking)."""
        if self.queued_rows + batch.rows > self.max_queued_rows:
            self.dropped_rows += batch.rows
            return
        self._queue.append((pickle.dumps(batch.columns, protocol=5), batch.rows, batch.schema))
        self._appended += batch.rows
        if self.queued_rows >= self.flush_rows:
            self._wake.set()

    @property
    def queued_rows(self) -> int:
        return self._appended - self._taken

    # -- writer -----------------------------------------------------------------------

    def start(self) -> FeatureLogger:
        """Start the writer thread (and process) (idempotent)."""
        if self.process and self._child is None:
            try:
                self._child = _Child(self.directory)
            except OSError:
                log.exception("feature log: no writer process; the thread writes")
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="featureops-feature-log", daemon=True
            )
            self._thread.start()
        return self

    def _run(self) -> None:
        lower_thread_priority()
        deadline = time.monotonic() + self.flush_seconds
        while not self._stop.is_set():
            self._wake.wait(max(0.0, deadline - time.monotonic()))
            self._wake.clear()
            if self._stop.is_set():
                break
            if self.queued_rows >= self.flush_rows or time.monotonic() >= deadline:
                self.flush()
                deadline = time.monotonic() + self.flush_seconds

    def flush(self, timeout: float = 60.0) -> list[Path]:
        """Write every queued batch now; return the parts written."""
        with self._write_lock:
            batches: list[Queued] = []
            while self._queue:
                item = self._queue.popleft()
                self._taken += item[1]
                batches.append(item)
            if not batches:
                return []
            if self._child is not None:
                try:
                    paths, rows, errors = self._child.write(batches, timeout)
                except (OSError, ValueError, RuntimeError, EOFError):
                    log.exception("feature log: writer process failed; the thread writes")
                    self._child_errors += 1
                    child, self._child = self._child, None
                    child.close(timeout=5)
                else:
                    self._child_rows += rows
                    self._child_errors += errors
                    return paths
            return self._writer.write(batches)

    def close(self, timeout: float = 30.0) -> None:
        """Stop the writer thread, write what is queued, stop the writer process."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.flush(timeout)
        if self._child is not None:
            self._child.close(timeout)
            self._child = None


def lower_thread_priority(niceness: int = 10) -> None:
    """Make the calling thread yield the CPU to the request path (Linux: per-thread nice).

    On a box with as many busy threads as cores, a background burst otherwise takes a whole
    scheduler slice from a request (milliseconds); a niced thread runs in the gaps.
    """
    with contextlib.suppress(AttributeError, OSError):  # not Linux / not allowed: as is
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)


def read_feature_log(directory: str | Path) -> pd.DataFrame:
    """All logged rows, oldest part first."""
    parts = sorted(Path(directory).glob("part-*.parquet"))
    if not parts:
        raise FileNotFoundError(f"no feature log parts in {directory}")
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)


# The worker says when to stop (it flushes first): signals are ignored from the first line,
# before the imports, so a group-wide SIGTERM at any time cannot lose handed-over rows.
_CHILD_CODE = (
    "import signal, sys\n"
    "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "from featureops.feature_log import _writer_main\n"
    "_writer_main(*sys.argv[1:3])\n"
)


def _writer_main(directory: str, owner_pid: str) -> None:
    """The writer process: messages on stdin, a reply per write on stdout."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(10)
    writer = PartWriter(Path(directory), int(owner_pid))
    schemas: dict[int, pa.Schema] = {}
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while True:
        message = _receive(inp)
        if message is None or message[0] == "exit":
            return  # the worker flushed before saying exit; on EOF nothing is pending
        if message[0] == "schema":
            schemas[message[1]] = message[2]
        elif message[0] == "write":
            rows_before, errors_before = writer.written_rows, writer.errors
            paths = writer.write([(blob, n, schemas[s]) for blob, n, s in message[1]])
            _send(
                out,
                (
                    "written",
                    [str(p) for p in paths],
                    writer.written_rows - rows_before,
                    writer.errors - errors_before,
                ),
            )
