"""The one exception type users see: a one-line message, raised before any expensive work."""


class MegageoError(Exception):
    """Bad input or configuration. The CLI prints the message on one line and exits with status 2."""
