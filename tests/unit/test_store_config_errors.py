"""A feature_store.yaml Feast refuses is one line naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from featureops.store.registry import StoreConfigError, feature_store


def test_an_invalid_feature_store_yaml_is_one_line_naming_file_and_field(tmp_path: Path) -> None:
    repo = tmp_path / "feature_repo"
    repo.mkdir()
    (repo / "feature_store.yaml").write_text(
        "project: p\nprovider: local\nregistry: ../registry.db\n"
        "online_store:\n  type: redis\n  connection_string: '127.0.0.1:1'\n"
        "  path: ../online_store.db\n"  # a SQLite key left behind: Feast forbids it for Redis
        "entity_key_serialization_version: 3\n"
    )
    with pytest.raises(StoreConfigError) as caught:
        feature_store(repo)
    message = str(caught.value)
    assert "\n" not in message
    assert str(repo / "feature_store.yaml") in message and "path" in message, message
