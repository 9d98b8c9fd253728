"""``POST /predict`` bodies: Feast's feature-server shape, checked against the entity types.

``{"entities": {"<join_key>": [values], ...}}``: every join key of the model's feature
service, no other key, lists of the same non-zero length, each value of its key's Feast
value type. Errors are :class:`RequestError` with the HTTP status and a message naming
the key (422) or the limit (400).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

INT_RANGES = {
    "INT64": (-(2**63), 2**63 - 1),
    "UNIX_TIMESTAMP": (-(2**63), 2**63 - 1),
    "INT32": (-(2**31), 2**31 - 1),
}


class RequestError(Exception):
    """A request the service refuses: ``status`` (400/422) and a message for ``detail``."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def loads(body: bytes) -> Any:
    """JSON with orjson; bodies it refuses (integers beyond 64 bits, NaN, 1e400) go through
    the standard library so the error can name the key rather than the parser."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestError(422, f"body is not valid JSON: {exc}") from None


def _describe(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_values(key: str, type_name: str, values: list[Any]) -> None:
    if type_name in INT_RANGES:
        lo, hi = INT_RANGES[type_name]
        for i, v in enumerate(values):
            if type(v) is not int or not lo <= v <= hi:  # bools and floats are not integers
                raise RequestError(
                    422,
                    f"entities.{key}[{i}]: {_describe(v)} is not a {type_name} "
                    f"(an integer from {lo} to {hi})",
                )
    elif type_name == "STRING":
        for i, v in enumerate(values):
            if type(v) is not str:
                raise RequestError(422, f"entities.{key}[{i}]: {_describe(v)} is not a STRING")
    else:
        raise RequestError(422, f"entities.{key}: keys of type {type_name} are not served")


def parse_entities(
    body: Any, join_keys: dict[str, str], max_entities: int
) -> tuple[dict[str, list[Any]], int]:
    """Validate a parsed body; return the entity columns and the number of rows."""
    if not isinstance(body, dict) or set(body) != {"entities"}:
        extra = sorted(set(body) - {"entities"}) if isinstance(body, dict) else None
        hint = f" (unexpected: {extra})" if extra else ""
        raise RequestError(
            422, f'the body must be {{"entities": {{"<join key>": [values], ...}}}}{hint}'
        )
    entities = body["entities"]
    if not isinstance(entities, dict):
        raise RequestError(422, "entities must be an object of join key -> list of values")
    missing = [k for k in join_keys if k not in entities]
    if missing:
        raise RequestError(
            422, f"entities lacks join key(s) {missing}; required: {list(join_keys)}"
        )
    unknown = [k for k in entities if k not in join_keys]
    if unknown:
        raise RequestError(
            422, f"unknown key(s) {unknown} in entities; join keys: {list(join_keys)}"
        )
    n = None
    for key, values in entities.items():
        if not isinstance(values, list):
            raise RequestError(422, f"entities.{key} must be a list of values")
        if not values:
            raise RequestError(422, f"entities.{key} is empty")
        if n is None:
            n = len(values)
        elif len(values) != n:
            lengths = {k: len(v) if isinstance(v, list) else None for k, v in entities.items()}
            raise RequestError(422, f"entities lists differ in length: {lengths}")
    assert n is not None
    if n > max_entities:
        raise RequestError(400, f"too many entities: {n} > {max_entities}")
    for key, values in entities.items():
        _check_values(key, join_keys[key], values)
    return entities, n
