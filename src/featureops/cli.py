"""The ``featureops`` command line. Heavy libraries (Feast, GE) are imported per command."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from featureops.config import ConfigError, load_params
from featureops.progress import working

app = typer.Typer(
    help="featureops: training frames, lineage and serving on top of DVC + Feast.",
    no_args_is_help=True,
    add_completion=False,
)

ParamsOpt = Annotated[Path, typer.Option("--params", help="params.yaml of the project")]


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _params(path: Path) -> dict:
    try:
        return load_params(path)
    except ConfigError as exc:
        _fail(str(exc))
        raise  # unreachable: _fail exits


def _iso_time(name: str, value: str | None) -> datetime | None:
    """An ISO 8601 time from the command line (naive = UTC); one clear error otherwise."""
    if value is None:
        return None
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        _fail(f"--{name} {value!r} is not an ISO 8601 time such as 2026-01-05T00:00:00Z")
        raise
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _store(params: dict):
    from featureops.frames import FrameError, open_store

    try:
        return open_store(params["feast"]["repo"])
    except FrameError as exc:
        _fail(str(exc))


@app.command()
def frame(
    out: Annotated[Path, typer.Option(help="where to write the frame (Parquet)")],
    service: Annotated[
        str | None, typer.Option(help="feature service (default: train.feature_service)")
    ] = None,
    entities: Annotated[
        Path | None,
        typer.Option(help="entity frame (Parquet/CSV): the service's join keys + event_timestamp"),
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="without --entities: label rows from (ISO 8601)")
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="without --entities: label rows before (ISO 8601)")
    ] = None,
    as_known_at: Annotated[
        bool | None,
        typer.Option(
            "--as-known-at/--as-recorded",
            help="exclude feature rows created after each entity time (default: train.as_known_at)",
            show_default=False,
        ),
    ] = None,
    params_path: ParamsOpt = Path("params.yaml"),
) -> None:
    """Write a point-in-time-correct training frame and its lineage manifest.

    Without --entities the entity rows are the configured label's rows in [start, end).
    """
    from featureops.config import Paths
    from featureops.frames import FrameError, compile_plan
    from featureops.labels import LabelError, LabelSpec, label_rows
    from featureops.training_frames import manifest_path, read_entity_frame, write_training_frame

    params = _params(params_path)
    bounds = {name: _iso_time(name, value) for name, value in (("start", start), ("end", end))}
    service = service or params.get("train", {}).get("feature_service")
    if not service:
        _fail("no --service given and params.yaml has no train.feature_service")
    known_at = (
        bool(params.get("train", {}).get("as_known_at")) if as_known_at is None else as_known_at
    )
    store = _store(params)
    try:
        plan = compile_plan(store, service)
        if entities is not None:
            entity_df = read_entity_frame(entities, plan.key_types)
        else:
            label = LabelSpec.from_params(params)
            entity_df = label_rows(
                label, Paths.from_params(params), plan.join_keys, bounds["start"], bounds["end"]
            )
        typer.echo(f"retrieving {len(entity_df):,} entity rows from {service} ...", err=True)
        started = datetime.now()
        with working(f"point-in-time join of {len(entity_df):,} entity rows"):
            df, manifest = write_training_frame(
                store, service, entity_df, out, as_known_at=known_at, params=params, plan=plan
            )
    except (FrameError, LabelError, ConfigError) as exc:
        _fail(str(exc))
    seconds = (datetime.now() - started).total_seconds()
    typer.echo(
        f"wrote {out} ({len(df):,} rows x {df.shape[1]} columns) in {seconds:.1f}s; "
        f"manifest {manifest_path(out)}; sha256 {manifest['frame']['sha256'][:16]}"
    )


@app.command()
def reproduce(
    manifest: Annotated[Path, typer.Argument(help="a frame's .manifest.json")],
    params_path: ParamsOpt = Path("params.yaml"),
) -> None:
    """Rebuild a frame from its manifest's data versions and compare the sha256."""
    from featureops.frames import FrameError
    from featureops.training_frames import reproduce as run_reproduce

    store = _store(_params(params_path))
    try:
        with working(f"rebuilding the frame of {manifest}"):
            result = run_reproduce(store, manifest)
    except (FrameError, FileNotFoundError) as exc:
        _fail(str(exc))
    typer.echo(json.dumps(result.as_dict(), indent=2))
    if not result.match:
        typer.secho("MISMATCH: the rebuilt frame differs from the manifest", fg="red", err=True)
        raise typer.Exit(code=1)
    typer.secho("OK: identical sha256", fg="green", err=True)


model_app = typer.Typer(help="Model registry: register, promote, roll back, list.")
app.add_typer(model_app, name="model")


def _registry(params_path: Path) -> tuple[dict, Path, Path]:
    from featureops.config import Paths

    params = _params(params_path)
    paths = Paths.from_params(params)
    return params, paths.candidate, paths.registry


