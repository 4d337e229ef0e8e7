"""Ctrl-C and SIGTERM between frames, never inside one.

Python raises KeyboardInterrupt at whatever bytecode the main thread is on. In a camera loop that can be
after a frame went into the video file and before it was counted, so the summary says 24 frames of a
file that holds 25, or between a results line and its frame. While a loop holds `StopSignals`, the two
signals only ask it to stop; it finishes the frame in hand, leaves, and then hands the signal to the
handler that was there before (the CLI's, which turns SIGTERM into exit code 143, or Python's own, which
raises KeyboardInterrupt), so everything outside the loop sees the signal as it would have. A second
signal before the loop has stopped goes to that handler at once; an error raised in the block wins over a
pending signal (it is what the user must see).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """`with StopSignals() as stopping:` … `if stopping.requested: break` … — see the module docstring.

    Off the main thread (an application's worker) signals cannot be caught, and nothing changes. A signal
    whose handler was not Python code (ignored, or the system default) is left as it was.
    """

    def __init__(self) -> None:
        self.received: list[int] = []
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return bool(self.received)

    def _latch(self, signum: int, frame: FrameType | None) -> None:
        if self.received:  # a second signal: the loop did not stop in time, so act on it now, as before
            self._previous[signum](signum, frame)
        self.received.append(signum)

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is not threading.main_thread():
            return self
        for signum in _SIGNALS:
            if callable(signal.getsignal(signum)):
                self._previous[signum] = signal.signal(signum, self._latch)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        if kind is None and self.received:  # an error leaving the block is reported, not hidden by the signal
            self._previous[self.received[0]](self.received[0], None)  # raises, as the signal would have
