"""The production model applied with numpy: the fitted scikit-learn pipeline, compiled once.

Training's pipeline is a ColumnTransformer (numeric: SimpleImputer then StandardScaler;
categorical: OneHotEncoder(handle_unknown="ignore")) followed by a binary
LogisticRegression. Its fitted parameters (imputation statistics, means, scales, one-hot
categories, coefficients, intercept) are read once and applied to plain lists per request:
no DataFrame, no scikit-learn validation per call. The probabilities equal scikit-learn's
(tests check 1e-6 on evaluation frames; in practice they agree to ~1e-15).

Any other model shape is applied through scikit-learn itself (one small DataFrame per
call): correct, only slower; :attr:`ServingModel.compiled` says which path is used.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Numeric:
    columns: tuple[str, ...]
    fill: np.ndarray  # imputation statistics (NaN: no imputer)
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray


@dataclass(frozen=True)
class _Categorical:
    column: str
    weights: dict[Any, float]  # category -> coefficient of its one-hot column
    nan_weight: float  # coefficient of a NaN category (0.0 if NaN was not seen)


class UnsupportedModel(ValueError):
    """The pipeline's shape is not one :func:`compile_linear` knows."""


class ServingModel:
    """``predict_proba(columns) -> ndarray``: probability of the positive class per row."""

    def __init__(self, model: Any, inputs: Sequence[str]) -> None:
        self.model = model
        self.inputs = list(inputs)
        try:
            self._linear: _Linear | None = compile_linear(model, self.inputs)
            self._self_check()
        except Exception as exc:  # any shape we cannot prove equal: scikit-learn applies it
            log.warning("model applied through scikit-learn per call: %s", exc)
            self._linear = None

    def _self_check(self) -> None:
        """Compare with scikit-learn on probe rows (training statistics, NaN, unknowns)."""
        import pandas as pd

        linear = self._linear
        assert linear is not None
        probe: dict[str, list[Any]] = {}
        for block in linear.numeric:
            for j, c in enumerate(block.columns):
                center = 0.0 if np.isnan(block.mean[j]) else float(block.mean[j])
                step = float(block.scale[j]) or 1.0
                probe[c] = [center, center + step, center - 2.5 * step, math.nan, center + 0.3]
        for cat in linear.categorical:
            known = list(cat.weights)[:3]
            probe[cat.column] = ([*known, "\x00unknown", None, *known])[:5]
            while len(probe[cat.column]) < 5:
                probe[cat.column].append(None)
        frame = pd.DataFrame({c: probe.get(c, [0.0] * 5) for c in self.inputs})
        for c in frame.columns:
            if any(c == cat.column for cat in linear.categorical):
                frame[c] = frame[c].astype(object)
        try:
            expected = self.model.predict_proba(frame)[:, 1]
        except Exception as exc:  # a probe scikit-learn refuses: trust neither path
            raise UnsupportedModel(f"self-check could not run scikit-learn: {exc}") from exc
        got = linear.predict_proba({c: list(frame[c]) for c in self.inputs}, len(frame))
        if not np.allclose(got, expected, rtol=0, atol=1e-9):
            raise UnsupportedModel("compiled probabilities differ from scikit-learn's")

    @property
    def compiled(self) -> bool:
        return self._linear is not None

    def predict_proba(self, columns: dict[str, Sequence[Any]], n: int) -> np.ndarray:
        """Probabilities for ``n`` rows given as columns (one list per model input)."""
        if self._linear is not None:
            return self._linear.predict_proba(columns, n)
        import pandas as pd

        frame = pd.DataFrame({c: list(columns[c]) for c in self.inputs})
        return self.model.predict_proba(frame)[:, 1]


@dataclass(frozen=True)
class _Linear:
    numeric: list[_Numeric]
    categorical: list[_Categorical]
    intercept: float

    def predict_proba(self, columns: dict[str, Sequence[Any]], n: int) -> np.ndarray:
        logit = np.full(n, self.intercept)
        for block in self.numeric:
            try:  # the service predicts only rows without missing values: plain floats
                x = np.array([columns[c] for c in block.columns], dtype=np.float64)
            except TypeError:  # None somewhere: NaN, then imputed like scikit-learn
                x = np.array(
                    [[_number(v) for v in columns[c]] for c in block.columns], dtype=np.float64
                )
            x = x.T.reshape(n, len(block.columns))
            fill = np.isnan(x) & ~np.isnan(block.fill)
            if fill.any():
                x = np.where(fill, block.fill, x)
            logit += ((x - block.mean) / block.scale) @ block.coef
        for cat in self.categorical:
            weights, nan_weight = cat.weights, cat.nan_weight
            logit += np.array(
                [
                    nan_weight if type(v) is float and math.isnan(v) else weights.get(v, 0.0)
                    for v in columns[cat.column]
                ],
                dtype=np.float64,
            )
        # scikit-learn's binary LogisticRegression: expit of the decision function
        return 1.0 / (1.0 + np.exp(-logit))


