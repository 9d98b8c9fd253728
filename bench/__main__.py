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

from bench import pipeline_bench, retrieval, serving_bench, transform_bench

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


PARTS = ("retrieval", "materialization", "online", "pipeline", "transform")


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
    if part == "online":
        return {
            "online": serving_bench.online_latency("feature_repo"),
            "service": serving_bench.service(),
        }
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
    args = parser.parse_args()
    results: dict = {"machine": machine(), "date": datetime.now(UTC).isoformat(timespec="seconds")}
    for part in [args.only] if args.only else PARTS:
        results |= run_part(part, args.quick)
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


def write_markdown(r: dict) -> None:
    pipelines = pipeline_section(r["pipeline"], "default demo")
    if "pipeline_large" in r:
        sizes = ", ".join(f"{k} {v}" for k, v in LARGE_PIPELINE.items())
        pipelines += "\n" + pipeline_section(r["pipeline_large"], f"large: {sizes}")
    text = f"""# Benchmark results

Machine: {r["machine"]}. Date: {r["date"]}. Produced by `make bench` (`python -m bench`);
raw figures in `results.json`. Each ratio is against a baseline measured in the same run.

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

## Online reads and the prediction service (demo store, feature service `failure_model_v1`)

{table(r["online"] + r["service"], ["what", "entities", "p50_ms", "p99_ms", "n", "requests_per_s"])}

{pipelines}"""
    if "transform" in r:
        text += "\n" + transform_bench.markdown(r["transform"])
    (OUT / "results.md").write_text(text)


if __name__ == "__main__":
    main()
