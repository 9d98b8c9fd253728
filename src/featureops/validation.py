"""Validate: one Great Expectations 1.x suite per source, built from ``sources.<name>.checks``.

Row-level failures (nulls, ranges, categories, id ranges and patterns, duplicate keys, future
timestamps, a timestamp after the row's ``created``) quarantine exactly the failing rows, each
once with every expectation it failed. Batch-level failures (a missing column, a wrong type, an
empty file, too many bad rows, an expectation that cannot run) raise :class:`BatchValidationError`
naming the source, the file and the check, and nothing is written.

``great_expectations`` costs seconds to import: it is imported inside the functions that use it.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from featureops.config import Paths, SourceSpec, source_specs
from featureops.ingest import CREATED, SOURCE_FILE, empty_quarantine
from featureops.io import new_dir_mode, write_json, write_parquet

STAGE = "validate"
DATA_DOCS_DIR = "data_docs"
METRICS_FILE = "validate.json"

# Declared DuckDB type -> the ``type_`` ExpectColumnValuesToBeOfType checks on the pandas frame.
# GE compares ``dtype.type``: int64/Int64 -> numpy.int64, float64 -> numpy.float64, a tz-aware
# datetime64[us, UTC] -> pandas.Timestamp; object (VARCHAR) columns are checked value by value.
# Integer columns are read as nullable Int64 so a null does not turn them into float64.
PANDAS_TYPES: dict[str, str] = {
    "BIGINT": "int64",
    "INTEGER": "int32",
    "DOUBLE": "float64",
    "FLOAT": "float32",
    "VARCHAR": "str",
    "BOOLEAN": "bool",
    "TIMESTAMPTZ": "Timestamp",
    "TIMESTAMP": "datetime64",
}

# Expectations whose failure stops the batch instead of quarantining rows.
BATCH_EXPECTATIONS = frozenset({"expect_column_to_exist", "expect_column_values_to_be_of_type"})

_NULLABLE = {
    pa.int64(): pd.Int64Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


class BatchValidationError(Exception):
    """A whole batch fails: the pipeline stops and writes nothing."""


@dataclass(frozen=True)
class SourceValidation:
    """Accepted rows (interim schema), quarantined rows and the metrics of one source."""

    source: str
    file: Path
    accepted: pa.Table
    quarantined: pd.DataFrame
    metrics: dict[str, Any]


def parse_reference_time(value: str | date | datetime | None) -> datetime:
    """``validate.reference_time`` as an aware UTC datetime; None means now (naive = UTC)."""
    if value is None or value == "":
        return datetime.now(UTC)
    if isinstance(value, datetime):
        stamp = value
    elif isinstance(value, date):
        stamp = datetime(value.year, value.month, value.day)
    else:
        stamp = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def schema_expectations(spec: SourceSpec) -> list[Any]:
    """Batch-level: every declared column exists and has its declared type."""
    import great_expectations.expectations as gxe

    out: list[Any] = []
    for col, declared in spec.columns.items():
        out.append(gxe.ExpectColumnToExist(column=col))
        type_ = PANDAS_TYPES.get(declared.upper())
        if type_ is not None:
            out.append(gxe.ExpectColumnValuesToBeOfType(column=col, type_=type_))
    return out


def row_expectations(spec: SourceSpec, reference_time: datetime) -> list[Any]:
    """Row-level expectations declared in ``sources.<name>.checks``."""
    import great_expectations.expectations as gxe

    checks = spec.checks
    out: list[Any] = [
        gxe.ExpectColumnValuesToNotBeNull(column=c) for c in checks.get("not_null", [])
    ]
    for col, (lo, hi) in (checks.get("ranges") or {}).items():
        out.append(gxe.ExpectColumnValuesToBeBetween(column=col, min_value=lo, max_value=hi))
    for col, allowed in (checks.get("categories") or {}).items():
        out.append(gxe.ExpectColumnValuesToBeInSet(column=col, value_set=list(allowed)))
    unique = list(checks.get("unique") or [])
    if len(unique) == 1:
        out.append(gxe.ExpectColumnValuesToBeUnique(column=unique[0]))
    elif unique:
        out.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=unique))
    for check in spec.ids:  # sources.<name>.checks.ids: id ranges and patterns
        if check.min is not None or check.max is not None:
            out.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=check.column, min_value=check.min, max_value=check.max
                )
            )
        if check.pattern is not None:
            out.append(gxe.ExpectColumnValuesToMatchRegex(column=check.column, regex=check.pattern))
    for col in checks.get("not_in_future", []):
        out.append(gxe.ExpectColumnValuesToBeBetween(column=col, max_value=reference_time))
        if col != CREATED:  # a row cannot be known (created) before it happened
            out.append(
                gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                    column_A=CREATED,
                    column_B=col,
                    or_equal=True,
                    ignore_row_if="either_value_is_missing",
                )
            )
    return out


def build_expectations(spec: SourceSpec, reference_time: datetime) -> list[Any]:
    """The whole suite of one source: schema checks first, then row checks."""
    return schema_expectations(spec) + row_expectations(spec, reference_time)


def _columns(kwargs: dict[str, Any]) -> list[str]:
    if "column" in kwargs:
        return [kwargs["column"]]
    if "column_list" in kwargs:
        return list(kwargs["column_list"])
    return [kwargs["column_A"], kwargs["column_B"]]


def expectation_label(config: Any) -> str:
    """``expect_x(col, ...)``: stable across runs (no reference time), unique within a suite."""
    kwargs = config.kwargs
    label = f"{config.type}({', '.join(_columns(kwargs))})"
    if config.type == "expect_column_values_to_be_between":
        label += " <= reference time" if _is_time(kwargs.get("max_value")) else ""
    return label


def _is_time(value: Any) -> bool:
    return isinstance(value, datetime | date | pd.Timestamp)


def _fmt(value: Any) -> str:
    if value is None or (not isinstance(value, list | tuple) and pd.isna(value)):
        return "null"
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _bound(bound: Any, value: Any) -> str:
    """A range bound as written for the value's type: GE keeps bounds as floats (1 -> 1.0)."""
    if bound is None:
        return "null"
    integral = isinstance(value, int | np.integer) and not isinstance(value, bool)
    if integral and isinstance(bound, float) and bound.is_integer():
        return str(int(bound))
    return str(bound)


