"""Helpers for tests that drive a real GUI event loop: Xvfb for Tk, offscreen Qt.

Kept out of conftest so that only the tests that import them pay for them.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import subprocess
import tempfile
from typing import Any, Iterator

import pytest


@contextlib.contextmanager
def xvfb_display(timeout: float = 10.0) -> Iterator[str]:
    """Start a private Xvfb server and yield its display name, e.g. ``":3"``.

    Xvfb picks a free display number itself (``-displayfd``), so parallel runs
    do not collide.  The server is terminated and reaped on exit.  Skips the
    test when Xvfb is not installed (``apt-get install xvfb``).
    """
    exe = shutil.which("Xvfb")
    if exe is None:
        pytest.skip("Xvfb is not installed (apt-get install -y xvfb)")
    read_fd, write_fd = os.pipe()
    with tempfile.TemporaryFile() as log, os.fdopen(read_fd, "rb", buffering=0) as reader:
        try:
            proc = subprocess.Popen(
                [exe, "-displayfd", str(write_fd), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                pass_fds=(write_fd,),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        finally:
            os.close(write_fd)
        try:
            number = b""
            while not number.endswith(b"\n"):  # Xvfb writes "N\n" once it accepts clients
                ready, _, _ = select.select([reader], [], [], timeout)
                chunk = reader.read(16) if ready else b""
                if not chunk:
                    log.seek(0)
                    raise RuntimeError(f"Xvfb did not start: {log.read().decode(errors='replace')}")
                number += chunk
            yield ":" + number.decode().strip()
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run_tk(root: Any, timeout: float) -> bool:
    """Run ``root.mainloop()`` until something calls ``root.quit()``.

    Gives up after ``timeout`` seconds; returns ``False`` if it had to.
    """
    import tkinter

    timed_out = []

    def give_up() -> None:
        timed_out.append(True)
        root.quit()

    after_id = root.after(int(timeout * 1000), give_up)
    root.mainloop()
    if not timed_out:
        with contextlib.suppress(tkinter.TclError):  # root destroyed meanwhile
            root.after_cancel(after_id)
    return not timed_out


def qt_application() -> Any:
    """Return the process's PySide6 QApplication, made offscreen if new.

    Skips the test when PySide6 is not installed (``pip install PySide6``).
    """
    widgets = pytest.importorskip("PySide6.QtWidgets", reason="PySide6 is not installed (pip install PySide6)")
    app = widgets.QApplication.instance()
    if app is None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # no screen needed
        app = widgets.QApplication([])
    return app


def run_qt(loop: Any, timeout: float) -> bool:
    """Run the ``QEventLoop`` ``loop`` until ``loop.quit()`` is called.

    Gives up after ``timeout`` seconds; returns ``False`` if it had to.
    """
    from PySide6.QtCore import QTimer

    timer = QTimer()
    timer.setSingleShot(True)
    timer.timeout.connect(loop.quit)
    timer.start(int(timeout * 1000))
    loop.exec()
    finished = timer.isActive()
    timer.stop()
    return finished
