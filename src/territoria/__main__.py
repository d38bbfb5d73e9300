"""``python -m territoria`` runs the command line."""

from territoria.interfaces.cli import main

main()
