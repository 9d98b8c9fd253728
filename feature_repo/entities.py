"""Entities: the keys features are looked up by."""

from feast import Entity, ValueType

machine = Entity(
    name="machine",
    join_keys=["machine_id"],
    value_type=ValueType.INT64,
    description="A machine of the fleet, by its registry id.",
)
