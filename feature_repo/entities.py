"""Entities: the keys features are looked up by."""

from feast import Entity, ValueType

from featureops.catalog import ENTITY_KEY

machine = Entity(
    name="machine",
    join_keys=[ENTITY_KEY],
    value_type=ValueType.INT64,
    description="A machine of the fleet, by its registry id.",
)