def row_reason(config: Any, row: dict[str, Any]) -> str:
    """Why ``row`` (column -> value) failed ``config``: expectation, column(s), offending value."""
    kwargs = config.kwargs
    cols = _columns(kwargs)
    head = f"{config.type}({', '.join(cols)})"
    kind = config.type
    if kind == "expect_column_values_to_not_be_null":
        return f"{head}: value is null"
    if kind == "expect_column_values_to_be_between":
        value = _fmt(row[cols[0]])
        if _is_time(kwargs.get("max_value")):
            return f"{head}: value {value} after the reference time"
        lo, hi = (_bound(kwargs.get(k), row[cols[0]]) for k in ("min_value", "max_value"))
        return f"{head}: value {value} outside [{lo}, {hi}]"
    if kind == "expect_column_values_to_match_regex":
        return f"{head}: value {_fmt(row[cols[0]])} does not match {kwargs['regex']!r}"
    if kind == "expect_column_values_to_be_in_set":
        return f"{head}: value {_fmt(row[cols[0]])} not in {sorted(kwargs['value_set'])}"
    if kind == "expect_column_pair_values_a_to_be_greater_than_b":
        a, b = cols
        return f"{head}: {b} {_fmt(row[b])} after {a} {_fmt(row[a])}"
    if kind in ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"):
        key = ", ".join(_fmt(row[c]) for c in cols)
        return f"{head}: duplicate key ({key})"
    return head


def read_interim(file: Path) -> tuple[pa.Table, pd.DataFrame]:
    """The interim table and its pandas view (nullable ints, positional index)."""
    table = pq.read_table(file)
    df = table.to_pandas(types_mapper=_NULLABLE.get)
    return table, df.reset_index(drop=True)


