"""Run every benchmark and write bench/results.md (figures, machine, date).

`python -m bench` runs all of it; `--only <part>` or `--quick` print JSON instead and leave
the published results alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path

from bench import (
    online_store_bench,
    pipeline_bench,
    retrieval,
    serving_bench,
    spark_frames_bench,
    transform_bench,
)
from featureops.progress import track

OUT = Path(__file__).resolve().parent
# simulator overrides for the large pipeline run (about 25x the demo's sensor rows)
LARGE_PIPELINE = {"n_machines": 500, "n_days": 60}


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = next(
        (
            int(line.split()[1]) // 1024 // 1024
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        0,
    )
    return f"{os.cpu_count()} cores ({cpu}), {mem} GiB RAM, Python {platform.python_version()}, {platform.system()}"


def table(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


PARTS = (
    "retrieval",
    "materialization",
    "online",
    "online_stores",
    "spark_frames",
    "pipeline",
    "transform",
)


def run_part(part: str, quick: bool) -> dict:
    """One benchmark part's results, keyed as in results.json."""
    print(f"{part}:", flush=True)
    if part == "retrieval":
        sizes = [(100_000, 10_000)] if quick else [(1_000_000, 100_000), (10_000_000, 1_000_000)]
        rows = retrieval.run(
            sizes, feast_up_to=1_000_000, dask_up_to=100_000, repeats=1 if quick else 3
        )
        if not quick:
            print("retrieval (Feast file/dask store, small size only):")
            rows += retrieval.run(
                [(100_000, 10_000)], feast_up_to=100_000, dask_up_to=100_000, repeats=3
            )
        return {"retrieval": rows}
    if part == "materialization":
        return {
            "materialization": serving_bench.materialization([1_000] if quick else [1_000, 100_000])
        }
    if part == "online":  # one bench project: in-process reads, then the service under load
        serving = serving_bench.run(
            seconds=2.0 if quick else 5.0,
            rounds=1 if quick else 3,
            connections=(4,) if quick else (4, 16),
        )
        return {
            "online": serving["online"],
            "service": serving["service"],
            "service_ratios": serving["ratios"],
            "service_materialize_loop": serving.get("materialize_loop"),
            "service_load": [serving["load_before"], serving["load_after"]],
        }
    if part == "online_stores":  # SQLite vs a local redis-server, same bench definitions
        size = {"n_entities": 1_000, "repeats": 50} if quick else {"n_entities": 20_000}
        return {"online_stores": online_store_bench.run(**size)}
    if part == "spark_frames":  # Spark local[2] vs DuckDB point-in-time join, same Parquet
        entities, rows = (10_000, 100_000) if quick else (1_000_000, 10_000_000)
        return {"spark_frames": spark_frames_bench.run(entities, rows)}
    if part == "transform":  # quick: the demo and 724k sizes; full: also 10M sensor rows
        return {"transform": transform_bench.run(quick)}
    out = {"pipeline": pipeline_bench.run()}
    if not quick:
        print(f"pipeline, large size {LARGE_PIPELINE}:")
        out["pipeline_large"] = pipeline_bench.run(LARGE_PIPELINE)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes only (a smoke run)")
    parser.add_argument("--only", choices=PARTS, help="run one part")
    parser.add_argument(
        "--update",
        action="store_true",
        help="with --only: replace that part's figures in results.json/.md (dated separately)",
    )
    args = parser.parse_args()
    now = datetime.now(UTC).isoformat(timespec="seconds")
    results: dict = {"machine": machine(), "date": now}
    parts = [args.only] if args.only else list(PARTS)
    for part in track(parts, "benchmarks", total=len(parts)):  # a bar on a terminal only
        results |= run_part(part, args.quick)
    if args.update and args.only and not args.quick:
        published = json.loads((OUT / "results.json").read_text())
        for key, value in results.items():
            if key not in ("machine", "date"):
                published[key] = value
                published.setdefault("updated", {})[key] = f"{now} on {results['machine']}"
        (OUT / "results.json").write_text(json.dumps(published, indent=2) + "\n")
        write_markdown(published)
        print(f"updated {args.only} in {OUT / 'results.md'}")
        return
    if args.quick or args.only:  # partial runs never replace the published results
        print(json.dumps(results, indent=2))
        return
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    write_markdown(results)
    print(f"wrote {OUT / 'results.md'}")


def pipeline_section(p: dict, title: str) -> str:
    stages = [{"stage": k, **v} for k, v in p["stages"].items()]
    return f"""## Pipeline ({title}, {p["sensor_rows"]:,} sensor rows)
Full `dvc repro` from a fresh clone: {p["full_repro_s"]} s. No-op `dvc repro`:
{p["noop_repro_s"]} s. Peak memory of each stage run on its own:

{table(stages, ["stage", "peak_rss_mb", "wall", "exit"])}
"""


