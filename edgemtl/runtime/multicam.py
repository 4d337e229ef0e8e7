"""Several cameras, one engine: each tick, the newest frame of every source goes into one batched run.

    reader threads    one per source: decode and resize to the model's input (a live source keeps only
                      its newest frame; a file is read ahead, nothing dropped)
    inference thread  gathers a frame from every source that has one (waiting at most `gather_s` after
                      the first for the others), runs them as one batch, hands each result to its lane
    calling thread    per source: track, steady, overlay, output, results line, statistics (`pipeline.Lane`)

One run per tick instead of one per frame is the point: on a small CPU or a GPU, a batch of four costs
much less than four runs. An export with a fixed batch axis cannot take a batch of another size: it
falls back to one run per source, said once at info level. A source that dies (a stream that stops, a
camera unplugged) is reported in one log line and retired; the others go on, and its summary says why.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import cv2

from edgemtl.errors import EdgemtlError, OutputError
from edgemtl.runtime.buffers import BufferPool
from edgemtl.runtime.engine import Engine
from edgemtl.runtime.pipeline import (
    END,
    Lane,
    PipelineStats,
    give_back,
    next_item,
    pooled_prepare,
    put_unless_stopped,
)
from edgemtl.runtime.results_stream import ResultsSink
from edgemtl.runtime.sinks import FrameSink
from edgemtl.runtime.sources import Frame, FrameSource, ThreadedSource
from edgemtl.runtime.steady import Steadier
from edgemtl.runtime.stop_signals import StopSignals
from edgemtl.runtime.tracking import SourceTracking

log = logging.getLogger("edgemtl")

GATHER_S = 0.02  # how long a tick waits, after the first frame, for the other sources' frames
SHARED_OUTPUTS = ("display", "none", "")  # outputs every source gets as they are (a window each, or nothing)


def source_outputs(output: str, count: int) -> list[str]:
    """Each source's output when `output` was given for `count` sources: `out.mp4` → `out-0.mp4`,
    `out-1.mp4`, …; a folder `frames` → `frames-0`, `frames-1`, …; `display` and `none` stay as they are.

    Numbered names, not one file for all, because each source keeps its own frame size and its own video.
    """
    if count == 1 or output in SHARED_OUTPUTS:
        return [output] * count
    if "://" in output:
        raise OutputError(
            f"output {output!r} takes one source, not {count}: with several sources use display, none, a video "
            "file or a folder (each source gets its own, numbered: out-0.mp4, out-1.mp4, …)"
        )
    path = PurePath(output)
    return [str(path.with_name(f"{path.stem}-{i}{path.suffix}")) for i in range(count)]


@dataclass
class MulticamStats:
    """What a several-camera run did: one PipelineStats per source, and how the engine was shared."""

    sources: list[PipelineStats]
    engine: str
    batched: bool  # one run per tick (a dynamic batch axis), or one run per source
    ticks: int = 0  # engine ticks: batched runs, or rounds of one run per source
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.sources)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    @property
    def all_died(self) -> bool:
        """Every source stopped with an error: the run served nothing to its end."""
        return all(s.error for s in self.sources)

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "batched": self.batched,
            "ticks": self.ticks,
            "frames": self.frames,
            "seconds": self.seconds,
            "fps": round(self.fps, 2),
            "mean_batch": round(self.frames / self.ticks, 2) if self.ticks else 0.0,
            "interrupted": self.interrupted,
            "sources": [s.to_dict() for s in self.sources],
        }

    def lines(self) -> list[str]:
        """A total line, then one summary line per source."""
        how = "one batched run per tick" if self.batched else "one run per source (fixed-batch export)"
        mean = self.frames / self.ticks if self.ticks else 0.0
        total = (
            f"{len(self.sources)} sources, {self.frames} frames in {self.seconds:.1f} s: {self.fps:.1f} FPS "
            f"in all, {how}, {mean:.2f} frames a tick"
        )
        return [total, *(f"[{i}] {s.source} -> {s.output}: {s.describe()}" for i, s in enumerate(self.sources))]


@dataclass
class _Gather:
    """The inference thread's view of the sources: which still deliver, and how many frames each gave."""

    feeds: list[ThreadedSource]
    arrived: threading.Event
    max_frames: int | None
    active: set[int] = field(default_factory=set)
    counts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.active = set(range(len(self.feeds)))
        self.counts = [0] * len(self.feeds)

    def tick(self, stop: threading.Event, gather_s: float, out: queue.Queue) -> list[tuple[int, Frame]]:
        """A frame from every active source that has one ([] once none is left); a source that ended or
        died is retired, and a death travels to the calling thread as ("died", index, error)."""
        got: dict[int, Frame] = {}
        deadline: float | None = None
        while self.active and not stop.is_set():
            self.arrived.clear()  # before polling: a frame arriving after the poll sets it again
            for index in sorted(self.active - got.keys()):
                try:
                    frame = self.feeds[index].poll()
                except EdgemtlError as exc:
                    self.active.discard(index)
                    put_unless_stopped(out, ("died", index, exc), stop)
                    continue
                if frame is not None:
                    got[index] = frame
                elif self.feeds[index].ended:
                    self.active.discard(index)
            now = time.perf_counter()
            if got and deadline is None:
                deadline = now + gather_s
            if got and (not self.active - got.keys() or now >= deadline):  # type: ignore[operator]
                break
            self.arrived.wait(0.25 if deadline is None else max(0.0, deadline - now))
        for index in got:
            self.counts[index] += 1
            if self.max_frames is not None and self.counts[index] >= self.max_frames:
                self.active.discard(index)
        return sorted(got.items())


