"""Named fault points, to prove in tests that an interrupted load leaves nothing behind.

``TERRITORIA_FAULT=<name>`` makes the process kill itself (SIGKILL, no clean-up runs) when it
reaches the fault point of that name. Unset, a fault point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal


def fault_point(name: str) -> None:
    if os.environ.get("TERRITORIA_FAULT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
