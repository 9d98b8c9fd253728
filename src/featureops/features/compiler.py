"""Compile a :class:`~featureops.features.spec.FeatureTableSpec` into one DuckDB query.

The plan below is engine-neutral; a :class:`~featureops.features.dialect.Dialect` renders
it (DuckDB by default, Spark SQL for ``transform.engine: spark``: same values, see
:mod:`.dialect`).

The query reads relations named after the sources (views over the validated Parquet in a
build, empty typed tables for :func:`output_schema`). Its common table expressions:

1. ``__timeline``: the table's source rows after ``filter``, with derived columns, event
   time ``__ts`` and its integer microseconds ``__t``; ``__as_of_<i>``: each lookup's source
   rows (after its filter), keys renamed to the table's;
2. ``__events``: their ``UNION ALL BY NAME`` (plus fixed-point values, below);
3. ``__windowed``: one window pass ``PARTITION BY <keys> ORDER BY __t`` whose RANGE frames
   are exact on integers: ``(ts - w, ts]`` is ``w - 1 PRECEDING AND CURRENT ROW``,
   ``(ts, ts + w]`` is ``1 FOLLOWING AND w FOLLOWING``, no window is ``UNBOUNDED PRECEDING``;
4. ``__features``: one row per timeline row: keys, ``event_timestamp``, ``created`` (the
   latest ``created`` of every row used), the features;
5. the final select: ``compute`` columns, ``exclude`` applied, sorted by keys, time,
   ``created``, then the columns that can tell tied rows apart (a deterministic order).

With ``batch_keys`` every source read is semi-joined with that relation (the keys of one
batch of whole entities), so a build can stream a table batch by batch.

Deterministic float sums: DuckDB adds DOUBLEs in a window in an order that depends on the
other entities of its hash partition (the segment tree spans them) and on how rows tied on
time happen to be ordered, so a float mean could differ in its last bits between runs or
batch sizes. ``sum``, ``mean`` and ``std`` of FLOAT/DOUBLE values therefore add exact
integers: each value is divided by a power of two fixed per column (from the largest
magnitude over the whole filtered source, never the batch; the exponent is computed exactly,
not trusted to an engine's ``log2``) and rounded to a HUGEINT below 2**96. Integer sums do not depend on order, and one conversion back gives the same double
every time; the rounding is 2**-96 of the column's largest magnitude. ``std`` adds values
centred on the column's mid-range and their squares: ``(S2 - S1**2 / n) / (n - 1)``.
Integer and DECIMAL sums are exact natively. Such columns must hold finite values.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from featureops.features.binding import Binder
from featureops.features.dialect import DUCKDB, Dialect
from featureops.features.spec import (
    CREATED,
    EVENT_TIMESTAMP,
    FLOAT_TYPES,
    INTEGER_TYPES,
    UNIT_US,
    Duration,
    FeatureTableSpec,
)
from featureops.normalize import epoch_us, window_bounds

if TYPE_CHECKING:
    from featureops.config import SourceSpec

FIXED_BITS = 95


def compile_table(
    spec: FeatureTableSpec,
    sources: dict[str, SourceSpec],
    batch_keys: str | None = None,
    dialect: Dialect = DUCKDB,
) -> str:
    """The table's SQL: its output columns in order, sorted (see the module docstring).

    ``batch_keys`` names a relation whose columns are the table's keys: only those
    entities are read (the batch hook). None reads every entity. ``dialect`` renders the
    SQL for an engine (:mod:`.dialect`: DuckDB, the default, or Spark SQL).
    """
    return _Query(spec, sources, batch_keys, dialect=dialect).sql()


def compile_fit(
    spec: FeatureTableSpec, sources: dict[str, SourceSpec], dialect: Dialect = DUCKDB
) -> str:
    """SQL of ``event_timestamp`` and the normalized columns for fitting the statistics.

    Only timeline rows that can reach a row with event time in the fit window are read
    (from the longest window before its start to its end); values equal those of
    :func:`compile_table` exactly. Rows outside the window are left to the caller's filter.
    """
    if spec.normalize is None:
        raise ValueError(f"features.{spec.name} has no normalize section")
    wanted = set(spec.normalize.columns)
    windows = tuple(w for w in spec.windows if w.name in wanted)
    fit_spec = replace(
        spec,
        columns=tuple(c for c in spec.columns if c in wanted),
        windows=windows,
        as_of=(),
        compute=(),
        exclude=(),
    )
    start, end = window_bounds(spec.normalize.window)
    lookback = max((w.window.micros for w in windows), default=1) - 1
    time_range = (epoch_us(start) - lookback, epoch_us(end))
    query = _Query(fit_spec, sources, None, time_range, dialect)
    q = dialect.quote
    columns = ", ".join(q(c) for c in (EVENT_TIMESTAMP, *spec.normalize.columns))
    return f"{query.ctes()}\nSELECT {columns} FROM {q('__features')}"


def output_schema(spec: FeatureTableSpec, sources: dict[str, SourceSpec]) -> list[tuple[str, str]]:
    """(column, DuckDB type) of the written table, from DESCRIBE over empty tables (no data).

    Normalized columns are DOUBLE. Timestamps are written as UTC microseconds.
    """
    with Binder(sources) as binder:
        described = binder.describe(compile_table(spec, sources))
    normalized = spec.normalize.output_names if spec.normalize else []
    return [*described, *((name, "DOUBLE") for name in normalized)]


@dataclass(frozen=True)
class _Channel:
    """A column summed as fixed-point integers: ``mode`` is ``sum`` or ``std`` (centred)."""

    index: int
    branch: str  # "timeline" or the lookup index
    value: str  # the (quoted) column in the branch's rows
    mode: str
    label: str  # for the error message


class _Names:
    """Quoted names of a channel's columns (scales, centre, fixed-point values)."""

    def __init__(self, index: int, dialect: Dialect) -> None:
        j, q = index, dialect.quote
        self.ok, self.magnitude = q(f"__ok{j}"), q(f"__m{j}")
        self.low, self.high, self.centre = q(f"__lo{j}"), q(f"__hi{j}"), q(f"__k{j}")
        self.scale, self.scale2 = q(f"__s{j}"), q(f"__s{j}_2")
        self.fixed, self.fixed2 = q(f"__q{j}"), q(f"__q{j}_2")


