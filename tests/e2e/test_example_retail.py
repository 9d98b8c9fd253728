"""The second example (retail card fraud) through the whole platform, configuration only.

A copy of this project gets the example's params.yaml and feature_repo/, generated drops and
a label file, and the demo's simulate stage removed; then every user-facing step runs:
`dvc repro`, an ad-hoc frame and its reproduction, model registration, /predict in-process,
parity. The platform code (src/, pipelines/) of the copy must be byte-identical to ours.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.example

BIN = Path(sys.executable).parent
EXAMPLE = REPO_ROOT / "examples" / "retail"
GENERATOR = EXAMPLE / "generate.py"
SERVICE = "fraud_model_v1"
PLATFORM_DIRS = ("src", "pipelines")


# ---------------------------------------------------------------- helpers: processes


def run(cmd: list[str | Path], cwd: Path) -> subprocess.CompletedProcess:
    """Run a command with the venv first on PATH; on failure show its output and fail."""
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "TQDM_DISABLE": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    env.pop("FEATUREOPS_API_KEY", None)
    try:
        return subprocess.run(
            [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, check=True
        )
    except subprocess.CalledProcessError as exc:
        print(f"$ {' '.join(map(str, cmd))}  (exit {exc.returncode})")
        print("--- stdout ---\n" + (exc.stdout or ""))
        print("--- stderr ---\n" + (exc.stderr or ""))
        pytest.fail(f"{cmd[0]} {cmd[1] if len(cmd) > 1 else ''} failed; output above")


def featureops(root: Path, *args: str | Path) -> subprocess.CompletedProcess:
    return run([BIN / "featureops", *args], root)


def dvc(root: Path, *args: str) -> subprocess.CompletedProcess:
    return run([BIN / "dvc", *args], root)


def git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return run(["git", *args], root)


# ---------------------------------------------------------------- helpers: the project


def project_files() -> list[str]:
    """The project's files as git sees them (tracked + new, not ignored); no data/ or .venv/."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return [
        f
        for f in out
        if not f.startswith(("data/", ".venv/")) and "__pycache__" not in f
        if (REPO_ROOT / f).is_file()
    ]


def copy_project(root: Path) -> None:
    for rel in project_files():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / rel, target)


def swap_in_example(root: Path) -> dict:
    """The example's params.yaml and feature_repo/ replace the demo's; return the params."""
    shutil.copy2(EXAMPLE / "params.yaml", root / "params.yaml")
    shutil.rmtree(root / "feature_repo")
    shutil.copytree(
        EXAMPLE / "feature_repo",
        root / "feature_repo",
        ignore=shutil.ignore_patterns("__pycache__", "data"),
    )
    return yaml.safe_load((root / "params.yaml").read_text())


def init_git(root: Path) -> None:
    git(root, "init", "-q")


def turn_off_demo(root: Path) -> None:
    """The demo's simulator would write the landing zone: the user's data goes there."""
    dvc(root, "remove", "simulate")
    assert "simulate:" not in (root / "dvc.yaml").read_text()