@model_app.command("register")
def model_register(
    promote: Annotated[bool, typer.Option("--promote", help="also put it in production")] = False,
    params_path: ParamsOpt = Path("params.yaml"),
) -> None:
    """Register the train stage's candidate as the next version."""
    from featureops import registry

    _, candidate, reg = _registry(params_path)
    try:
        version = registry.register(candidate, reg)
        typer.echo(f"registered {version}")
        if promote:
            registry.promote(reg, version)
            typer.echo(f"{version} is in production")
    except (registry.RegistryError, registry.ModelIntegrityError) as exc:
        _fail(str(exc))


@model_app.command("promote")
def model_promote(version: str, params_path: ParamsOpt = Path("params.yaml")) -> None:
    """Put a registered version in production."""
    from featureops import registry

    _, _, reg = _registry(params_path)
    try:
        registry.promote(reg, version)
    except (registry.RegistryError, registry.ModelIntegrityError) as exc:
        _fail(str(exc))
    typer.echo(f"{version} is in production")


@model_app.command("rollback")
def model_rollback(params_path: ParamsOpt = Path("params.yaml")) -> None:
    """Return production to the previously promoted version."""
    from featureops import registry

    _, _, reg = _registry(params_path)
    try:
        pointer = registry.rollback(reg)
    except (registry.RegistryError, registry.ModelIntegrityError) as exc:
        _fail(str(exc))
    typer.echo(f"{pointer['version']} is in production")


@model_app.command("list")
def model_list(params_path: ParamsOpt = Path("params.yaml")) -> None:
    """Registered versions; the production one is marked with *."""
    from featureops import registry

    _, _, reg = _registry(params_path)
    found = registry.versions(reg)
    if not found:  # stdout, and no leading "*": `make serve` greps '^\*' for production
        typer.echo("no models registered yet: run `dvc repro` then `featureops model register`")
        return
    current = registry.production_version(reg)
    for version in found:
        manifest = registry.read_manifest(reg / version)
        mark = "*" if version == current else " "
        typer.echo(
            f"{mark} {version}  sha256 {manifest['sha256'][:12]}  {manifest.get('registered_at')}"
        )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="default: serving.host")] = None,
    port: Annotated[int | None, typer.Option(help="default: serving.port")] = None,
    workers: Annotated[int | None, typer.Option(help="default: serving.workers (2)")] = None,
    params_path: ParamsOpt = Path("params.yaml"),
) -> None:
    """Start the prediction service (several worker processes sharing nothing mutable)."""
    from featureops import registry
    from featureops.config import Paths
    from featureops.serving import run

    params = _params(params_path)  # one clear line if the params file is missing or invalid
    try:  # refuse a missing or tampered production model before starting any worker
        registry.load_production(Paths.from_params(params).registry)
    except (registry.RegistryError, registry.ModelIntegrityError, FileNotFoundError) as exc:
        _fail(str(exc))
    run(params_path, host, port, workers)


@app.command()
def parity(
    log_dir: Annotated[Path | None, typer.Option(help="default: paths.feature_log")] = None,
    tolerance: Annotated[float, typer.Option(help="absolute tolerance, numeric")] = 1e-9,
    params_path: ParamsOpt = Path("params.yaml"),
) -> None:
    """Recompute logged served feature vectors offline; exit 1 on any difference."""
    from featureops.config import Paths
    from featureops.feature_log import read_feature_log
    from featureops.parity import check_parity

    params = _params(params_path)
    log_dir = log_dir or Paths.from_params(params).feature_log
    try:
        log = read_feature_log(log_dir)
    except FileNotFoundError as exc:
        _fail(str(exc))
    report = check_parity(_store(params), log, tolerance)
    typer.echo(json.dumps(report, indent=2, default=str))
    if not report["ok"]:
        typer.secho("PARITY FAILED: served features differ from offline", fg="red", err=True)
        raise typer.Exit(code=1)
    typer.secho(f"parity OK on {report['rows']} served rows", fg="green", err=True)


@app.command()
def retrain(
    repro: Annotated[
        bool, typer.Option("--repro/--no-repro", help="run `dvc repro evaluate` first")
    ] = True,
    params_path: ParamsOpt = Path("params.yaml"),
) -> None:
    """Retrain on the newest data, compare with production on the same window, promote if better."""
    import subprocess

    import pandas as pd

    from featureops.config import Paths
    from featureops.labels import LabelSpec
    from featureops.retraining import decide, evaluation_window

    if repro:
        proc = subprocess.run(["dvc", "repro", "evaluate"], check=False)
        if proc.returncode != 0:
            _fail("`dvc repro evaluate` failed")
    params = _params(params_path)
    paths = Paths.from_params(params)
    label = LabelSpec.from_params(params)
    frame = pd.read_parquet(paths.frames / "train.parquet")
    window = evaluation_window(frame, params["train"], label.horizon)
    decision = decide(
        paths.registry,
        paths.candidate,
        window,
        label.name,
        float(params["monitor"]["min_improvement"]),
    )
    typer.echo(json.dumps(decision, indent=2, default=str))
    verdict = f"promoted {decision['version']}" if decision["promoted"] else "kept production"
    typer.secho(
        f"{verdict}: {decision['reason']}",
        fg="green" if decision["promoted"] else "yellow",
        err=True,
    )


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
