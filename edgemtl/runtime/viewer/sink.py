"""The pipeline's end of the viewer: a FrameSink that hands the newest overlay to the server thread.

Per frame, with no viewer connected, it costs one attribute read; with viewers, at most `max_fps` times a
second one frame copy (the overlay buffer is reused by the next frame) and the results made JSON-ready
(the masks go back to the pipeline after the call). JPEG encoding and sending happen on the server's
thread, never on the pipeline's.

Whether a frame is sent is decided once: the pipeline asks `wants_image` before drawing, and `write_result`
keeps that answer. Asking the clock again there sent the captured, undrawn frame whenever the 15/s clock came
due between the two questions. A caller that feeds the sink by hand, without asking, gets it decided then.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from edgemtl.runtime.overlay import legend
from edgemtl.runtime.results import Prediction
from edgemtl.runtime.sinks import FrameSink
from edgemtl.runtime.sources import Frame
from edgemtl.runtime.viewer.address import ViewerAddress, bind, check_access, parse_address
from edgemtl.runtime.viewer.server import ViewerServer

#: Frames a second a viewer is sent at most: smooth enough to watch a robot, and at 480x640 (~3 ms of CPU a
#: frame to copy, summarize and encode) a few percent of a 2-core device's time (benchmarks/viewer_cost.py).
VIEWER_FPS = 15.0


class ViewerSink(FrameSink):
    """`-o http://HOST:PORT`: serves the page while the pipeline runs; several viewers may watch at once."""

    def __init__(
        self, address: ViewerAddress, listening: Any, token: str | None = None, max_fps: float = VIEWER_FPS
    ) -> None:
        self.address = address
        self.token = token
        self._interval = 1.0 / max_fps
        self._due = 0.0
        self._decided: bool | None = None  # the answer `wants_image` gave for the frame in hand, until written
        self._meta_sent = False
        self.offered = 0  # frames handed to the server (for tests and benchmarks)
        self.server = ViewerServer(listening, token)

    @property
    def url(self) -> str:
        """What a viewer opens (with the token, when there is one)."""
        return f"http://{self.address.host}:{self.address.port}/" + (f"?token={self.token}" if self.token else "")

    def write(self, image: np.ndarray, name: str = "") -> None:
        """A frame without results (a caller using the sink directly): shown as it is."""
        self._offer(image, {"name": name, "results": {}, "live": {}})

    def wants_image(self) -> bool:
        self._decided = self._due_a_frame()  # kept for this frame's write_result: it is drawn only if True
        return self._decided

    def _due_a_frame(self) -> bool:
        return bool(self.server.viewers) and time.perf_counter() >= self._due  # someone watching, and due a frame

    def write_result(self, image: np.ndarray, frame: Frame, prediction: Prediction, live: dict[str, float]) -> None:
        if not self._meta_sent:
            self.server.set_meta({"tasks": legend(prediction)})
            self._meta_sent = True
        decided, self._decided = self._decided, None
        if not (self._due_a_frame() if decided is None else decided):  # None: fed by hand, nobody asked
            return
        latency_ms = (time.perf_counter() - frame.timestamp) * 1e3 if frame.timestamp else 0.0
        state = {
            "frame": frame.index,
            "name": frame.name,
            "latency_ms": round(latency_ms, 2),
            "live": {key: round(value, 2) if isinstance(value, float) else value for key, value in live.items()},
        }
        self._offer(image, state, prediction)

    def _offer(self, image: np.ndarray, state: dict[str, Any], prediction: Prediction | None = None) -> None:
        now = time.perf_counter()
        if now < self._due or not self.server.viewers:
            return
        self._due = now + self._interval
        if prediction is not None:  # here, not on the server's thread: after the call the masks are the pipeline's
            state["results"] = prediction.to_dict()
        self.server.offer(image.copy(), state)
        self.offered += 1

    def close(self) -> None:
        self.server.close()


def open_viewer(uri: str, *, token: str | None = None, max_fps: float = VIEWER_FPS) -> ViewerSink:
    """Check the address and the token rule, bind the port, start serving: all before the pipeline starts."""
    address = parse_address(uri)
    check_access(address, token)
    return ViewerSink(address, bind(address), token, max_fps=max_fps)