class Validator:
    """An ephemeral GE context: one pandas data source, and per source an asset, a batch
    definition, a suite and a validation definition. Results stay in the context for Data Docs.
    """

    def __init__(self, progress_bars: bool = False) -> None:
        """``progress_bars``: GE's own tqdm bars ("Calculating Metrics", one per suite run),
        off by default through GE's context config (not ``TQDM_DISABLE``, which would also
        silence every other tqdm bar in the process); featureops' own bars are separate
        (:mod:`featureops.progress`)."""
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self._gx = gx
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(
            globally=progress_bars, metric_calculations=progress_bars
        )
        self.datasource = self.context.data_sources.add_pandas("featureops")
        self._names: set[str] = set()

    def _unique(self, name: str) -> str:
        candidate, n = name, 1
        while candidate in self._names:
            n += 1
            candidate = f"{name}_{n}"
        self._names.add(candidate)
        return candidate

    def run(self, name: str, df: pd.DataFrame, expectations: list[Any]) -> Any:
        """Validate ``df`` against ``expectations``; return the suite validation result."""
        gx = self._gx
        name = self._unique(name)
        batch = self.datasource.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
        suite = self.context.suites.add(gx.ExpectationSuite(name=name))
        for expectation in expectations:
            suite.add_expectation(expectation)
        definition = self.context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch, suite=suite)
        )
        return definition.run(
            batch_parameters={"dataframe": df},
            result_format={"result_format": "COMPLETE", "return_unexpected_index_query": False},
        )

    def build_docs(self, target: Path) -> Path:
        """Render Data Docs into a temp dir beside ``target``, then swap it in; return index.html."""
        target = Path(target).resolve()
        tmp = self.build_docs_staged(target)
        swap_dir(tmp, target)
        return target / "index.html"

    def build_docs_staged(self, target: Path) -> Path:
        """Render Data Docs into a new temp dir beside ``target`` and return it."""
        from featureops import data_docs

        target = Path(target).resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        tmp.chmod(new_dir_mode())  # the folder a user opens: the umask's mode, not 0700
        site = f"site_{tmp.name.strip('.')}"
        # offline pages: no CDN assets, no remote logo (see featureops.data_docs); GE's
        # TypedDict for the config names only some of the keys SiteBuilder takes
        config: Any = data_docs.site_config(tmp)
        self.context.add_data_docs_site(site_name=site, site_config=config)
        try:
            self.context.build_data_docs(site_names=[site])
        except Exception:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        finally:
            self.context.delete_data_docs_site(site)
        return tmp


def swap_dir(new: Path, target: Path) -> None:
    """Replace directory ``target`` by ``new`` (two renames; the old one is removed after)."""
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _fail(spec: SourceSpec, file: Path, check: str, detail: str = "") -> BatchValidationError:
    suffix = f": {detail}" if detail else ""
    return BatchValidationError(f"source {spec.name!r}, file {file}: check {check} failed{suffix}")


def check_batch(result: Any, spec: SourceSpec, file: Path) -> None:
    """Raise for a missing column, then a wrong type, then an expectation that could not run."""
    failed = [
        r
        for r in result.results
        if r.expectation_config.type in BATCH_EXPECTATIONS and not r.success
    ]
    missing = [r for r in failed if r.expectation_config.type == "expect_column_to_exist"]
    if missing:
        raise _fail(spec, file, "; ".join(expectation_label(r.expectation_config) for r in missing))
    if failed:
        r = failed[0]
        observed = (r.result or {}).get("observed_value")
        observed = observed or "values of another type"
        raise _fail(
            spec,
            file,
            expectation_label(r.expectation_config),
            f"declared {r.expectation_config.kwargs.get('type_')}, observed {observed}",
        )
    for r in result.results:
        info = r.exception_info or {}
        if info.get("raised_exception"):
            raise _fail(
                spec,
                file,
                expectation_label(r.expectation_config),
                f"could not run: {info.get('exception_message')}",
            )


