"""What the web application holds for its lifetime: one store, one governance, one lock."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from territoria.backends import Store
from territoria.core.config import WorkspaceConfig
from territoria.governance import Governance
from territoria.interfaces.web.run_cache import RunCache
from territoria.interfaces.web.settings import WebSettings

if TYPE_CHECKING:
    from fastapi.templating import Jinja2Templates

__all__ = ["SECRETS_ENV", "WebState", "secrets_folder"]

SECRETS_ENV = "TERRITORIA_SECRETS_DIR"


def secrets_folder(root: Path) -> Path:
    """``TERRITORIA_SECRETS_DIR`` if set, else ``<workspace>/secrets`` (0700, never served)."""
    configured = os.environ.get(SECRETS_ENV, "").strip()
    folder = Path(configured).expanduser() if configured else root / "secrets"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    return folder


@dataclass
class WebState:
    config: WorkspaceConfig
    store: Store
    gov: Governance
    settings: WebSettings
    templates: Jinja2Templates
    secrets_dir: Path
    lock: threading.RLock = field(default_factory=threading.RLock)
    extras: dict[str, Any] = field(default_factory=dict)
    runs: RunCache = field(default_factory=RunCache)

    @contextmanager
    def governed(self) -> Iterator[Governance]:
        """The governance, one caller at a time (the store's connections are shared)."""
        with self.lock:
            yield self.gov

    def call(self, fn: Callable[[Governance], Any]) -> Any:
        with self.lock:
            return fn(self.gov)
