"""Source contracts (the model lives in ``territoria.core.contract``, shared by every layer)."""

from territoria.core.contract import *  # noqa: F403
from territoria.core.contract import __all__  # noqa: F401
