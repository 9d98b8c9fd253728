"""Entities: the keys features are looked up by (string ids, as in the raw drops)."""

from feast import Entity, ValueType

customer = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=ValueType.STRING,
    description="A card holder, by customer id (e.g. C00042).",
)

merchant = Entity(
    name="merchant",
    join_keys=["merchant_id"],
    value_type=ValueType.STRING,
    description="A merchant accepting card payments, by merchant id (e.g. M017).",
)