class _Query:
    """Builds the SQL of one table; parts and frames are collected while rendering features."""

    def __init__(
        self,
        spec: FeatureTableSpec,
        sources: dict[str, SourceSpec],
        batch_keys: str | None,
        time_range: tuple[int, int] | None = None,
        dialect: Dialect = DUCKDB,
    ) -> None:
        self.spec, self.sources = spec, sources
        self.batch_keys, self.time_range = batch_keys, time_range
        self.d = dialect
        self.q = quote = dialect.quote
        self.T, self.TS = quote("__t"), quote("__ts")
        self.ROW, self.ROW_CREATED = quote("__row"), quote("__created")
        self.keys = [quote(k) for k in spec.keys]
        self.frames: dict[str, str] = {}
        self.parts: dict[str, str] = {}
        self.channels: dict[tuple[str, str, str], _Channel] = {}
        self.as_of_created: list[str] = []
        self.features = self._feature_expressions()
        self.created = self._created()

    # -- SQL -------------------------------------------------------------------------
    def sql(self) -> str:
        """The whole query, final select included, in output order.

        Rows tied on keys, time and ``created`` have the same window and lookup values
        (a RANGE frame holds every row tied on time), so they differ only in pass-through
        and compute columns: sorting on those too fixes the order of every distinct row.
        """
        spec, q = self.spec, self.q
        computed = dict(spec.compute)
        kept = [f for f in spec.features if f not in spec.exclude]
        features = [
            f"({self.d.expression(computed[f])}) AS {q(f)}" if f in computed else q(f) for f in kept
        ]
        head = [*self.keys, q(EVENT_TIMESTAMP), q(CREATED)]
        ties = [q(f) for f in kept if f in computed or f in spec.columns]
        order = ", ".join(self.d.order(c) for c in head + ties)
        return (
            f"{self.ctes()}\nSELECT {', '.join(head + features)}\nFROM {q('__features')}\n"
            f"ORDER BY {order}"
        )

    def ctes(self) -> str:
        """The common table expressions, up to ``__features``."""
        q = self.q
        ctes = [("__timeline", self._timeline(batched=True, time_range=self.time_range))]
        ctes += [
            (f"__as_of_{i}", self._as_of(i, batched=True)) for i in range(len(self.spec.as_of))
        ]
        windowed = bool(self.frames)
        if windowed:
            ctes += [(f"__scale_{b}", sql) for b, sql in self._scales().items()]
            ctes.append(("__events", self._events([name for name, _ in ctes])))
            ctes.append(("__windowed", self._windowed()))
        source = "__windowed" if windowed else "__timeline"
        select = [
            *self.keys,
            f"{self.TS} AS {q(EVENT_TIMESTAMP)}",
            f"{self.created} AS {q(CREATED)}",
            *(expr if expr == q(name) else f"{expr} AS {q(name)}" for name, expr in self.features),
        ]
        where = f" WHERE {self.ROW}" if self.spec.as_of else ""
        ctes.append(("__features", f"SELECT {', '.join(select)} FROM {q(source)}{where}"))
        body = ",\n".join(f"{q(name)} AS (\n  {sql}\n)" for name, sql in ctes)
        return f"WITH {body}"

    def _semi_join(self, source: str, source_keys: tuple[str, ...]) -> str:
        if self.batch_keys is None:
            return ""
        q, b = self.q, self.q("__b")
        on = " AND ".join(
            f"{q(source)}.{q(sk)} = {b}.{q(k)}"
            for sk, k in zip(source_keys, self.spec.keys, strict=True)
        )
        return f" {self.d.semi_join} {q(self.batch_keys)} AS {b} ON {on}"

    def _timeline_columns(self) -> list[tuple[str, str]]:
        """(expression, quoted alias) of the timeline's rows."""
        spec, q, d = self.spec, self.q, self.d
        ts = d.timestamp(q(spec.timestamp))
        derived = dict(spec.derive)
        needed = dict.fromkeys([*spec.columns, *(w.column for w in spec.windows)])
        values = [
            (f"({d.expression(derived[c])})", q(c)) if c in derived else (q(c), q(c))
            for c in needed
        ]
        return [
            *((k, k) for k in self.keys),
            (ts, self.TS),
            (d.epoch_us(ts), self.T),
            (q(CREATED), self.ROW_CREATED),
            ("TRUE", self.ROW),
            *values,
        ]

    def _timeline(self, batched: bool, time_range: tuple[int, int] | None) -> str:
        spec, d = self.spec, self.d
        select = [e if e == a else f"{e} AS {a}" for e, a in self._timeline_columns()]
        where = [f"({d.expression(spec.filter)})"] if spec.filter else []
        if time_range is not None:
            t = d.epoch_us(d.timestamp(self.q(spec.timestamp)))
            where.append(f"{t} >= {time_range[0]} AND {t} < {time_range[1]}")
        semi = self._semi_join(spec.source, spec.keys) if batched else ""
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        return f"SELECT {', '.join(select)} FROM {self.q(spec.source)}{semi}{clause}"

    def _as_of_columns(self, i: int) -> list[tuple[str, str]]:
        a, q, d = self.spec.as_of[i], self.q, self.d
        ts = d.timestamp(q(self.sources[a.source].timestamp))
        columns = [
            *((q(sk), k) for sk, k in zip(a.keys, self.keys, strict=True)),
            (d.epoch_us(ts), self.T),
            (q(CREATED), q(f"__a{i}_created")),
            ("TRUE", q(f"__a{i}")),
        ]
        if a.column is not None:
            columns.append((q(a.column), q(f"__a{i}_v")))
        return columns

    def _as_of(self, i: int, batched: bool) -> str:
        a = self.spec.as_of[i]
        select = [f"{e} AS {alias}" for e, alias in self._as_of_columns(i)]
        semi = self._semi_join(a.source, a.keys) if batched else ""
        where = f" WHERE ({self.d.expression(a.filter)})" if a.filter else ""
        return f"SELECT {', '.join(select)} FROM {self.q(a.source)}{semi}{where}"

    def _scales(self) -> dict[str, str]:
        """Per branch with fixed-point channels: one row of scales over all its rows."""
        d = self.d
        out: dict[str, str] = {}
        for branch in dict.fromkeys(c.branch for c in self.channels.values()):
            channels = [c for c in self.channels.values() if c.branch == branch]
            if branch == "timeline":
                rows = self._timeline(batched=False, time_range=None)
            else:
                rows = self._as_of(int(branch), batched=False)
            inner, outer = [], []
            for c in channels:
                x, n = d.cast(c.value, "DOUBLE"), _Names(c.index, d)
                inner.append(f"bool_and({d.isfinite(x)}) AS {n.ok}")
                if c.mode == "sum":
                    inner.append(f"max(abs({x})) AS {n.magnitude}")
                    outer.append(f"{_scale(d, n.magnitude, n.ok, c.label)} AS {n.scale}")
                else:
                    inner += [f"min({x}) AS {n.low}", f"max({x}) AS {n.high}"]
                    centre = f"({n.low} / 2 + {n.high} / 2)"
                    spread = f"greatest({n.high} - {centre}, {centre} - {n.low})"
                    outer += [
                        f"{centre} AS {n.centre}",
                        f"{_scale(d, spread, n.ok, c.label)} AS {n.scale}",
                        f"{_scale(d, f'{spread} * {spread}', n.ok, c.label)} AS {n.scale2}",
                    ]
            out[branch] = (
                f"SELECT {', '.join(outer)} FROM (SELECT {', '.join(inner)} FROM ({rows}))"
            )
        return out

    def _union(self, rows: list[str]) -> str:
        """The rows of every branch in one relation (missing columns are NULL)."""
        q = self.q
        if self.d.union_by_name:
            return " UNION ALL BY NAME ".join(f"SELECT * FROM {q(n)}" for n in rows)
        branches = [[a for _, a in self._timeline_columns()]]
        branches += [[a for _, a in self._as_of_columns(i)] for i in range(len(self.spec.as_of))]
        names = list(dict.fromkeys(a for branch in branches for a in branch))
        selects = [
            ", ".join(a if a in branch else f"NULL AS {a}" for a in names) for branch in branches
        ]
        return " UNION ALL ".join(
            f"SELECT {s} FROM {q(n)}" for s, n in zip(selects, rows, strict=True)
        )

    def _events(self, names: list[str]) -> str:
        """Timeline and lookup rows in one relation, plus the fixed-point columns."""
        d = self.d
        union = self._union([n for n in names if not n.startswith("__scale_")])
        if not self.channels:
            return union
        fixed = []
        for c in self.channels.values():
            x, n = d.cast(c.value, "DOUBLE"), _Names(c.index, d)
            if c.mode == "sum":
                fixed.append(f"{d.fixed(f'{x} / {n.scale}')} AS {n.fixed}")
            else:
                dev = f"({x} - {n.centre})"
                fixed += [
                    f"{d.fixed(f'{dev} / {n.scale}')} AS {n.fixed}",
                    f"{d.fixed(f'{dev} * {dev} / {n.scale2}')} AS {n.fixed2}",
                ]
        scales = " CROSS JOIN ".join(self.q(n) for n in names if n.startswith("__scale_"))
        return f"SELECT *, {', '.join(fixed)} FROM ({union}) CROSS JOIN {scales}"

    def _windowed(self) -> str:
        q = self.q
        carry = [*self.keys, self.T, self.TS, self.ROW_CREATED, self.ROW]
        carry += [q(c) for c in dict.fromkeys(self.spec.columns)]
        for c in self.channels.values():
            n = _Names(c.index, self.d)
            carry += [n.scale, n.centre, n.scale2] if c.mode == "std" else [n.scale]
        parts = [f"{expr} AS {alias}" for expr, alias in self.parts.items()]
        partition = f"PARTITION BY {', '.join(self.keys)} ORDER BY {self.T}"
        frames = ", ".join(f"{n} AS ({partition} {f})" for n, f in self.frames.items())
        return f"SELECT {', '.join(carry + parts)} FROM {q('__events')} WINDOW {frames}"

    # -- features ----------------------------------------------------------------------
    def _feature_expressions(self) -> list[tuple[str, str]]:
        spec, q = self.spec, self.q
        out = [(c, q(c)) for c in spec.columns]
        for w in spec.windows:
            frame = self._frame(w.window)
            label = f"{spec.source}.{w.column}"
            expr = self._aggregate(
                w.agg, q(w.column), w.column_type, frame, self.ROW_CREATED, "timeline", label
            )
            out.append((w.name, expr))
        for i, a in enumerate(spec.as_of):
            expr, created = self._lookup(i)
            out.append((a.name, expr))
            self.as_of_created.append(created)
        return out

    def _lookup(self, i: int) -> tuple[str, str]:
        """(value, created) expressions of lookup ``i``."""
        a, d, q, T = self.spec.as_of[i], self.d, self.q, self.T
        frame = self._frame(a.window)
        marker, created, value = q(f"__a{i}"), q(f"__a{i}_created"), q(f"__a{i}_v")
        if a.agg == "since_last":
            row = d.struct([("t", T), ("c", created)])
            latest = self._part(f"max(CASE WHEN {marker} THEN {row} END)", frame)
            since = d.cast(f"({T} - {d.field(latest, 't')})", "DOUBLE")
            return f"{since} / {UNIT_US[a.unit]}", d.field(latest, "c")
        if a.agg == "last":
            latest = self._last(value, created, frame)
            expr, used = d.field(latest, "v"), d.field(latest, "c")
        elif a.agg == "count" and a.column is None:
            expr = self._part(f"count({marker})", frame)
            used = self._part(f"max({created})", frame)
        else:
            label = f"{a.source}.{a.column}"
            expr = self._aggregate(a.agg, value, a.column_type or "", frame, created, str(i), label)
            used = self._part(f"max({created})", frame)
        if a.window is not None and a.window.forward:
            used = f"greatest({used}, {d.plus_micros(self.TS, T, a.window.micros)})"
        return expr, used

    def _created(self) -> str:
        terms = [self.ROW_CREATED]
        if self.spec.windows:
            longest = max((w.window for w in self.spec.windows), key=lambda d: d.micros)
            terms.append(self._part(f"max({self.ROW_CREATED})", self._frame(longest)))
        terms += self.as_of_created
        return terms[0] if len(terms) == 1 else f"greatest({', '.join(terms)})"

    def _aggregate(
        self, agg: str, value: str, kind: str, frame: str, created: str, branch: str, label: str
    ) -> str:
        """SQL of ``agg`` over ``value`` (of DuckDB type ``kind``) in ``frame``."""
        d = self.d
        if agg == "count":
            return self._part(f"count({value})", frame)
        if agg in ("min", "max"):
            return self._part(f"{agg}({value})", frame)
        if agg == "last":
            return d.field(self._last(value, created, frame), "v")
        n = self._part(f"count({value})", frame)
        if agg in ("sum", "mean") and kind not in FLOAT_TYPES:
            total = self._part(d.int_sum(value, kind), frame)  # exact: integers and DECIMAL
            if agg == "mean":
                return f"{d.sum_to_double(total, kind)} / {n}"
            return d.sum_to_bigint(total) if kind in INTEGER_TYPES else total
        if agg in ("sum", "mean"):
            c = _Names(self._channel(branch, value, "sum", label).index, d)
            fixed = d.sum_to_double(self._part(f"sum({c.fixed})", frame), "HUGEINT")
            total = f"({fixed} * {c.scale})"
            return f"{total} / {n}" if agg == "mean" else total
        c = _Names(self._channel(branch, value, "std", label).index, d)
        s1 = f"({d.sum_to_double(self._part(f'sum({c.fixed})', frame), 'HUGEINT')} * {c.scale})"
        s2 = f"({d.sum_to_double(self._part(f'sum({c.fixed2})', frame), 'HUGEINT')} * {c.scale2})"
        variance = f"({s2} - {s1} * {s1} / {n}) / ({n} - 1)"
        return f"CASE WHEN {n} > 1 THEN sqrt(greatest({variance}, {d.zero()})) END"

    def _last(self, value: str, created: str, frame: str) -> str:
        """Latest non-null value: max of (time, created, value); ties go to larger ones."""
        row = self.d.struct([("t", self.T), ("c", created), ("v", value)])
        return self._part(f"max(CASE WHEN {value} IS NOT NULL THEN {row} END)", frame)

    def _channel(self, branch: str, value: str, mode: str, label: str) -> _Channel:
        key = (branch, value, mode)
        if key not in self.channels:
            self.channels[key] = _Channel(len(self.channels), branch, value, mode, label)
        return self.channels[key]

    def _part(self, aggregate: str, frame: str) -> str:
        """Alias of ``aggregate OVER frame`` in ``__windowed`` (each computed once)."""
        expr = f"{aggregate} OVER {frame}"
        if expr not in self.parts:
            self.parts[expr] = self.q(f"__p{len(self.parts)}")
        return self.parts[expr]

    def _frame(self, window: Duration | None) -> str:
        """Name of the window frame: ``(ts - w, ts]``, ``(ts, ts + w]`` or ``<= ts``."""
        if window is None:
            name, frame = "w_all", "RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
        elif window.forward:
            name = f"f_{window.micros}"
            frame = f"RANGE BETWEEN 1 FOLLOWING AND {window.micros} FOLLOWING"
        else:
            name = f"w_{window.micros}"
            frame = f"RANGE BETWEEN {window.micros - 1} PRECEDING AND CURRENT ROW"
        self.frames[self.q(name)] = frame
        return self.q(name)


def _scale(d: Dialect, magnitude: str, ok: str, label: str) -> str:
    """A power of two putting ``magnitude`` below 2**96 (1 for 0; an error if not finite).

    The exponent is ``floor(log2(magnitude))`` corrected by comparing with powers of two, so
    it is exact whatever an engine's ``log2`` rounds to (Spark's is ``ln(x) / ln(2)``).
    """
    message = f"{label} has NaN or infinite values: sum, mean and std need finite ones"
    two = d.double("2.0") if d.name != "duckdb" else "2.0"
    e0 = f"floor(log2({magnitude}))"
    exact = (
        f"({e0} + CASE WHEN pow({two}, {e0} + 1) <= {magnitude} THEN 1 "
        f"WHEN pow({two}, {e0}) > {magnitude} THEN -1 ELSE 0 END)"
    )
    exponent = f"greatest({exact} - {FIXED_BITS}, -1074)"
    return (
        f"CASE WHEN NOT {ok} THEN {d.error(message)} "
        f"WHEN {magnitude} > 0 THEN pow({two}, {exponent}) ELSE {d.double('1.0')} END"
    )
