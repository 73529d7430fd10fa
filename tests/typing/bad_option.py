"""A misspelled option: ``mypy --strict`` must reject it (run by tests/project/test_typing.py)."""

import syncws

ws = syncws.connect("ws://127.0.0.1:8765/", timout=5)
