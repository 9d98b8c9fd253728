"""An S3-compatible DVC remote (dvc-s3) against a real local S3 server (moto, loopback only).

A copy of the built demo (tests/project.py: reproduced and committed) is ``dvc push``ed to
``s3://<bucket>/dvc`` on a moto server started in this process on 127.0.0.1; a ``git clone`` with no data and no cache pulls
it back, then, after its workspace data and cache are deleted again, ``featureops reproduce``
rebuilds the training frame by md5 from the S3 remote with the recorded sha256. Credentials
are given the two documented ways: ``dvc remote modify --local`` in the first project,
``AWS_*`` environment variables in the clone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.project import BuiltDemo, copy_project

pytestmark = [pytest.mark.s3, pytest.mark.integration]

BIN = Path(sys.executable).parent
BUCKET = "featureops-dvc"
PREFIX = "dvc"
KEY_ID = "featureops-test-key"  # moto accepts any credentials
SECRET = "featureops-test-secret"
FRAME_MANIFEST = "data/frames/train.manifest.json"
REMOTE = "s3remote"
# No ~/.aws files (botocore ignores a missing file; it rejects /dev/null), no instance-metadata
# lookups: the only AWS settings are the endpoint and credentials this test gives.
NO_AWS_DEFAULTS = {
    "AWS_CONFIG_FILE": "/nonexistent/featureops-test/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/featureops-test/aws-credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A subprocess environment that can reach nothing but the loopback server."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_") and k.lower() not in ("http_proxy", "https_proxy")
    }
    return {
        **env,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "TQDM_DISABLE": "1",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        **NO_AWS_DEFAULTS,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
        **(extra or {}),
    }


def run(
    cmd: list[str], cwd: Path, extra_env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=_env(extra_env), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def dvc(root: Path, *args: str, extra_env: dict[str, str] | None = None) -> str:
    return run([str(BIN / "dvc"), *args], root, extra_env).stdout


def commit(root: Path, message: str) -> None:
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", message], root)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on a free loopback port, with an empty bucket."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket=BUCKET)
    try:
        yield endpoint
    finally:
        server.stop()


def bucket_keys(endpoint: str) -> list[str]:
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
    )
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{PREFIX}/")
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


@pytest.fixture(scope="module")
def pushed(
    s3_endpoint: str, built_demo: BuiltDemo, tmp_path_factory: pytest.TempPathFactory
) -> dict:
    """A copy of the built demo (reproduced, committed) -> S3 remote -> ``dvc push``."""
    base = tmp_path_factory.mktemp("s3remote")
    root = copy_project(built_demo, base / "project")
    # The commands the README gives for an S3-compatible server (MinIO, Ceph, AWS).
    dvc(root, "remote", "add", "-f", "-d", REMOTE, f"s3://{BUCKET}/{PREFIX}")
    dvc(root, "remote", "modify", REMOTE, "endpointurl", s3_endpoint)
    dvc(root, "remote", "modify", "--local", REMOTE, "access_key_id", KEY_ID)
    dvc(root, "remote", "modify", "--local", REMOTE, "secret_access_key", SECRET)
    commit(root, "s3 remote")
    dvc(root, "push")
    kept = base / "kept" / "train.manifest.json"  # the bare JSON, without its entity frame
    kept.parent.mkdir()
    shutil.copy2(root / FRAME_MANIFEST, kept)
    return {
        "base": base,
        "root": root,
        "kept": kept,
        "manifest": json.loads(kept.read_text()),
        "endpoint": s3_endpoint,
    }


def test_the_secrets_stay_out_of_git_and_the_remote_is_the_default(pushed: dict) -> None:
    root = pushed["root"]
    tracked = (root / ".dvc" / "config").read_text()
    assert f"remote = {REMOTE}" in tracked and f"s3://{BUCKET}/{PREFIX}" in tracked
    assert pushed["endpoint"] in tracked
    assert SECRET not in tracked and KEY_ID not in tracked
    assert SECRET in (root / ".dvc" / "config.local").read_text()
    ignored = run(["git", "check-ignore", "-q", ".dvc/config.local"], root, check=False)
    assert ignored.returncode == 0  # DVC's own .dvc/.gitignore keeps it out of commits


def test_push_stores_every_input_of_the_frame_in_the_bucket(pushed: dict) -> None:
    keys = set(bucket_keys(pushed["endpoint"]))
    manifest = pushed["manifest"]
    md5s = [info["md5"] for info in manifest["data"].values()]
    md5s.append(manifest["entity_frame"]["md5"])
    for md5 in md5s:
        assert f"{PREFIX}/files/md5/{md5[:2]}/{md5[2:]}" in keys, md5


@pytest.fixture(scope="module")
def clone(pushed: dict) -> Path:
    """A fresh ``git clone`` (no data, no cache, no config.local) that pulled from S3."""
    target = pushed["base"] / "clone"
    run(["git", "clone", "-q", str(pushed["root"]), str(target)], pushed["base"])
    assert not (target / ".dvc" / "config.local").exists()
    assert not (target / "data").exists()
    return target


def test_a_fresh_clone_pulls_the_data_and_reproduces_the_frame_from_s3(
    pushed: dict, clone: Path
) -> None:
    # The clone has the endpoint (committed .dvc/config) but not config.local: env credentials.
    creds = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET}
    dvc(clone, "pull", extra_env=creds)
    recorded = pushed["manifest"]
    assert json.loads((clone / FRAME_MANIFEST).read_text()) == recorded
    for rel, info in recorded["data"].items():
        assert hashlib.md5((clone / rel).read_bytes()).hexdigest() == info["md5"], rel

    # The Feast registry is machine-local (cache: false, never pushed): rebuilt per clone.
    dvc(clone, "repro", "-s", "feast_apply", extra_env=creds)
    # Nothing left locally but the definitions: every byte must come from the S3 remote.
    shutil.rmtree(clone / ".dvc" / "cache")
    for rel in (*recorded["data"], FRAME_MANIFEST):
        (clone / rel).unlink()
    (clone / "data" / "frames" / recorded["entity_frame"]["path"]).unlink(missing_ok=True)

    proc = run([str(BIN / "featureops"), "reproduce", str(pushed["kept"])], clone, extra_env=creds)
    result = json.loads(proc.stdout)
    assert result["match"] is True
    assert result["actual_sha256"] == recorded["frame"]["sha256"]
    for what in (*recorded["data"], "entity_frame"):
        assert result["data_sources"][what] == f"dvc at remote {REMOTE!r}", what


@pytest.fixture
def no_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process sees no AWS settings but the project's DVC config (in-process DVC)."""
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    for key, value in NO_AWS_DEFAULTS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def test_locate_data_names_the_s3_remote_when_a_version_is_not_there(
    pushed: dict, no_aws_env: None
) -> None:
    from featureops.lineage import DataNotFoundError, locate_data

    md5 = pushed["manifest"]["data"]["data/features/sensor_stats.parquet"]["md5"]
    with pytest.raises(
        DataNotFoundError, match=rf"nor on remote '{REMOTE}' \(s3://{BUCKET}/{PREFIX}\)"
    ):
        locate_data(pushed["root"], "0" * 32, what="missing.parquet")
    # the project's credentials are in its .dvc/config.local: a real object is fetched
    shutil.rmtree(pushed["root"] / ".dvc" / "cache")
    found, origin = locate_data(pushed["root"], md5)
    assert (
        origin == f"dvc at remote {REMOTE!r}" and hashlib.md5(found.read_bytes()).hexdigest() == md5
    )


def test_missing_credentials_are_reported_with_the_remote(
    pushed: dict, clone: Path, no_aws_env: None
) -> None:
    from featureops.lineage import DataNotFoundError, locate_data

    md5 = pushed["manifest"]["data"]["data/features/sensor_stats.parquet"]["md5"]
    shutil.rmtree(clone / ".dvc" / "cache", ignore_errors=True)
    with pytest.raises(DataNotFoundError, match=r"s3://.*failed: Unable to locate credentials"):
        locate_data(clone, md5, what="sensor_stats.parquet")  # no config.local, no AWS_* env
