"""Compiled parts of fastsock: the native load engine's hot loop (``_loadengine``).

The extension is optional (see pyproject.toml): :func:`load_engine_module` returns it, or
``None`` and the reason it is missing, so callers can fall back and say why once.
"""

from __future__ import annotations

import importlib
from types import ModuleType

MODULE = "fastsock.native._loadengine"


def load_engine_module() -> tuple[ModuleType | None, str]:
    """The ``_loadengine`` extension module, or ``(None, why it is unavailable)``."""
    try:
        # import_module (not ``from . import``) honours sys.modules[MODULE] = None, which is
        # how the tests make the module unavailable.
        return importlib.import_module(MODULE), ""
    except ImportError as err:
        return None, f"the native load engine is not built ({err})"
