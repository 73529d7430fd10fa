"""The compiled accelerator (``syncws._speedups``), when it is there and matches this code.

An extension module left by a build of another version of syncws (built in place, then the
sources updated) would otherwise be imported as it is, with functions missing or doing
something else. Its interface version is checked first: on a mismatch the pure-Python helpers
are used, and a ``RuntimeWarning`` names the file to rebuild or delete.
"""

from __future__ import annotations

import os
import warnings
from types import ModuleType
from typing import Optional

__all__ = ["API_VERSION", "load"]

#: The interface of ``syncws/_speedups.c`` this code expects (the module's ``API_VERSION``).
#: Raised, in both places, with every change to what the C functions take or return.
API_VERSION = 1


def load() -> Optional[ModuleType]:
    """The accelerator, or None: turned off (``SYNCWS_NO_EXTENSIONS`` is set), not built, or
    built from another version of the C source (with a warning)."""
    if os.environ.get("SYNCWS_NO_EXTENSIONS"):
        return None
    try:
        from syncws import _speedups  # type: ignore[attr-defined, unused-ignore]
    except ImportError:
        return None
    found = getattr(_speedups, "API_VERSION", None)
    if found != API_VERSION:
        where = getattr(_speedups, "__file__", "syncws._speedups")
        warnings.warn(
            f"{where} was built from another version of syncws (interface {found}, expected "
            f"{API_VERSION}): the pure-Python helpers are used; reinstall syncws to rebuild "
            "it, or delete the file",
            RuntimeWarning,
        )
        return None
    return _speedups  # type: ignore[no-any-return, unused-ignore]
