"""User-facing interfaces: the CLI (and later the API and web pages), thin over the library."""
