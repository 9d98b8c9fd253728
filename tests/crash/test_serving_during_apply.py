"""``/predict`` under concurrent load while ``feast_apply`` and ``materialize`` run: no errors.

The issue: ``dvc repro -f materialize`` removed the registry for ~16 s (DVC deletes a
``cache: false`` output before the stage runs) and 5,000 calls gave 4 x 500 and 2 resets.
Here the registry really changes (a definition's description) and every view is rewritten
from scratch (the bookkeeping is wiped first) while four client threads call the service.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.crash.conftest import BIN, dvc, env, run

pytestmark = pytest.mark.crash

CLIENTS = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(port: int, server: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"server exited: {server.stdout.read()}")
        try:
            con = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            con.request("GET", "/health")
            if con.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise AssertionError("server did not become healthy")


class Load:
    """Client threads posting /predict until stopped; every outcome is counted."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.outcomes: Counter[str] = Counter()
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(CLIENTS)]

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        con = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while not self.stop.is_set():
            ids = rng.sample(range(1, 9), rng.randint(1, 4))
            body = json.dumps({"entities": {"machine_id": ids}})
            try:
                con.request("POST", "/predict", body, {"Content-Type": "application/json"})
                response = con.getresponse()
                payload = response.read()
                outcome = str(response.status)
                if response.status != 200:
                    self.failures.append(f"{response.status}: {payload[:300]!r}")
            except (OSError, http.client.HTTPException) as exc:
                outcome = type(exc).__name__
                self.failures.append(repr(exc))
                con.close()
                con = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            with self.lock:
                self.outcomes[outcome] += 1
        con.close()

    def count(self) -> int:
        with self.lock:
            return sum(self.outcomes.values())

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)


@pytest.fixture
def serving_project(built_project: Path) -> Path:
    """A copy of the built project with a promoted model, its registry rebuilt in place."""
    root = built_project.parent / "serving"
    subprocess.run(["cp", "-a", str(built_project), str(root)], check=True)
    run([str(BIN / "python"), "-m", "pipelines.feast_apply"], root)  # its own registry
    run([str(BIN / "featureops"), "model", "register", "--promote"], root)
    yield root
    subprocess.run(["rm", "-rf", str(root)], check=True)


def test_predict_has_no_errors_while_apply_and_materialize_run(serving_project: Path) -> None:
    root = serving_project
    port = _free_port()
    server = subprocess.Popen(
        [str(BIN / "python"), "-m", "featureops.serving", "--port", str(port), "--workers", "1"],
        cwd=root,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_healthy(port, server)
        registry = root / "data" / "feast" / "registry.db"
        registry_before = registry.read_bytes()
        views = root / "feature_repo" / "feature_views.py"
        views.write_text(
            views.read_text().replace(
                'description="Static machine attributes from the registry."',
                'description="Static machine attributes (serving under load)."',
            )
        )
        con = sqlite3.connect(root / "data" / "feast" / "online_store.db")
        with con:  # no bookkeeping: materialize rewrites every view
            con.execute("DELETE FROM featureops_materializations")
        con.close()
        with Load(port) as load:
            while load.count() < 20:
                time.sleep(0.05)
            counts = [load.count()]
            apply = dvc(root, "repro", "-f", "-s", "feast_apply")
            counts.append(load.count())
            materialize = dvc(root, "repro", "-f", "-s", "materialize")
            counts.append(load.count())
            time.sleep(1.0)
        assert registry.read_bytes() != registry_before, apply.stdout  # it really changed
        assert '"full_refresh": true' in (root / "metrics" / "materialize.json").read_text()
        assert "first run" in materialize.stdout
        assert counts[1] > counts[0] and counts[2] > counts[1], counts  # served during both
        assert not load.failures, (dict(load.outcomes), load.failures[:5])
        assert set(load.outcomes) == {"200"}, dict(load.outcomes)
        print(f"/predict during apply + materialize: {dict(load.outcomes)}, at {counts}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
