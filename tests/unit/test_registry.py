"""Model registry: integrity, the frame manifest kept beside each model, atomic manifests and
pointer, a lock between processes, and the append-only decisions log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from featureops import io as featureops_io
from featureops import registry, retraining
from featureops.training import train_model

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def frame_manifest(tmp_path: Path, sha: str = "f" * 64) -> Path:
    path = tmp_path / "frames" / "train.manifest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"kind": "training_frame", "frame": {"sha256": sha}}, indent=1))
    return path


def candidate(tmp_path: Path, model: object = "model", **extra: object) -> Path:
    directory = tmp_path / "candidate"
    registry.save_model(model, directory, {"threshold": 0.5, **extra})
    return directory


def test_the_frame_manifest_is_copied_beside_the_model_byte_for_byte(tmp_path: Path) -> None:
    source = frame_manifest(tmp_path)
    directory = candidate(tmp_path, frame_manifest=str(source), frame_sha256="f" * 64)
    manifest = registry.read_manifest(directory)
    assert manifest["frame_manifest_copy"] == registry.FRAME_MANIFEST_FILE
    assert (directory / registry.FRAME_MANIFEST_FILE).read_bytes() == source.read_bytes()
    version = registry.register(directory, tmp_path / "registry")
    kept = tmp_path / "registry" / version / registry.FRAME_MANIFEST_FILE
    source.write_text("{}")  # the next `dvc repro` overwrites the frame's manifest ...
    assert json.loads(kept.read_text())["frame"]["sha256"] == "f" * 64  # ... not the copy


def test_a_frame_manifest_of_another_frame_is_not_copied_and_a_stale_copy_goes(
    tmp_path: Path,
) -> None:
    source = frame_manifest(tmp_path)
    directory = candidate(tmp_path, frame_manifest=str(source), frame_sha256="f" * 64)
    directory = candidate(tmp_path, frame_manifest=str(source), frame_sha256="0" * 64)
    assert "frame_manifest_copy" not in registry.read_manifest(directory)
    assert not (directory / registry.FRAME_MANIFEST_FILE).exists()
    directory = candidate(tmp_path, frame_manifest=str(tmp_path / "missing.json"))
    assert "frame_manifest_copy" not in registry.read_manifest(directory)


def test_the_frame_manifest_can_be_given_or_found_where_a_stage_stages_it(
    tmp_path: Path,
) -> None:
    content = {"kind": "training_frame", "frame": {"sha256": "f" * 64}}
    directory = tmp_path / "candidate"
    registry.save_model("m", directory, {"frame_sha256": "f" * 64}, frame_manifest=content)
    assert json.loads((directory / registry.FRAME_MANIFEST_FILE).read_text()) == content
    staging = getattr(featureops_io, "staging_container", None)
    if staging is None:
        return
    final = tmp_path / "frames" / "train.manifest.json"  # still the previous version
    final.parent.mkdir()
    final.write_text(json.dumps({"frame": {"sha256": "0" * 64}}))
    staged = staging(final.parent) / final.parent.name / final.name
    staged.parent.mkdir(parents=True)
    staged.write_text(json.dumps(content))
    registry.save_model("m", directory, {"frame_manifest": str(final), "frame_sha256": "f" * 64})
    assert (directory / registry.FRAME_MANIFEST_FILE).read_bytes() == staged.read_bytes()


def test_register_promote_rollback_and_integrity(tmp_path: Path) -> None:
    reg = tmp_path / "registry"
    v1 = registry.register(candidate(tmp_path, "first"), reg)
    v2 = registry.register(candidate(tmp_path, "second"), reg)
    assert (v1, v2) == ("v1", "v2") and registry.versions(reg) == ["v1", "v2"]
    assert not [p for p in reg.iterdir() if p.name.endswith(".tmp")]
    registry.promote(reg, v1)
    registry.promote(reg, v2)
    assert registry.load_production(reg)[0] == "second"
    assert registry.rollback(reg)["version"] == "v1"
    with pytest.raises(registry.RegistryError, match="unknown model version"):
        registry.promote(reg, "v9")
    (reg / "v2" / registry.MODEL_FILE).write_bytes(b"tampered")
    with pytest.raises(registry.ModelIntegrityError, match="refusing"):
        registry.promote(reg, "v2")
    assert registry.production_version(reg) == "v1"


def test_a_failed_manifest_write_leaves_the_previous_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = tmp_path / "registry"
    version = registry.register(candidate(tmp_path), reg)
    before = (reg / version / registry.MANIFEST_FILE).read_bytes()

    def crash(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        registry.update_manifest(reg / version, {"promotion": {"promoted": True}})
    assert (reg / version / registry.MANIFEST_FILE).read_bytes() == before
    assert sorted(p.name for p in (reg / version).iterdir()) == sorted(
        [registry.MANIFEST_FILE, registry.MODEL_FILE]
    )


LOCK_PROBE = """
import fcntl, sys
with open(sys.argv[1], "a") as fh:
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit(3)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file locks")
def test_the_registry_lock_is_reentrant_here_and_exclusive_between_processes(
    tmp_path: Path,
) -> None:
    reg = tmp_path / "registry"
    probe = [sys.executable, "-c", LOCK_PROBE, str(reg / registry.LOCK_FILE)]
    with registry.locked(reg):
        assert registry.register(candidate(tmp_path), reg) == "v1"  # takes the lock again
        assert subprocess.run(probe, check=False).returncode == 3
    assert subprocess.run(probe, check=False).returncode == 0


