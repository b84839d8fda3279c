"""The ``emily`` command line."""

from emily.cli.app import app, main

__all__ = ["app", "main"]
