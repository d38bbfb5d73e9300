"""Server-rendered pages (Jinja2 + htmx): public pages, agents' console, residents' portal."""
