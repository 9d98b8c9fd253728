"""The one error type for bad configuration: its message is one line naming the key."""


class ConfigError(ValueError):
    """A configuration value is missing or malformed."""
