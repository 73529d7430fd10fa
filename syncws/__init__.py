"""syncws: the browser's WebSocket API for threaded Python code."""

__version__ = "0.1.0"
