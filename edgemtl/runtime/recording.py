"""`-o run.mcap`: a recording Foxglove and ROS 2 tooling open, written with the `mcap` package.

Topics, each message stamped with the frame's capture time (publish time) and its output time (log time),
both on the wall clock and never going back:

    /camera/image            foxglove.CompressedImage (protobuf), the captured frame as JPEG
    /edgemtl/overlay         foxglove.CompressedImage, what the viewer or the window shows
    /edgemtl/<task>/mask     foxglove.RawImage mono8, the class id of every pixel (per segmentation task)
    /edgemtl/<task>/objects  foxglove.ImageAnnotations, one per frame (per detection task): a closed outline
                             per box in its class's colour and its label `class score #track`, in the
                             frame's pixels, so Foxglove draws them over /camera/image
    /edgemtl/results         JSON (JSON schema edgemtl.Results): every task's result, as predictions.jsonl
    /edgemtl/timing          JSON (edgemtl.Timing): capture-to-output latency, live FPS, dropped frames

The frames are encoded and written on a thread of its own, behind a short queue: a recording keeps every
frame, so a disk slower than the camera slows the pipeline instead of growing memory. The file is finalized
(index, summary) in `close()`, which the pipeline's `with` block reaches however the run ends — its end,
Ctrl-C or SIGTERM, a source failing. Imported only when a .mcap output is asked for.
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import cv2
import numpy as np
from foxglove_schemas_protobuf.Color_pb2 import Color
from foxglove_schemas_protobuf.CompressedImage_pb2 import CompressedImage
from foxglove_schemas_protobuf.ImageAnnotations_pb2 import ImageAnnotations
from foxglove_schemas_protobuf.PointsAnnotation_pb2 import PointsAnnotation
from foxglove_schemas_protobuf.RawImage_pb2 import RawImage
from mcap.writer import CompressionType, Writer
from mcap_protobuf.schema import register_schema

from edgemtl import jsonfile
from edgemtl.errors import OutputError
from edgemtl.kinds.objects import Objects
from edgemtl.runtime.overlay import legend
from edgemtl.runtime.results import Prediction
from edgemtl.runtime.sinks import FrameSink
from edgemtl.runtime.sources import Frame

QUEUE_DEPTH = 8  # frames waiting for the writer thread: enough to absorb a slow write, bounded
JPEG_QUALITY = 85
_WHITE = Color(r=1.0, g=1.0, b=1.0, a=1.0)
_NUMBER = {"type": "number"}
RESULTS_SCHEMA = {
    "title": "edgemtl.Results",
    "type": "object",
    "properties": {
        "frame": {"type": "integer"},
        "name": {"type": "string"},
        "results": {"type": "object", "description": "task name → that task's result, as predictions.jsonl"},
    },
    "required": ["frame", "results"],
}
TIMING_SCHEMA = {
    "title": "edgemtl.Timing",
    "type": "object",
    "properties": {
        "frame": {"type": "integer"},
        "latency_ms": _NUMBER,
        "fps": _NUMBER,
        "latency_p50_ms": _NUMBER,
        "latency_p99_ms": _NUMBER,
        "dropped": {"type": "integer"},
    },
    "required": ["frame", "latency_ms"],
}


@dataclass
class _Item:
    frame: Frame
    overlay: np.ndarray  # a copy: the overlay's buffer is reused by the next frame
    masks: dict[str, np.ndarray]
    results: dict[str, Any]
    timing: dict[str, Any]
    capture_ns: int
    output_ns: int
    legend: list[dict[str, Any]] | None = None
    objects: dict[str, Objects] = dataclasses.field(default_factory=dict)  # per detection task


def image_annotations(objects: Objects, stamp_ns: int, font_size: float = 12.0) -> ImageAnnotations:
    """Foxglove's ImageAnnotations of one frame's objects: per box a LINE_LOOP outline (x right, y down, frame
    pixels) in its class's colour, and its label (`class score #track`) at the top-left corner on that colour."""
    message = ImageAnnotations()
    for box, bgr, label in zip(objects.boxes.tolist(), objects.colors().tolist(), objects.labels()):
        color = Color(r=bgr[2] / 255, g=bgr[1] / 255, b=bgr[0] / 255, a=1.0)
        outline = message.points.add(type=PointsAnnotation.Type.LINE_LOOP, thickness=2.0, outline_color=color)
        outline.timestamp.FromNanoseconds(stamp_ns)
        x1, y1, x2, y2 = box
        for x, y in ((x1, y1), (x2, y1), (x2, y2), (x1, y2)):
            outline.points.add(x=x, y=y)
        text = message.texts.add(text=label, font_size=font_size, text_color=_WHITE, background_color=color)
        text.timestamp.FromNanoseconds(stamp_ns)
        text.position.x, text.position.y = x1, max(0.0, y1 - font_size)
    return message


