"""A real Redis server for the tests marked ``redis``: Debian's ``redis-server`` on a free
port, no persistence, started once per session and stopped at the end.

Import the fixture into a test module (``from tests.integration.redis_server import
redis_server``); each test takes its own logical database (:meth:`RedisServer.feast_yaml`
with a distinct ``db``), so tests never see each other's keys.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen

    def connection_string(self, db: int) -> str:
        return f"127.0.0.1:{self.port},db={db}"

    def feast_yaml(self, db: int) -> str:
        """The ``online_store:`` block of a feature_store.yaml for this server."""
        return (
            f'online_store:\n  type: redis\n  connection_string: "{self.connection_string(db)}"\n'
        )

    def client(self, db: int):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, db=db)


def start_redis(workdir: Path, timeout_s: float = 20.0) -> RedisServer:
    port = free_port()
    log = (workdir / "redis.log").open("w")
    process = subprocess.Popen(
        [
            REDIS_SERVER,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = RedisServer(port, process)
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited: see {workdir / 'redis.log'}")
        try:
            if server.client(0).ping():
                return server
        except Exception:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.05)


def stop_redis(server: RedisServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(10)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        stop_redis(server)
