"""Exceptions with messages a user can act on (row, column, what to change)."""


class MMPOError(Exception):
    """Base class: every error mmpo raises on purpose derives from it, so the CLI can print it
    as one clear line instead of a stack trace."""


class DataError(MMPOError):
    """A data file or row is unusable; the message names the row and column."""


class ConfigError(MMPOError):
    """A config key or value is wrong; the message names the key."""
