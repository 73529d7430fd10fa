"""Sphinx configuration of the syncws manual.

Build it with ``sphinx-build -W docs build/docs`` and run its examples against syncws's own
echo server with ``sphinx-build -W -b doctest docs build/doctest`` (``tox -e docs`` does both).
"""

from __future__ import annotations

import glob
import importlib
import os
import sys
from typing import Any, Dict, List, Optional, Tuple

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import syncws  # noqa: E402  (after the path is set, so a checkout documents itself)

project = "syncws"
author = "the syncws authors"
copyright = "2026, the syncws authors"
release = syncws.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.doctest",
    "sphinx.ext.viewcode",
]

html_theme = "furo"
html_title = f"syncws {release}"
exclude_patterns = ["_build"]
default_role = "py:obj"

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}
autoclass_content = "class"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_attr_annotations = False


def _python_inventory() -> Optional[str]:
    """A local copy of Python's objects.inv (Debian's python3-doc), for builds without network.

    Links still point at docs.python.org; only the inventory is read from disk. Without a
    local copy Sphinx downloads it.
    """
    candidates = [os.environ.get("SYNCWS_PYTHON_INVENTORY", "")]
    candidates += sorted(glob.glob("/usr/share/doc/python3*/html/objects.inv"), reverse=True)
    return next((path for path in candidates if path and os.path.exists(path)), None)


intersphinx_mapping: Dict[str, Tuple[str, Any]] = {
    "python": ("https://docs.python.org/3", _python_inventory()),
}
intersphinx_timeout = 10

# -- examples run by `sphinx-build -b doctest` ---------------------------------------------------
# Every page gets `url`, the address of a fresh syncws echo server (with permessage-deflate, as
# `python -m syncws serve` runs it) on a free loopback port; the pages say so where they use it.
doctest_global_setup = """
import os
for _name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
    os.environ.pop(_name, None)   # the examples talk to 127.0.0.1, never through a proxy
import syncws
from syncws.protocol.deflate import server_negotiate as _negotiate
from syncws.server import WebSocketServer as _Server
_echo = _Server(extensions=[_negotiate]).start()
url = _echo.url
"""
doctest_global_cleanup = """
_echo.stop()
"""
doctest_default_flags = 0  # outputs are compared exactly (no ELLIPSIS unless a block asks)


class IfAvailable(SphinxDirective):
    """``.. if-available:: syncws.Name`` includes its content only if ``syncws.Name`` exists.

    For the API reference of features that land separately (reconnection): autodoc would fail
    the ``-W`` build on a name that does not exist yet.
    """

    has_content = True
    required_arguments = 1

    def run(self) -> List[nodes.Node]:
        module_name, _, name = self.arguments[0].rpartition(".")
        if not hasattr(importlib.import_module(module_name), name):
            return []
        container = nodes.container()
        self.state.nested_parse(self.content, self.content_offset, container, match_titles=True)
        return container.children


def setup(app: Sphinx) -> None:
    app.add_directive("if-available", IfAvailable)
