"""The ``territoria`` command line."""

from territoria.interfaces.cli.app import app, main

__all__ = ["app", "main"]
