"""The camera loop: capture → infer → overlay → output, measuring FPS, latency and drops as it runs.

The stages overlap on three threads, so a 2-core machine keeps the model busy instead of waiting
for a decoder or a drawing call:

    reader thread     decode (a live source keeps only the newest frame; a file is read ahead, no drops),
                      and the resize to the model's input (Engine.prepare)
    inference thread  Engine.predict on the prepared frame
    calling thread    overlay, statistics text, output (a window wants one thread; Ctrl-C lands here)

Decoded images, resized inputs and the graph's outputs come from a `BufferPool` and go back to it once
the frame is written (on the CPU; the CUDA path binds its device buffers once per shape and copies its
outputs out), and the Overlay draws into buffers of its own: with a frame-sized file nothing of a
frame's size is allocated per frame once the run is steady. (The host path still blows each mask up to
the frame's size in a new array.) Latency is measured from the moment a frame was captured to the
moment its output was written.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np

from edgemtl.runtime.buffers import BufferPool
from edgemtl.runtime.engine import Engine
from edgemtl.runtime.overlay import Overlay, draw_text_block
from edgemtl.runtime.results import Prediction
from edgemtl.runtime.results_stream import ResultsSink, frame_record
from edgemtl.runtime.sinks import FrameSink
from edgemtl.runtime.sources import Frame, FrameSource, ThreadedSource
from edgemtl.runtime.steady import Steadier
from edgemtl.runtime.stop_signals import StopSignals
from edgemtl.runtime.tracking import SourceTracking

log = logging.getLogger("edgemtl")

PERCENTILES = (50, 90, 99)
_LIVE_WINDOW_S = 1.0  # live FPS and latency are over the last second: recent enough to react, stable to read
_MEASURING = "measuring..."  # the statistics' text until two frames were written
_TEXT_REFRESH_S = 0.5  # the statistics drawn on the frame change at most this often, so they can be read
END = object()  # the inference thread's last item


class LatencyHistogram:
    """Percentiles of a whole run in constant memory: counts in log-spaced bins about 1 % wide.

    A camera may run for days; keeping every latency would grow without bound.
    """

    _EDGES = np.geomspace(1e-5, 1e3, 1853)  # seconds: 10 µs .. 1000 s, ratio 1.01 between edges

    def __init__(self) -> None:
        self.counts = np.zeros(len(self._EDGES) + 1, np.int64)
        self.total = 0

    def add(self, seconds: float) -> None:
        self.counts[np.searchsorted(self._EDGES, seconds)] += 1
        self.total += 1

    def percentile(self, q: float) -> float:
        """The q-th percentile in seconds (the geometric middle of its bin); 0.0 before any sample."""
        if not self.total:
            return 0.0
        index = int(np.searchsorted(np.cumsum(self.counts), q / 100 * self.total))
        index = min(max(index, 1), len(self._EDGES) - 1)
        return float(np.sqrt(self._EDGES[index - 1] * self._EDGES[index]))


@dataclass
class PipelineStats:
    """What a run did: the final summary, and (on the way) what the live reports show."""

    source: str
    output: str
    engine: str
    frames: int = 0
    dropped: int = 0
    seconds: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)  # "p50", "p90", "p99"
    interrupted: bool = False  # stopped by Ctrl-C, or the window asked to stop; files are complete either way
    error: str | None = None  # why this source stopped early, when one of several cameras died (the others went on)
    results_dropped: int = 0  # results lines a slow or absent controller did not get (the stream's total)
    buffers: int = 0  # arrays the run's pool allocated (decoded frames, resized inputs, graph outputs): the frames
    #                   in flight, flat however long it runs, since each goes back once its frame is written

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fps": round(self.fps, 2)}

    def lines(self) -> list[str]:
        """The summary as printed (a several-camera run's `MulticamStats.lines` gives one per source)."""
        return [self.describe()]

    def describe(self) -> str:
        latency = " / ".join(f"{self.latency_ms.get(f'p{q}', 0.0):.1f}" for q in PERCENTILES)
        died = f"; stopped early: {self.error}" if self.error else ""
        return (
            f"{self.frames} frames in {self.seconds:.1f} s: {self.fps:.1f} FPS, capture-to-output latency "
            f"p50 / p90 / p99 {latency} ms, {self.dropped} dropped{died}"
        )


class _LiveMeter:
    """FPS and latency over the last second, for the text on the frame and the periodic log line."""

    def __init__(self) -> None:
        self.recent: collections.deque[tuple[float, float]] = collections.deque()  # (output time, latency)

    def add(self, now: float, latency: float) -> None:
        self.recent.append((now, latency))
        while self.recent and now - self.recent[0][0] > _LIVE_WINDOW_S:
            self.recent.popleft()

    def snapshot(self, dropped: int, frames: int) -> dict[str, float]:
        """The live figures as numbers, for a sink that shows them (the web viewer) and for `text`."""
        live = {"fps": 0.0, "latency_p50_ms": 0.0, "latency_p99_ms": 0.0, "dropped": dropped, "frames": frames}
        if len(self.recent) >= 2:
            span = self.recent[-1][0] - self.recent[0][0]
            latencies = np.array([latency for _, latency in self.recent]) * 1e3
            p50, p99 = np.percentile(latencies, [50, 99])
            live.update(fps=(len(self.recent) - 1) / span if span > 0 else 0.0, latency_p50_ms=p50, latency_p99_ms=p99)
        return live

    def text(self, dropped: int) -> str:
        if len(self.recent) < 2:
            return _MEASURING
        live = self.snapshot(dropped, 0)
        return (
            f"{live['fps']:.1f} FPS  latency {live['latency_p50_ms']:.1f} ms (p99 {live['latency_p99_ms']:.1f})  "
            f"dropped {dropped}"
        )


class Lane:
    """One source's way out: tracked and steadied results, overlay, sink, results line and statistics, on the
    calling thread. `run_pipeline` has one; `run_multicamera` one per source, so each keeps its own output,
    stats and object tracks (a batched tick never mixes sources' tracks)."""

    def __init__(
        self,
        source: FrameSource,
        sink: FrameSink,
        stats: PipelineStats,
        *,
        steadier: Steadier | None = None,
        results: ResultsSink | None = None,
        draw_stats: bool = True,
        index: int = 0,
        tracking: SourceTracking | None = None,
    ) -> None:
        self.source, self.sink, self.stats, self.index = source, sink, stats, index
        self.steadier, self.results, self.draw_stats, self.tracking = steadier, results, draw_stats, tracking
        self.overlay, self.histogram, self.meter = Overlay(), LatencyHistogram(), _LiveMeter()
        self.text, self.next_text = _MEASURING, 0.0
        self.live = self.meter.snapshot(0, 0)  # the figures a sink may show (the web viewer), refreshed with the text

    def emit(self, frame: Frame, prediction: Prediction) -> float:
        """Track, steady, draw, write and report one frame; returns the time it was written (perf_counter)."""
        if self.tracking is not None:  # a live source's capture times step the motion model; a file's are read times
            prediction = self.tracking.update(prediction, frame.timestamp if self.source.live else None)
        steady = self.steadier.update(prediction) if self.steadier else None
        if self.sink.wants_image():  # not for `-o none`, nor a viewer that nobody watches or just got one
            image = self.overlay.render(frame.image, prediction, steady)
            if self.draw_stats:
                draw_text_block(image, [self.text], bottom=True)
        else:
            image = frame.image
        self.sink.write_result(image, frame, prediction, self.live)
        now = time.perf_counter()
        latency = now - frame.timestamp
        if self.results is not None:
            mask = self.results.mask
            record = frame_record(
                frame, prediction, steady, latency, source=self.stats.source, source_index=self.index, mask=mask
            )
            self.results.send(record)
        self.histogram.add(latency)
        self.meter.add(now, latency)
        self.stats.frames += 1
        if now >= self.next_text or self.text == _MEASURING:  # a fast file shows figures from its 2nd frame on
            self.text, self.next_text = self.meter.text(self.source.dropped), now + _TEXT_REFRESH_S
            self.live = self.meter.snapshot(self.source.dropped, self.stats.frames)
        return now

    def finish(self, seconds: float) -> PipelineStats:
        """The summary: run time, drops and latency percentiles filled in."""
        self.stats.seconds = seconds
        self.stats.dropped = self.source.dropped
        self.stats.latency_ms = {f"p{q}": round(self.histogram.percentile(q) * 1e3, 3) for q in PERCENTILES}
        self.stats.results_dropped = self.results.dropped if self.results is not None else 0
        return self.stats


def put_unless_stopped(items: queue.Queue, item: object, stop: threading.Event) -> bool:
    """Put unless asked to stop; False when the consumer went away."""
    while not stop.is_set():
        try:
            items.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def next_item(items: queue.Queue, stopping: StopSignals) -> object:
    """The next item, or END once Ctrl-C or SIGTERM asked the loop to stop (checked ten times a second)."""
    while not stopping.requested:
        try:
            return items.get(timeout=0.1)
        except queue.Empty:
            continue
    return END


def pooled_prepare(engine: Engine, pool: BufferPool) -> Callable[[np.ndarray], np.ndarray]:
    """`engine.prepare` resizing into arrays from `pool` (a frame-sized file's frame goes in as it is)."""
    if engine.frame_sized:
        return engine.prepare
    shape = (*engine.input_size, 3)

    def prepare(image: np.ndarray) -> np.ndarray:
        buffer = pool.take(shape)
        prepared = engine.prepare(image, buffer)
        if prepared is not buffer:  # a frame already at the model's size goes in as it is
            pool.give_back(buffer)
        return prepared

    return prepare


def give_back(pool: BufferPool, written: Sequence[tuple[Frame, Prediction]]) -> None:
    """Written frames' arrays back to the pool: images, resized inputs and graph outputs, in one call, so an
    array two predictions share (a batch's outputs) goes back once, not again after someone took it."""
    pool.give_back(*(a for frame, prediction in written for a in (frame.image, frame.prepared, *prediction.buffers)))


def _infer(
    engine: Engine,
    source: FrameSource,
    items: queue.Queue,
    stop: threading.Event,
    max_frames: int | None,
    pool: BufferPool,
) -> None:
    """The inference thread: frames in, (frame, prediction) out; an error travels to the caller as an item."""
    count = 0
    try:
        while not stop.is_set() and (max_frames is None or count < max_frames):
            frame = source.read()
            if frame is None:
                break
            prediction = engine.predict(frame.image, prepared=frame.prepared, pool=pool)
            if not put_unless_stopped(items, (frame, prediction), stop):
                return
            count += 1
    except Exception as exc:  # an EdgemtlError or anything unexpected: the calling thread re-raises it
        put_unless_stopped(items, exc, stop)
    put_unless_stopped(items, END, stop)


def run_pipeline(
    engine: Engine,
    source: FrameSource,
    sink: FrameSink,
    *,
    max_frames: int | None = None,
    draw_stats: bool = True,
    report: Callable[[str], None] | None = log.info,
    report_every_s: float = 5.0,
    output_name: str = "",
    steadier: Steadier | None = None,
    results: ResultsSink | None = None,
    tracking: SourceTracking | None = None,
) -> PipelineStats:
    """Run until the source ends, `max_frames` are done, the sink asks to stop, or Ctrl-C.

    Ctrl-C is the normal way to stop a camera: it ends the loop, not the program, and the summary
    says `interrupted`. `report` gets a status line every `report_every_s` seconds (None: silent).
    The caller opens and closes `source` and `sink` (a `with` block finalizes the video file), and `results`
    (a results stream, `open_results`) when given. `steadier` adds steadied results beside the raw ones;
    `tracking` gives detected objects their track ids.
    (Over 60 lines: the threads' setup, loop and teardown share their queues and events, and read best
    together.)
    """
    stats = PipelineStats(source.uri, output_name or type(sink).__name__, engine.describe())
    engine.warmup()
    # Decode and resize on a reader thread while the model runs; a live source drops stale frames before it.
    # Queues between stages: short for a live source (every queued frame is latency), deeper for a file
    # (it absorbs jitter between stages, so no stage waits: measured ~5 % more frames per second).
    depth = 1 if source.live else 4
    pool = BufferPool()
    source.use_pool(pool)
    feed = ThreadedSource(source, drop_stale=False, depth=depth, prepare=pooled_prepare(engine, pool))
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    worker = threading.Thread(
        target=_infer, args=(engine, feed, items, stop, max_frames, pool), name="edgemtl-infer", daemon=True
    )
    lane = Lane(source, sink, stats, steadier=steadier, results=results, draw_stats=draw_stats, tracking=tracking)
    # The stages are the parallelism here: OpenCV's own worker pool, shared by three threads, only
    # adds contention (measured: ~25 % fewer frames per second on 2 cores). Restored at the end.
    opencv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    start = time.perf_counter()
    next_report = start
    worker.start()
    try:
        with StopSignals() as stopping:  # a signal stops the loop between frames, so the counts match the files
            while (item := next_item(items, stopping)) is not END:
                if isinstance(item, Exception):
                    raise item
                now = lane.emit(*item)
                give_back(pool, [item])
                if report is not None and now >= next_report:
                    report(f"{stats.frames} frames, {lane.meter.text(source.dropped)}")
                    next_report = now + report_every_s
                if sink.stop_requested:
                    stats.interrupted = True
                    break
            stats.interrupted = stats.interrupted or stopping.requested
    except KeyboardInterrupt:  # StopSignals hands the signal on as it leaves
        stats.interrupted = True
    finally:
        seconds = time.perf_counter() - start
        stop.set()
        worker.join()  # bounded: it checks `stop` between frames, and a source read returns or times out
        feed.close()
        source.use_pool(None)  # the caller's source reads into arrays of its own again
        cv2.setNumThreads(opencv_threads)
    stats.buffers = pool.allocated
    return lane.finish(seconds)
