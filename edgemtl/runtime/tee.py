"""Several outputs for one pipeline: watch in a browser while recording MCAP (`TeeSink([viewer, recording])`).

Each frame goes to every sink in turn; the run stops when any of them asks; closing closes them all,
even when one fails, and then raises the first failure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgemtl.runtime.results import Prediction
from edgemtl.runtime.sinks import FrameSink
from edgemtl.runtime.sources import Frame


class TeeSink(FrameSink):
    def __init__(self, sinks: Sequence[FrameSink]) -> None:
        self.sinks = list(sinks)

    @property
    def stop_requested(self) -> bool:  # type: ignore[override]
        return any(sink.stop_requested for sink in self.sinks)

    def write(self, image: np.ndarray, name: str = "") -> None:
        for sink in self.sinks:
            sink.write(image, name)

    def write_result(self, image: np.ndarray, frame: Frame, prediction: Prediction, live: dict[str, float]) -> None:
        for sink in self.sinks:
            sink.write_result(image, frame, prediction, live)

    def wants_image(self) -> bool:
        return any(sink.wants_image() for sink in self.sinks)

    def close(self) -> None:
        failure: BaseException | None = None
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:  # the others still finalize
                failure = failure or exc
        if failure is not None:
            raise failure