def row_failures(result: Any, df: pd.DataFrame) -> dict[int, list[str]]:
    """Row position -> reasons, from each row-level expectation's ``unexpected_index_list``."""
    reasons: dict[int, list[str]] = {}
    for r in result.results:
        config = r.expectation_config
        positions = [int(i) for i in (r.result or {}).get("unexpected_index_list") or []]
        if config.type in BATCH_EXPECTATIONS or not positions:
            continue
        cols = _columns(config.kwargs)
        values = {c: df[c].iloc[positions].tolist() for c in cols}
        for n, pos in enumerate(positions):
            row = {c: values[c][n] for c in cols}
            reasons.setdefault(pos, []).append(row_reason(config, row))
    return reasons


def expectation_metrics(result: Any) -> dict[str, dict[str, Any]]:
    """Per expectation label: success and the number of unexpected rows."""
    out: dict[str, dict[str, Any]] = {}
    for r in result.results:
        res = r.result or {}
        unexpected = res.get("unexpected_index_list")
        count = len(unexpected) if unexpected is not None else res.get("unexpected_count", 0)
        out[expectation_label(r.expectation_config)] = {
            "success": bool(r.success),
            "unexpected": int(count or 0),
        }
    return out


def quarantine_frame(
    spec: SourceSpec, df: pd.DataFrame, reasons: dict[int, list[str]]
) -> pd.DataFrame:
    """Quarantine rows in the shared schema; ``record`` is the row as JSON (ISO timestamps)."""
    positions = sorted(reasons)
    if not positions:
        return empty_quarantine()
    bad = df.iloc[positions]
    records = bad.drop(columns=[SOURCE_FILE], errors="ignore").to_json(
        orient="records", lines=True, date_format="iso", date_unit="us"
    )
    files = bad[SOURCE_FILE].astype(object) if SOURCE_FILE in bad else [None] * len(bad)
    frame = pd.DataFrame(
        {
            "source": spec.name,
            "stage": STAGE,
            "file": list(files),
            "line": pd.array([None] * len(bad), dtype="Int64"),
            "reason": ["; ".join(reasons[p]) for p in positions],
            "record": records.splitlines(),
        }
    )
    return frame.astype(empty_quarantine().dtypes.to_dict())


def source_metrics(
    file: Path, rows_in: int, quarantined: int, max_share: float, result: Any
) -> dict[str, Any]:
    """The metrics of one source; raises AssertionError if the counts do not reconcile."""
    accepted = rows_in - quarantined
    metrics: dict[str, Any] = {
        "file": str(file),
        "rows_in": rows_in,
        "accepted": accepted,
        "quarantined": quarantined,
        "bad_row_share": round(quarantined / rows_in, 6) if rows_in else 0.0,
        "max_bad_row_share": max_share,
        "success": bool(result.success),
        "expectations": expectation_metrics(result),
    }
    if metrics["rows_in"] != metrics["accepted"] + metrics["quarantined"] or accepted < 0:
        raise AssertionError(f"validate counts do not reconcile: {metrics}")
    return metrics


def check_share(spec: SourceSpec, file: Path, metrics: dict[str, Any]) -> None:
    """Batch-level: the quarantined share must not exceed ``validate.max_bad_row_share``."""
    share, limit = metrics["bad_row_share"], metrics["max_bad_row_share"]
    if metrics["quarantined"] / max(metrics["rows_in"], 1) <= limit:
        return
    worst = sorted(
        ((k, v["unexpected"]) for k, v in metrics["expectations"].items() if v["unexpected"]),
        key=lambda kv: -kv[1],
    )[:3]
    raise _fail(
        spec,
        file,
        "bad row share",
        f"{metrics['quarantined']} of {metrics['rows_in']} rows ({share:.1%}) fail row-level "
        f"expectations, above validate.max_bad_row_share={limit:.1%}; most failures: "
        + "; ".join(f"{k} x{n}" for k, n in worst),
    )


