"""featureops: a feature store and data-versioning platform built on DVC, GE and Feast."""

__version__ = "0.1.0"