def serving_section(r: dict) -> str:
    """`bench.serving_bench.run`: in-process reads, /predict vs `feast serve` (medians)."""
    service = table(
        r["service"],
        [
            "server",
            "test",
            "entities",
            "phase",
            "p50_ms",
            "p99_ms",
            "requests_per_s",
            "server_cpu_ms_per_request",
            "requests",
            "errors",
        ],
    )
    ratios = table(
        r.get("service_ratios", []),
        [
            "test",
            "entities",
            "phase",
            "p99_vs_feast",
            "rps_vs_feast",
            "cpu_ms_per_request",
            "feast_cpu_ms_per_request",
            "p99_vs_idle",
            "rps_vs_idle",
            "errors",
        ],
    )
    return f"""## Online reads and the prediction service (bench project, `{serving_bench.SERVICE}`)
A throw-away demo-shaped project (1,000 entities, 25 features, a python-mode on-demand
view). In process: featureops' reader vs Feast's `get_online_features`:

{table(r["online"], ["what", "entities", "p50_ms", "p99_ms", "n"])}

`POST /predict` of the featureops service vs `feast serve` (both 2 workers, `wrk`), idle and
while Feast's materialize rewrites the store in a loop; medians over rounds:

{service}

Ratios of the same run (featureops / feast; materializing / idle):

{ratios}
"""


def online_stores_section(o: dict | None) -> str:
    """`bench.online_store_bench.run`: SQLite vs Redis, materialize and online reads."""
    if not o:
        return ""
    engines = [e for e in ("sqlite", "redis") if e in o]
    mat = [
        {"engine": e, "run": run, **o[e][key]}
        for e in engines
        for run, key in (("full", "materialize_full"), ("+1 h", "materialize_incremental_1h"))
    ]
    reads = [{"engine": e, **row} for e in engines for row in o[e]["online"]]
    return f"""## Online stores: SQLite vs Redis ({o["entities"]:,} entities, {o["hours"]} h)

{table(mat, ["engine", "run", "seconds", "source_rows", "rows_written", "rows_written_per_s", "full_refresh"])}

{table(reads, ["engine", "what", "entities", "p50_ms", "p99_ms", "n"])}
"""


def spark_frames_section(s: dict | None) -> str:
    """`bench.spark_frames_bench.run`: the frame on Spark local[2] vs DuckDB."""
    if not s:
        return ""
    rows = [{"mode": m, **s[m]} for m in ("as_recorded", "as_known_at") if m in s]
    return f"""## Training frame on Spark ({s["spark_master"]}) vs DuckDB
{s["feature_rows"]:,} feature rows, {s["entities"]:,} entity rows; Spark start-up
{s["spark_start_s"]} s (not included below). `equal`: the same Arrow table as DuckDB's.

{table(rows, ["mode", "duckdb_s", "spark_s", "spark_over_duckdb", "equal", "matched_rows"])}
"""


def write_markdown(r: dict) -> None:
    pipelines = pipeline_section(r["pipeline"], "default demo")
    if "pipeline_large" in r:
        sizes = ", ".join(f"{k} {v}" for k, v in LARGE_PIPELINE.items())
        pipelines += "\n" + pipeline_section(r["pipeline_large"], f"large: {sizes}")
    updated = "".join(
        f"\n`{part}` re-run alone (`python -m bench --only {part} --update`): {when}."
        for part, when in r.get("updated", {}).items()
    ) + ("\n" if r.get("updated") else "")
    text = f"""# Benchmark results

Machine: {r["machine"]}. Date: {r["date"]}. Produced by `make bench` (`python -m bench`);
raw figures in `results.json`. Each ratio is against a baseline measured in the same run.
{updated}
## Training-frame retrieval (point-in-time join, 5 float features, TTL 24 h)
Best of 3 runs (1 for the dask store). `equal`: same rows and values as the hand-written
DuckDB `ASOF LEFT JOIN` over the same Parquet.

{table(r["retrieval"], ["feature_rows", "entity_rows", "method", "seconds", "ratio_vs_duckdb_asof", "rows", "equal"])}

## Materialization into SQLite
featureops' incremental materialize (latest row per entity in DuckDB, then a direct SQLite
writer that stores exactly Feast's serialized rows) against a direct bulk `executemany` of
the same latest row per entity (`ratio`, the floor), the same rows through Feast's proto
conversion and `online_write_batch`, and Feast's stock `FeatureStore.materialize`.

{table(r["materialization"], ["entities", "rows_scanned", "featureops_materialize_s", "direct_bulk_insert_s", "ratio", "entities_per_s", "feast_proto_write_s", "feast_stock_materialize_s", "stock_vs_featureops"])}

{serving_section(r)}
{online_stores_section(r.get("online_stores"))}
{spark_frames_section(r.get("spark_frames"))}
{pipelines}"""
    if "transform" in r:
        text += "\n" + transform_bench.markdown(r["transform"])
    (OUT / "results.md").write_text(text)


if __name__ == "__main__":
    main()
