"""Territoria: 4P public services for French local authorities.

The package is layered (imports go one way only)::

    core ← backends ← ingest → raw → identity → registry → apps → interfaces

``import territoria`` stays light: heavy or optional engines load lazily.
"""

__version__ = "0.1.0"