def generate_data(root: Path, params: dict, seed: int = 7) -> dict[str, str]:
    """Drops into paths.landing and the label file at label.file.path."""
    proc = run(
        [
            sys.executable,
            GENERATOR,
            "--out",
            root / params["paths"]["landing"],
            "--labels",
            root / params["label"]["file"]["path"],
            "--seed",
            str(seed),
        ],
        root,
    )
    return dict(kv.split("=", 1) for kv in proc.stdout.split())


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under a folder: sha256 and modification time (ns)."""
    return {
        p.relative_to(folder).as_posix(): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mtime_ns,
        )
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def commit(root: Path, message: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-qm", message, "--allow-empty")


def dvc_repro(root: Path) -> str:
    return dvc(root, "repro").stdout


def write_entity_file(root: Path, params: dict, rows: int = 20) -> Path:
    """A small entity frame: (customer_id, merchant_id, event_timestamp) of labelled rows."""
    spec = params["label"]["file"]
    labels = pd.read_csv(root / spec["path"], dtype={k: "string" for k in spec["keys"]})
    labels = labels[labels[spec["timestamp"]] >= params["train"]["frame_start"]]
    picked = labels.iloc[:: max(len(labels) // rows, 1)].head(rows)
    entities = pd.DataFrame(
        {
            **{k: picked[k].astype(str).to_numpy() for k in spec["keys"]},
            "event_timestamp": pd.to_datetime(picked[spec["timestamp"]], utc=True)
            .astype("datetime64[us, UTC]")
            .to_numpy(),
        }
    )
    path = root / "data" / "adhoc" / "entities.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    entities.to_parquet(path, index=False, coerce_timestamps="us", allow_truncated_timestamps=True)
    return path


def build_frame(root: Path, entities: Path) -> Path:
    """`featureops frame` over the entity file; return its manifest."""
    out = root / "data" / "adhoc" / "f.parquet"
    featureops(
        root,
        "frame",
        "--out",
        out.relative_to(root),
        "--entities",
        entities.relative_to(root),
        "--service",
        SERVICE,
    )
    manifest = out.with_name("f.manifest.json")
    assert out.exists() and manifest.exists()
    frame = pd.read_parquet(out)
    assert len(frame) == len(pd.read_parquet(entities))
    return manifest


def reproduce_frame(root: Path, manifest: Path) -> dict:
    return json.loads(featureops(root, "reproduce", manifest.relative_to(root)).stdout)


def register_model(root: Path) -> str:
    return featureops(root, "model", "register", "--promote").stdout


def pairs_to_score(root: Path, params: dict, n: int = 3) -> list[tuple[str, str]]:
    """(customer, merchant) of recent transactions whose served features are all present.

    The customer's latest transaction must be this pair's (the online store holds each
    entity's latest row) and have a 7-day std (null below two transactions).
    """
    features = root / params["paths"]["features"]
    spend = pd.read_parquet(features / "customer_spend.parquet")
    pair = pd.read_parquet(features / "customer_merchant.parquet")
    latest = spend.sort_values("event_timestamp").groupby("customer_id").tail(1)
    latest = latest[latest["amount_std_7d"].notna()]
    joined = latest.merge(pair, on=["customer_id", "event_timestamp"], how="inner")
    joined = joined.sort_values("event_timestamp").tail(n)
    assert len(joined) == n, "not enough recent transactions to score"
    return [(str(c), str(m)) for c, m in zip(joined.customer_id, joined.merchant_id, strict=True)]


def predict(root: Path, pairs: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch) -> dict:
    """POST /predict in-process (TestClient); also check a wrongly typed request is a 422."""
    from fastapi.testclient import TestClient

    from featureops.serving import create_app

    monkeypatch.chdir(root)
    monkeypatch.delenv("FEATUREOPS_API_KEY", raising=False)
    body = {
        "entities": {
            "customer_id": [c for c, _ in pairs],
            "merchant_id": [m for _, m in pairs],
        }
    }
    with TestClient(create_app(root / "params.yaml", root=root)) as client:
        ok = client.post("/predict", json=body)
        bad = client.post(
            "/predict", json={"entities": {"customer_id": [42], "merchant_id": ["M017"]}}
        )
    assert ok.status_code == 200, ok.text
    assert bad.status_code == 422, bad.text
    assert "customer_id" in bad.text, bad.text
    return ok.json()


def check_parity(root: Path) -> dict:
    return json.loads(featureops(root, "parity").stdout)


def assert_platform_code_unchanged(root: Path) -> None:
    """src/ and pipelines/ of the copy hold exactly our files, byte for byte."""
    ours = {f for f in project_files() if f.startswith(tuple(d + "/" for d in PLATFORM_DIRS))}
    theirs = {
        p.relative_to(root).as_posix()
        for d in PLATFORM_DIRS
        for p in (root / d).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and ".egg-info" not in p.as_posix()
    }
    assert theirs == ours, sorted(theirs ^ ours)
    changed = [f for f in sorted(ours) if (root / f).read_bytes() != (REPO_ROOT / f).read_bytes()]
    assert not changed, f"platform files differ: {changed}"


# ---------------------------------------------------------------- tests


@pytest.mark.e2e
@pytest.mark.timeout(1200)
def test_retail_example_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "retail"
    root.mkdir()
    copy_project(root)
    params = swap_in_example(root)
    init_git(root)
    turn_off_demo(root)
    counts = generate_data(root, params)
    assert int(counts["transactions"]) > 1000
    commit(root, "retail example: config, definitions")
    landing = root / params["paths"]["landing"]
    labels_dir = root / params["paths"]["labels"]
    users_files = {"landing": snapshot(landing), "labels": snapshot(labels_dir)}

    dvc_repro(root)
    commit(root, "retail example: first repro")
    metrics = root / params["paths"]["metrics"]
    ingest = json.loads((metrics / "ingest.json").read_text())
    assert ingest["transactions"]["quarantined"] > 0  # the malformed lines
    for name in params["features"]:
        assert (root / params["paths"]["features"] / f"{name}.parquet").exists(), name

    manifest = build_frame(root, write_entity_file(root, params))
    reproduced = reproduce_frame(root, manifest)
    assert reproduced["match"] is True, reproduced

    register_model(root)
    pairs = pairs_to_score(root, params)
    response = predict(root, pairs, monkeypatch)
    predictions = response["predictions"]
    assert len(predictions) == len(pairs)
    for p in predictions:
        assert p["status"] == "ok", p
        assert 0.0 <= p["probability"] <= 1.0, p

    parity = check_parity(root)
    assert parity["ok"] is True and parity["rows"] >= len(pairs), parity

    assert_platform_code_unchanged(root)
    # No stage wrote, reverted or re-created a file in the user's folders.
    assert {"landing": snapshot(landing), "labels": snapshot(labels_dir)} == users_files
    # A new drop of the user's survives a repro and is ingested.
    day = sorted((landing / "transactions").glob("*.csv"))[-1]
    extra = day.with_name("2026-03-21-late.csv")
    extra.write_text(day.read_text().splitlines()[0] + "\n")  # header only: no rows
    dvc_repro(root)
    assert extra.exists() and extra.read_text().count("\n") == 1
    evaluation = json.loads((metrics / "evaluate.json").read_text())
    model, baseline = evaluation["model"], evaluation["baseline_prevalence"]
    assert model["pr_auc"] > baseline["pr_auc"], evaluation


def _generate(out: Path, seed: int) -> dict[str, str]:
    proc = run([sys.executable, GENERATOR, "--out", out / "landing", "--seed", str(seed)], out)
    return dict(kv.split("=", 1) for kv in proc.stdout.split())


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_retail_generator_is_deterministic(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for d in (a, b, c):
        d.mkdir()
    counts = _generate(a, seed=7)
    _generate(b, seed=7)
    _generate(c, seed=8)
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)

    # The label file sits outside the landing zone; one row per transaction.
    labels_path = a / "labels" / "chargebacks.csv"
    assert labels_path.exists() and not (a / "landing" / "labels").exists()
    labels = pd.read_csv(labels_path, dtype={"customer_id": "string", "merchant_id": "string"})
    assert list(labels.columns) == ["customer_id", "merchant_id", "ts", "is_fraud"]
    assert 2_000 <= len(labels) <= 30_000
    assert len(labels) == int(counts["transactions"])
    assert 0.03 <= labels["is_fraud"].mean() <= 0.08
    assert not labels.duplicated(["customer_id", "ts"]).any()  # label rows join unambiguously
    assert labels["customer_id"].str.fullmatch(r"C\d{5}").all()
    assert labels["merchant_id"].str.fullmatch(r"M\d{3}").all()
    assert labels["ts"].str.endswith("Z").all()

    # Defects: present, and well under 5% of the transaction lines.
    lines = [
        line
        for f in sorted((a / "landing" / "transactions").glob("*.csv"))
        for line in f.read_text().splitlines()[1:]
    ]
    assert len(sorted((a / "landing" / "transactions").glob("*.csv"))) == 21
    malformed = [line for line in lines if line.count(",") != 5]
    na_amount = [line for line in lines if line.count(",") == 5 and line.split(",")[4] == "NA"]
    duplicates = len(lines) - len(set(lines))
    assert malformed and na_amount and duplicates > 0
    assert (len(malformed) + len(na_amount) + duplicates) / len(lines) < 0.02
    customers = pd.read_csv(a / "landing" / "customers" / "customers.csv")
    assert list(customers.columns) == ["customer_id", "segment", "signup_date"]
    assert set(customers["segment"]) <= {"standard", "premium", "student", "smb"}