def validate_source(
    validator: Validator,
    spec: SourceSpec,
    file: str | Path,
    max_bad_row_share: float,
    reference_time: datetime,
) -> SourceValidation:
    """Validate one interim Parquet file; quarantine failing rows; raise on batch failures."""
    file = Path(file)
    if not file.exists():
        raise _fail(spec, file, "file exists", "not found (run ingest first)")
    table, df = read_interim(file)
    if table.num_rows == 0 and not spec.checks.get("allow_empty", False):
        raise _fail(spec, file, "non-empty batch", "0 rows (set checks.allow_empty to allow)")
    result = validator.run(spec.name, df, build_expectations(spec, reference_time))
    check_batch(result, spec, file)
    reasons = row_failures(result, df)
    metrics = source_metrics(file, len(df), len(reasons), max_bad_row_share, result)
    check_share(spec, file, metrics)
    keep = np.ones(len(df), dtype=bool)
    keep[list(reasons)] = False
    accepted = table.filter(pa.array(keep))
    return SourceValidation(spec.name, file, accepted, quarantine_frame(spec, df, reasons), metrics)


def validate_sources(
    specs: dict[str, SourceSpec],
    interim_dir: str | Path,
    max_bad_row_share: float,
    reference_time: datetime | None = None,
    validator: Validator | None = None,
) -> tuple[list[SourceValidation], Validator]:
    """Validate every source (``<interim_dir>/<name>.parquet``); raise on the first batch failure."""
    reference_time = reference_time or datetime.now(UTC)
    validator = validator or Validator()
    results = [
        validate_source(
            validator,
            spec,
            Path(interim_dir) / f"{name}.parquet",
            max_bad_row_share,
            reference_time,
        )
        for name, spec in specs.items()
    ]
    return results, validator


def summarize(results: list[SourceValidation]) -> dict[str, Any]:
    """``metrics/validate.json``: per source metrics plus ``total``."""
    summary: dict[str, Any] = {r.source: r.metrics for r in results}
    total = {k: sum(r.metrics[k] for r in results) for k in ("rows_in", "accepted", "quarantined")}
    total["bad_row_share"] = (
        round(total["quarantined"] / total["rows_in"], 6) if total["rows_in"] else 0.0
    )
    if total["rows_in"] != total["accepted"] + total["quarantined"]:
        raise AssertionError(f"validate totals do not reconcile: {total}")
    summary["total"] = total
    return summary


def quarantine_path(paths: Paths, source: str) -> Path:
    """Where a source's validate quarantine goes (the ``${paths.quarantine}/validate`` DVC out)."""
    return paths.quarantine / STAGE / f"{source}.parquet"


def write_outputs(
    results: list[SourceValidation], paths: Paths, validator: Validator
) -> dict[str, Any]:
    """Write every output once all sources passed: Parquet, metrics JSON, then Data Docs."""
    docs_target = (paths.reports / DATA_DOCS_DIR).resolve()
    staged = validator.build_docs_staged(docs_target)  # rendered before anything is replaced
    try:
        summary = summarize(results)
        for r in results:
            write_parquet(r.accepted, paths.validated / f"{r.source}.parquet")
            write_parquet(r.quarantined, quarantine_path(paths, r.source))
        write_json(summary, paths.metrics / METRICS_FILE)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    swap_dir(staged, docs_target)
    return summary


def run_validate(
    params: dict[str, Any],
    root: str | Path = ".",
    reference_time: datetime | None = None,
    progress_bars: bool = False,
) -> dict[str, Any]:
    """The whole stage: validate every source, then write outputs; return the metrics.

    ``reference_time`` overrides ``validate.reference_time`` (null in params = now, UTC).
    """
    paths = Paths.from_params(params, root)
    cfg = params.get("validate") or {}
    reference = reference_time or parse_reference_time(cfg.get("reference_time"))
    results, validator = validate_sources(
        source_specs(params),
        paths.interim,
        float(cfg.get("max_bad_row_share", 0.05)),
        reference,
        Validator(progress_bars=progress_bars),
    )
    return write_outputs(results, paths, validator)
