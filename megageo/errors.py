"""The one exception type users see: a one-line message, raised before any expensive work."""

import sys


class MegageoError(Exception):
    """Bad input or configuration. The CLI prints the message on one line and exits with status 2."""


def report(error: MegageoError) -> int:
    """Print `error` as the CLI's one line, flushed at once, and return the CLI's exit status for it."""
    print(f"megageo: error: {error}", file=sys.stderr, flush=True)
    return 2