def _number(v: Any) -> float:
    return math.nan if v is None else v


def compile_linear(model: Any, inputs: list[str]) -> _Linear:
    """Read a fitted (ColumnTransformer -> binary LogisticRegression) pipeline's parameters."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if not isinstance(model, Pipeline) or len(model.steps) != 2:
        raise UnsupportedModel(f"not a two-step Pipeline: {type(model).__name__}")
    pre, clf = model.steps[0][1], model.steps[1][1]
    if not isinstance(pre, ColumnTransformer) or type(clf) is not LogisticRegression:
        raise UnsupportedModel("expected ColumnTransformer -> LogisticRegression")
    if len(clf.classes_) != 2 or clf.coef_.shape[0] != 1:
        raise UnsupportedModel("not a binary classifier")
    coef = clf.coef_[0].astype(np.float64)
    numeric: list[_Numeric] = []
    categorical: list[_Categorical] = []
    offset = 0
    for name, transformer, columns in pre.transformers_:
        if transformer == "drop" or (isinstance(columns, list | tuple) and not columns):
            continue
        if name == "remainder" and transformer == "drop":
            continue
        cols = [inputs[c] if isinstance(c, int | np.integer) else c for c in columns]
        steps = (
            [s for _, s in transformer.steps]
            if isinstance(transformer, Pipeline)
            else [transformer]
        )
        if transformer == "passthrough":
            steps = []
        if all(isinstance(s, SimpleImputer | StandardScaler) for s in steps):
            k = len(cols)
            fill = np.full(k, np.nan)
            mean, scale = np.zeros(k), np.ones(k)
            seen_scaler = False
            for s in steps:
                if isinstance(s, SimpleImputer):
                    if seen_scaler or s.add_indicator or not _is_nan(s.missing_values):
                        raise UnsupportedModel(
                            "imputer after scaling, indicators or non-NaN markers"
                        )
                    if len(s.statistics_) != k:
                        raise UnsupportedModel("imputer dropped empty features")
                    fill = np.asarray(s.statistics_, dtype=np.float64)
                else:
                    if seen_scaler:
                        raise UnsupportedModel("two scalers")
                    seen_scaler = True
                    if s.with_mean:
                        mean = np.asarray(s.mean_, dtype=np.float64)
                    if s.with_std:
                        scale = np.asarray(s.scale_, dtype=np.float64)
            numeric.append(_Numeric(tuple(cols), fill, mean, scale, coef[offset : offset + k]))
            offset += k
        elif len(steps) == 1 and isinstance(steps[0], OneHotEncoder):
            enc = steps[0]
            if enc.handle_unknown not in ("ignore", "infrequent_if_exist") or getattr(
                enc, "_infrequent_enabled", False
            ):
                raise UnsupportedModel("OneHotEncoder must ignore unknowns, without infrequent")
            drop = getattr(enc, "drop_idx_", None)
            for j, (col, cats) in enumerate(zip(cols, enc.categories_, strict=True)):
                dropped = None if drop is None else drop[j]
                weights: dict[Any, float] = {}
                nan_weight = 0.0
                for i, cat in enumerate(cats):
                    if dropped is not None and i == dropped:
                        continue
                    w = float(coef[offset])
                    offset += 1
                    if isinstance(cat, float) and math.isnan(cat):
                        nan_weight = w
                    else:
                        weights[cat.item() if isinstance(cat, np.generic) else cat] = w
                categorical.append(_Categorical(col, weights, nan_weight))
        else:
            raise UnsupportedModel(f"transformer {name!r}: {[type(s).__name__ for s in steps]}")
    if offset != len(coef):
        raise UnsupportedModel(f"{offset} transformed columns for {len(coef)} coefficients")
    return _Linear(numeric, categorical, float(clf.intercept_[0]))


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