class _Clock:
    """perf_counter times (how frames are stamped) as wall-clock nanoseconds that never go back."""

    def __init__(self) -> None:
        self.wall_ns, self.perf = time.time_ns(), time.perf_counter()
        self.last = 0

    def ns(self, perf: float) -> int:
        self.last = max(self.last, self.wall_ns + int((perf - self.perf) * 1e9))
        return self.last


class McapSink(FrameSink):
    """Records frames, overlays, masks, results and timings; see the module's docstring for the topics."""

    def __init__(self, path: Path, *, overwrite: bool = False) -> None:
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise OutputError(f"output {self.path} exists: choose another name, or allow overwriting it (--overwrite)")
        try:
            self._file: BinaryIO = open(self.path, "wb")  # noqa: SIM115 - closed in close(), however the run ends
        except OSError as exc:
            raise OutputError(
                f"cannot write MCAP recording {self.path}: {exc.strerror or exc}: expected a writable file path"
            ) from None
        self._writer = Writer(self._file, compression=CompressionType.LZ4)
        self._writer.start(profile="", library="edgemtl")
        self._channels: dict[str, int] = {}
        self._schemas: dict[str, int] = {}
        self._clock = _Clock()
        self.frames = 0
        self.counts: dict[str, int] = {}  # messages written per topic
        self._items: queue.Queue[_Item | None] = queue.Queue(maxsize=QUEUE_DEPTH)
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._write_all, name="edgemtl-mcap", daemon=True)
        self._thread.start()

    def write(self, image: np.ndarray, name: str = "") -> None:
        """A frame without results (a caller using the sink directly): recorded as the captured image."""
        frame = Frame(self.frames, name, image.copy(), time.perf_counter())
        stamp = self._clock.ns(frame.timestamp)
        self._enqueue(_Item(frame, frame.image, {}, {}, {}, stamp, stamp))

    def write_result(self, image: np.ndarray, frame: Frame, prediction: Prediction, live: dict[str, float]) -> None:
        # Copies of all it keeps: the writer thread encodes later, and the pipeline reuses the arrays.
        frame = dataclasses.replace(frame, image=frame.image.copy(), prepared=None)
        now = time.perf_counter()
        capture_ns = self._clock.ns(frame.timestamp or now)
        masks = {name: result.mask.copy() for name, result in prediction.items() if result.mask is not None}
        timing = {
            "latency_ms": round((now - frame.timestamp) * 1e3, 3) if frame.timestamp else 0.0,
            **{
                key: round(live[key], 3)
                for key in ("fps", "latency_p50_ms", "latency_p99_ms", "dropped")
                if key in live
            },
        }
        item = _Item(frame, image.copy(), masks, prediction.to_dict(), timing, capture_ns, self._clock.ns(now))
        item.legend = None if self.frames else legend(prediction)
        item.objects = {name: result.objects for name, result in prediction.items() if result.objects is not None}
        self._enqueue(item)

    def _enqueue(self, item: _Item) -> None:
        if self._error is not None:
            raise OutputError(f"cannot write MCAP recording {self.path}: {self._error}")
        self._items.put(item)
        self.frames += 1

    # --- the writer thread ----------------------------------------------------------------------------

    def _write_all(self) -> None:
        while (item := self._items.get()) is not None:
            if self._error is not None:
                continue  # keep draining, so the pipeline never blocks on a dead writer
            try:
                self._write_item(item)
            except (OSError, ValueError) as exc:
                self._error = exc

    def _write_item(self, item: _Item) -> None:
        frame, stamp = item.frame, item.capture_ns
        if item.legend is not None:  # the first frame: the model's tasks and classes, once
            self._writer.add_metadata("edgemtl.tasks", {"tasks": json.dumps(item.legend)})
        self._image("/camera/image", frame.image, stamp, item.output_ns)
        self._image("/edgemtl/overlay", item.overlay, stamp, item.output_ns)
        for task, mask in item.masks.items():
            message = RawImage(frame_id="camera", width=mask.shape[1], height=mask.shape[0], encoding="mono8")
            message.step, message.data = mask.shape[1], np.ascontiguousarray(mask).tobytes()
            message.timestamp.FromNanoseconds(stamp)
            self._protobuf(f"/edgemtl/{task}/mask", message, stamp, item.output_ns)
        for task, objects in item.objects.items():  # one message per frame, also when it holds no box
            self._protobuf(f"/edgemtl/{task}/objects", image_annotations(objects, stamp), stamp, item.output_ns)
        if item.results or item.timing:
            results = {"frame": frame.index, "name": frame.name, "results": item.results}
            self._json("/edgemtl/results", RESULTS_SCHEMA, results, stamp, item.output_ns)
            self._json("/edgemtl/timing", TIMING_SCHEMA, {"frame": frame.index, **item.timing}, stamp, item.output_ns)

    def _image(self, topic: str, image: np.ndarray, stamp: int, logged: int) -> None:
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise ValueError(f"OpenCV cannot encode a {image.shape} frame as JPEG")
        message = CompressedImage(frame_id="camera", format="jpeg", data=encoded.tobytes())
        message.timestamp.FromNanoseconds(stamp)
        self._protobuf(topic, message, stamp, logged)

    def _protobuf(self, topic: str, message: Any, stamp: int, logged: int) -> None:
        name = type(message).DESCRIPTOR.full_name
        if name not in self._schemas:
            self._schemas[name] = register_schema(self._writer, type(message))
        self._add(topic, "protobuf", self._schemas[name], message.SerializeToString(), stamp, logged)

    def _json(self, topic: str, schema: dict[str, Any], value: dict[str, Any], stamp: int, logged: int) -> None:
        name = schema["title"]
        if name not in self._schemas:
            self._schemas[name] = self._writer.register_schema(name, "jsonschema", json.dumps(schema).encode())
        self._add(topic, "json", self._schemas[name], jsonfile.dumps(value, default=float).encode(), stamp, logged)

    def _add(self, topic: str, encoding: str, schema_id: int, data: bytes, stamp: int, logged: int) -> None:
        if topic not in self._channels:
            self._channels[topic] = self._writer.register_channel(topic, encoding, schema_id)
        sequence = self.counts[topic] = self.counts.get(topic, 0) + 1
        self._writer.add_message(self._channels[topic], logged, data, stamp, sequence=sequence)

    # --- finalizing -----------------------------------------------------------------------------------

    def close(self) -> None:
        """Write what is queued, then the index and summary: the file opens in any MCAP reader."""
        if self._closed:
            return
        self._closed = True
        self._items.put(None)
        self._thread.join()
        try:
            self._writer.finish()
            self._file.flush()
            os.fsync(self._file.fileno())
        except (OSError, ValueError) as exc:
            self._error = self._error or exc
        finally:
            self._file.close()
        if self._error is not None:
            raise OutputError(f"cannot write MCAP recording {self.path}: {self._error}")
