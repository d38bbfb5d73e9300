"""Browser tests: the real server driven by Debian's chromium through Playwright."""
