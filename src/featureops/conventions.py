"""Column names every stage agrees on (Feast's conventions for entity and feature frames)."""

EVENT_TIMESTAMP = "event_timestamp"  # entity time in entity frames; event time in feature tables
CREATED = "created"  # when a row became known (Feast's created_timestamp_column)
