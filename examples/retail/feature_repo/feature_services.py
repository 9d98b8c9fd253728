"""Feature services: the exact, versioned feature sets models consume.

Never edit a released service in place: add `fraud_model_v2` and move the model to it.
Every feature here is non-null for an active customer (std over 1h or 1d is null below two
transactions, so only the 7d one is served): serving refuses to guess missing values.
"""

from feast import FeatureService
from feature_views import customer_merchant, customer_profile, customer_spend, merchant_activity

fraud_model_v1 = FeatureService(
    name="fraud_model_v1",
    features=[
        customer_spend[
            [
                "amount_z",
                "channel",
                "amount_count_1h",
                "amount_sum_1h",
                "amount_count_1d",
                "amount_sum_1d_z",
                "amount_mean_7d_z",
                "amount_max_7d_z",
                "amount_std_7d",
                "amount_to_mean_7d",
                "amount_to_max_7d",
                "days_since_signup",
            ]
        ],
        customer_merchant[["pair_amount_count_30d", "pair_web_count_30d", "new_merchant"]],
        merchant_activity[["merchant_amount_count_1d", "merchant_amount_mean_7d"]],
        customer_profile[["segment"]],
    ],
    description="Scores a card transaction as fraud from features known at transaction time.",
    tags={"owner": "featureops", "label": "is_fraud"},
)
