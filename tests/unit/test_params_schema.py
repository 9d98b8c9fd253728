"""params.yaml is checked against a schema before a stage runs: one line naming the key."""

from __future__ import annotations

import copy

import pytest

from featureops.config import ConfigError
from featureops.config.schema import check_params
from tests.conftest import load_repo_params


def test_the_demo_and_the_example_params_pass() -> None:
    import yaml

    from tests.conftest import REPO_ROOT

    check_params(load_repo_params())
    check_params(yaml.safe_load((REPO_ROOT / "examples/retail/params.yaml").read_text()))


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("train", "model", "C"), "high", r"train\.model\.C: Input should be a valid number"),
        (("train", "model", "C"), -1, r"train\.model\.C: Input should be greater than 0"),
        (("train", "threshold"), 1.5, r"train\.threshold: Input should be less than or equal"),
        (("train", "as_known_at"), "maybe", r"train\.as_known_at: Input should be a valid bool"),
        (("monitor", "psi"), [0.2], r"monitor\.psi: Input should be a valid number"),
        (("serving", "port"), 70000, r"serving\.port"),
        (("transform", "chunk_rows"), 0, r"transform\.chunk_rows"),
        (("train", "modle"), {}, r"train\.modle: Extra inputs are not permitted"),
        (("paths", "landing"), None, r"paths\.landing: Input should be a valid string"),
    ],
)
def test_bad_values_name_the_key(path: tuple[str, ...], value: object, message: str) -> None:
    params = copy.deepcopy(load_repo_params())
    node = params
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ConfigError, match=message) as info:
        check_params(params)
    assert "\n" not in str(info.value)


def test_a_missing_section_is_named() -> None:
    params = load_repo_params()
    del params["train"]
    with pytest.raises(ConfigError, match=r"params\.yaml: train: Field required"):
        check_params(params)
