"""The feature log: queued on the request path, written by its own thread."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from featureops.feature_log import FeatureLogger, LogBatch, read_feature_log

SCHEMA = pa.schema(
    [
        pa.field("feature_time", pa.timestamp("us", tz="UTC")),
        pa.field("user_id", pa.string()),
        pa.field("merchant_id", pa.int64()),
        pa.field("spend", pa.float64()),
        pa.field("stale_features", pa.list_(pa.string())),
    ]
)


def batch(n: int, schema: pa.Schema = SCHEMA) -> LogBatch:
    now = datetime.now(UTC)
    columns = {
        "feature_time": [now] * n,
        "user_id": [f"u{i}" for i in range(n)],
        "merchant_id": list(range(n)),
        "spend": [float(i) if i % 3 else None for i in range(n)],
        "stale_features": [["spend"] if i % 2 else [] for i in range(n)],
    }
    return LogBatch({k: columns[k] for k in schema.names}, n, schema)


def wait_for_parts(directory, count: int, timeout: float = 10.0) -> list:
    deadline = time.monotonic() + timeout
    while len(parts := sorted(directory.glob("part-*.parquet"))) < count:
        assert time.monotonic() < deadline, f"{len(parts)} parts, expected {count}"
        time.sleep(0.05)
    return parts


@pytest.fixture(params=[True, False], ids=["process", "thread"])
def process(request) -> bool:
    """The service writes from a child process; the thread-only writer is the fallback."""
    return request.param


def test_rows_are_written_on_the_timer_without_more_traffic(tmp_path, process) -> None:
    logger = FeatureLogger(tmp_path, flush_rows=1000, flush_seconds=0.3, process=process).start()
    try:
        logger.log(batch(3))
        wait_for_parts(tmp_path, 1)
        log = read_feature_log(tmp_path)
        assert list(log["user_id"]) == ["u0", "u1", "u2"]
        assert log["merchant_id"].dtype == "int64"
        assert list(log["stale_features"].map(list)) == [[], ["spend"], []]
    finally:
        logger.close()


def test_a_full_buffer_wakes_the_writer_and_close_writes_the_rest(tmp_path, process) -> None:
    logger = FeatureLogger(tmp_path, flush_rows=10, flush_seconds=3600, process=process).start()
    logger.log(batch(6))
    logger.log(batch(6))  # 12 >= 10: written now, not in an hour
    wait_for_parts(tmp_path, 1)
    logger.log(batch(2))
    logger.close()  # what the service does at shutdown (SIGTERM included)
    assert len(read_feature_log(tmp_path)) == 14
    assert logger.written_rows == 14 and logger.queued_rows == 0


def test_logging_never_waits_for_the_writer(tmp_path) -> None:
    logger = FeatureLogger(tmp_path, flush_rows=1, flush_seconds=3600, max_queued_rows=50)
    with logger._write_lock:  # the writer is stuck (slow disk): requests go on
        started = time.perf_counter()
        for _ in range(20):
            logger.log(batch(5))
        assert time.perf_counter() - started < 1.0
    assert logger.queued_rows == 50 and logger.dropped_rows == 50
    logger.close()
    assert len(read_feature_log(tmp_path)) == 50


def test_a_schema_change_starts_a_new_part(tmp_path, process) -> None:
    logger = FeatureLogger(tmp_path, flush_rows=1000, flush_seconds=3600, process=process)
    logger.start()
    other = pa.schema([f for f in SCHEMA if f.name != "spend"])
    logger.log(batch(2))
    logger.log(batch(3, other))
    written = logger.flush()
    logger.close()
    assert len(written) == 2
    log = read_feature_log(tmp_path)
    assert len(log) == 5 and log["spend"].isna().sum() == 3 + 1


@pytest.mark.parametrize("rows", [1, 700])
def test_part_names_carry_the_serving_process_id(tmp_path, rows: int, process) -> None:
    logger = FeatureLogger(tmp_path, process=process).start()
    logger.log(batch(rows))
    (part,) = logger.flush()
    logger.close()
    assert f"-{os.getpid()}-" in part.name
    assert len(read_feature_log(tmp_path)) == rows


def test_the_writer_process_ignores_sigterm_and_writes_before_exiting(tmp_path) -> None:
    """A group-wide SIGTERM (docker stop, systemd) reaches the writer too: it must not lose
    what the worker hands it while shutting down."""
    logger = FeatureLogger(tmp_path, flush_seconds=3600, process=True).start()
    child = logger._child.proc
    logger.log(batch(4))
    assert len(logger.flush()) == 1
    logger.log(batch(3))
    child.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    assert child.poll() is None
    logger.close()
    assert child.returncode == 0
    assert len(read_feature_log(tmp_path)) == 7
