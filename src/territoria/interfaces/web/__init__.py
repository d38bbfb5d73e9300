"""The web interfaces: REST API, agents' console and residents' portal (``territoria serve``)."""

from territoria.interfaces.web.app import create_app
from territoria.interfaces.web.settings import WebSettings, load_web_settings

__all__ = ["WebSettings", "create_app", "load_web_settings"]
