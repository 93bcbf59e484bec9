"""Ctrl-C and SIGTERM while a command starts: end at once, but never in the middle of an import.

Python turns Ctrl-C into a KeyboardInterrupt wherever the main thread happens to
be. Raised inside an import (torch and numpy take most of a second to import),
it leaves half-initialised modules behind that fail later in odd ways (``module
'numpy' has no attribute 'multiply'``, an abort in pybind11), and library code
that catches everything while importing can swallow it altogether, so the
command goes on as if nothing happened. ``StartupInterrupts`` takes SIGINT,
SIGTERM and SIGHUP from the start of a command: outside an import it raises
``Interrupted`` at once; inside one it looks again every 20 ms and raises as
soon as the import has returned. Every signal is also recorded, so one that
some library swallowed is still acted on when ``ganbench run`` hands over to
its own handlers just before training (``hand_over``).
"""

from __future__ import annotations

import contextlib
import signal
import sys

_RETRY_SECONDS = 0.02
_IMPORT_MACHINERY = ("<frozen importlib._bootstrap", "<frozen importlib._bootstrap_external")


class Interrupted(KeyboardInterrupt):
    """A signal that ends a command before it got going; ``exit_code`` is the shell's 128 + signal number."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _inside_import(frame) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith(_IMPORT_MACHINERY):
            return True
        frame = frame.f_back
    return False


class StartupInterrupts:
    """Signal handlers that end a starting command safely (see the module docstring).

    ``install`` in the main thread; ``uninstall`` puts the previous handlers back.
    """

    def __init__(self):
        self.received: list[int] = []
        self._previous: dict[int, object] = {}
        self._handing_over = False

    def install(self) -> None:
        handled = [signal.SIGINT, signal.SIGTERM]
        if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
            handled.append(signal.SIGHUP)  # left alone under nohup, which asks to outlive the session
        if hasattr(signal, "setitimer"):
            handled.append(signal.SIGALRM)
        for signum in handled:
            self._previous[signum] = signal.signal(signum, self._handle)

    def uninstall(self) -> None:
        self._stop_retrying()
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def hand_over(self) -> int | None:
        """Stop raising (the caller installs its own handlers next); the first signal received so far, if any."""
        self._handing_over = True
        self._stop_retrying()
        return self.received[0] if self.received else None

    def _handle(self, signum, frame) -> None:
        if signum != getattr(signal, "SIGALRM", None):
            self.received.append(signum)
        if not self.received or self._handing_over:
            return
        if _inside_import(frame):
            signal.setitimer(signal.ITIMER_REAL, _RETRY_SECONDS)  # look again once the import has returned
            return
        self._stop_retrying()
        raise Interrupted(self.received[0])

    def _stop_retrying(self) -> None:
        if hasattr(signal, "setitimer"):
            signal.setitimer(signal.ITIMER_REAL, 0)


@contextlib.contextmanager
def startup_interrupts():
    """``StartupInterrupts`` installed for the duration of the block (from the main thread only)."""
    guard = StartupInterrupts()
    if sys.platform == "win32" or not _in_main_thread():
        yield guard
        return
    guard.install()
    try:
        yield guard
    finally:
        guard.uninstall()


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
