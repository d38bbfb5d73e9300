"""4P applications: each reads personal data only through ``territoria.governance``."""