def test_decisions_are_appended_never_rewritten_and_fsynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    reg = tmp_path / "registry"
    retraining.append_decision(reg, {"n": 1, "promoted": True})
    log = reg / retraining.DECISIONS_FILE
    first = log.read_bytes()
    inode = log.stat().st_ino
    retraining.append_decision(reg, {"n": 2, "promoted": False})
    assert log.read_bytes().startswith(first) and log.stat().st_ino == inode  # same file
    assert [d["n"] for d in retraining.read_decisions(reg)] == [1, 2]
    assert len(synced) >= 2


def test_a_torn_last_line_is_skipped_and_the_next_decision_starts_a_new_line(
    tmp_path: Path,
) -> None:
    reg = tmp_path / "registry"
    retraining.append_decision(reg, {"n": 1})
    with (reg / retraining.DECISIONS_FILE).open("a") as fh:
        fh.write('{"n": 2, "promo')  # a crash in the middle of a write
    assert [d["n"] for d in retraining.read_decisions(reg)] == [1]
    retraining.append_decision(reg, {"n": 3})
    assert [d["n"] for d in retraining.read_decisions(reg)] == [1, 3]
    assert retraining.read_decisions(tmp_path / "nowhere") == []


def synthetic(rng: np.random.Generator, n: int) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "event_timestamp": T0 + pd.to_timedelta(np.arange(n), unit="min"),
            "x": rng.normal(size=n),
            "noise": rng.normal(size=n),
        }
    )
    df["label"] = (rng.random(n) < 1 / (1 + np.exp(-(3 * df["x"] - 2)))).astype(int)
    return df


def test_a_promotion_is_in_the_manifest_pointer_and_log(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    reg, cand = tmp_path / "registry", tmp_path / "candidate"
    model = train_model(synthetic(rng, 2_000), "label", ["x", "noise"], {"C": 1.0})
    source = frame_manifest(tmp_path)
    registry.save_model(
        model, cand, {"threshold": 0.5, "frame_manifest": str(source), "frame_sha256": "f" * 64}
    )
    decision = retraining.decide(reg, cand, synthetic(rng, 1_000), "label", 0.005)
    assert decision["promoted"] and decision["version"] == "v1"
    manifest = registry.read_manifest(reg / "v1")
    assert manifest["promotion"]["reason"] == "no production model"
    assert (reg / "v1" / registry.FRAME_MANIFEST_FILE).exists()
    assert registry.production_version(reg) == "v1"
    assert retraining.read_decisions(reg)[0]["version"] == "v1"
