"""Feature views over the declared tables; schemas come from params.yaml: features."""

from datetime import timedelta

from data_sources import (
    customer_merchant_source,
    customer_profile_source,
    customer_spend_source,
    merchant_activity_source,
    tables,
)
from entities import customer, merchant
from feast import FeatureView

# TTLs: retrieval gives nulls for rows older than the TTL at the entity time, and serving
# flags them as stale. A customer's features are those of their latest transaction.
customer_spend = FeatureView(
    name="customer_spend",
    entities=[customer],
    ttl=timedelta(days=7),
    schema=tables.schema("customer_spend"),
    source=customer_spend_source,
    online=True,
    description="The customer's latest transaction with 1h/1d/7d spend windows and tenure.",
)

customer_merchant = FeatureView(
    name="customer_merchant",
    entities=[customer, merchant],
    ttl=timedelta(days=30),
    schema=tables.schema("customer_merchant"),
    source=customer_merchant_source,
    online=True,
    description="How well the customer knows the merchant: 30d count, mean, new merchant.",
)

merchant_activity = FeatureView(
    name="merchant_activity",
    entities=[merchant],
    ttl=timedelta(days=7),
    schema=tables.schema("merchant_activity"),
    source=merchant_activity_source,
    online=True,
    description="The merchant's transaction count and amounts over 1d and 7d.",
)

customer_profile = FeatureView(
    name="customer_profile",
    entities=[customer],
    ttl=timedelta(0),  # unlimited: static attributes,
    schema=tables.schema("customer_profile"),
    source=customer_profile_source,
    online=True,
    description="Static customer attributes from the customer file.",
)