def _infer(
    engine: Engine,
    gather: _Gather,
    stats: MulticamStats,
    out: queue.Queue,
    stop: threading.Event,
    gather_s: float,
    pool: BufferPool,
) -> None:
    """The inference thread: one tick's frames in, one ("frames", [(index, frame, prediction)…]) item out."""
    try:
        while not stop.is_set() and (batch := gather.tick(stop, gather_s, out)):
            frames = [frame for _, frame in batch]
            if stats.batched:
                predictions = engine.predict_batch([f.image for f in frames], [f.prepared for f in frames], pool)
            else:
                predictions = [engine.predict(f.image, prepared=f.prepared, pool=pool) for f in frames]
            stats.ticks += 1
            items = [(index, frame, p) for (index, frame), p in zip(batch, predictions, strict=True)]
            if not put_unless_stopped(out, ("frames", items), stop):
                return
    except Exception as exc:  # an EdgemtlError or anything unexpected: the calling thread re-raises it
        put_unless_stopped(out, exc, stop)
    put_unless_stopped(out, END, stop)


def run_multicamera(
    engine: Engine,
    sources: Sequence[FrameSource],
    sinks: Sequence[FrameSink],
    *,
    output_names: Sequence[str] = (),
    max_frames: int | None = None,
    draw_stats: bool = True,
    report: Callable[[str], None] | None = log.info,
    report_every_s: float = 5.0,
    steadiers: Sequence[Steadier | None] = (),
    trackings: Sequence[SourceTracking | None] = (),
    results: ResultsSink | None = None,
    gather_s: float = GATHER_S,
) -> MulticamStats:
    """Run several sources through one engine until all end or die, the sink asks to stop, or Ctrl-C.

    `sinks[i]`, `output_names[i]`, `steadiers[i]` and `trackings[i]` belong to `sources[i]` (each source its
    own trackers: a tick's batch is split back into lanes before any tracker sees it); `results` takes every
    source's lines (their `source` field tells them apart). `max_frames` counts per source. The caller
    opens and closes sources, sinks and results. A source dying is logged (one warning line) and recorded
    in its PipelineStats.error (`MulticamStats.all_died` tells when none is left that ended well).
    (Over 60 lines for the same reason as run_pipeline: threads, loop and teardown share their state.)
    """
    names = list(output_names) or [type(sink).__name__ for sink in sinks]
    stats = MulticamStats(
        [PipelineStats(s.uri, name, engine.describe()) for s, name in zip(sources, names, strict=True)],
        engine.describe(),
        batched=engine.metadata.batch is None,
    )
    if not stats.batched and len(sources) > 1:
        log.info(
            "%s has a fixed batch of %d: one run per source instead of one batched run per tick "
            "(re-export with --batch dynamic to batch the cameras)",
            engine.path.name,
            engine.metadata.batch,
        )
    engine.warmup()
    arrived = threading.Event()
    pool = BufferPool()  # as in run_pipeline: each tick's arrays go back once its frames are written
    for source in sources:
        source.use_pool(pool)
    prepare = pooled_prepare(engine, pool)
    feeds = [
        ThreadedSource(s, drop_stale=False, depth=1 if s.live else 4, prepare=prepare, arrived=arrived) for s in sources
    ]
    steadiers = list(steadiers) or [None] * len(sources)
    trackings = list(trackings) or [None] * len(sources)
    per_source = zip(sources, sinks, stats.sources, steadiers, trackings, strict=True)
    lanes = [
        Lane(source, sink, summary, steadier=steady, results=results, draw_stats=draw_stats, index=i, tracking=track)
        for i, (source, sink, summary, steady, track) in enumerate(per_source)
    ]
    out: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()
    gather = _Gather(feeds, arrived, max_frames)
    worker = threading.Thread(
        target=_infer, args=(engine, gather, stats, out, stop, gather_s, pool), name="edgemtl-infer", daemon=True
    )
    opencv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # as in run_pipeline: the threads are the parallelism
    start = time.perf_counter()
    next_report = start
    worker.start()
    try:
        with StopSignals() as stopping:  # as in run_pipeline: signals stop the loop between ticks
            while (item := next_item(out, stopping)) is not END:
                if isinstance(item, Exception):
                    raise item
                if item[0] == "died":
                    _, index, error = item
                    stats.sources[index].error = str(error)
                    log.warning("source %d (%s) stopped: %s; the other sources go on", index, sources[index].uri, error)
                    continue
                for index, frame, prediction in item[1]:
                    lanes[index].emit(frame, prediction)
                give_back(pool, [(frame, prediction) for _, frame, prediction in item[1]])  # after every lane
                now = time.perf_counter()
                if report is not None and now >= next_report:
                    live = ", ".join(f"[{i}] {lane.meter.text(lane.source.dropped)}" for i, lane in enumerate(lanes))
                    report(f"{stats.frames} frames: {live}")
                    next_report = now + report_every_s
                if any(sink.stop_requested for sink in sinks):
                    stats.interrupted = True
                    break
            stats.interrupted = stats.interrupted or stopping.requested
    except KeyboardInterrupt:
        stats.interrupted = True
    finally:
        stats.seconds = time.perf_counter() - start
        stop.set()
        worker.join()  # bounded: the gather waits at most 0.25 s at a time, a source read returns or times out
        for feed in feeds:
            feed.close()
        for source in sources:
            source.use_pool(None)
        cv2.setNumThreads(opencv_threads)
    for lane in lanes:
        lane.finish(stats.seconds)
    return stats
