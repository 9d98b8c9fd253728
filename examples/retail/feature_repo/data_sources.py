"""Offline sources: the transform stage's Parquet of each table declared in params.yaml."""

from featureops.feast_defs import FeatureTables

tables = FeatureTables.for_repo(__file__)

customer_spend_source = tables.source(
    "customer_spend", "Per-customer spend windows on the transaction timeline."
)
customer_merchant_source = tables.source(
    "customer_merchant",
    "Per customer and merchant: history of the pair on the transaction timeline.",
)
merchant_activity_source = tables.source(
    "merchant_activity", "Per-merchant activity windows on the transaction timeline."
)
customer_profile_source = tables.source(
    "customer_profile", "Customer registry: segment, from signup."
)
