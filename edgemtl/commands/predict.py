"""`edgemtl predict` as a call: an exported model over a source, saving what a user looks at: overlays,
masks and per-frame results."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from edgemtl import jsonfile
from edgemtl.data.masks import write_mask
from edgemtl.kinds import TaskResult, kind_of
from edgemtl.kinds.objects import coco_categories
from edgemtl.paths import fresh_dir
from edgemtl.runtime import Engine, EngineOptions, Prediction, render_overlay
from edgemtl.runtime.sinks import FrameSink, ImageFolderSink, VideoFileSink
from edgemtl.runtime.sources import ImageSource, open_source


@dataclass(frozen=True)
class PredictRequest:
    """What `edgemtl predict` is given: a source, an exported model, and where the results go."""

    source: str | Path  # an image, folder, glob or video file
    model: Path  # an .onnx file written by `edgemtl export`
    out: Path = field(default_factory=lambda: Path("runs/predict/exp"))  # a new numbered folder if it exists
    device: str = "auto"
    masks: bool = True  # indexed PNG masks of image sources
    options: EngineOptions = field(default_factory=EngineOptions)
    format: str = "jsonl"  # a vector model's table: predictions.jsonl or predictions.csv


@dataclass(frozen=True)
class PredictSummary:
    frames: int
    out_dir: Path
    seconds: float
    predictions_file: Path

    providers: tuple[str, ...] = ()
    unit: str = "frames"  # what was predicted on: frames, or a table's rows

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def describe(self) -> str:
        on = f" on {self.providers[0]}" if self.providers else ""
        rate = f"{self.fps:.1f} FPS" if self.unit == "frames" else f"{self.fps:,.0f} {self.unit} per second"
        return f"{self.frames} {self.unit} in {self.seconds:.1f} s ({rate}){on}; results in {self.out_dir}"


#: Images shorter than this also get their overlay drawn on a copy upscaled (nearest neighbour, a whole
#: factor) to at least this height, in overlays/readable/: the text of an 8×8 digit or a 120×160 frame
#: cannot be read at its own size. overlays/<name>.png and the masks stay at the source's size.
READABLE_HEIGHT = 480


def readable_overlay(image: np.ndarray, prediction: Prediction) -> np.ndarray | None:
    """The overlay drawn on an upscaled copy of a small frame (masks upscaled with it); None for a large one."""
    factor = -(-READABLE_HEIGHT // image.shape[0])
    if factor <= 1:
        return None
    size = (image.shape[1] * factor, image.shape[0] * factor)
    large = cv2.resize(image, size, interpolation=cv2.INTER_NEAREST)
    results = {name: _scaled(result, size, factor) for name, result in prediction.items()}
    return render_overlay(large, Prediction(results))


def _scaled(result: TaskResult, size: tuple[int, int], factor: int) -> TaskResult:
    """A result drawn on a frame upscaled `factor` times to `size` (width, height): its mask and boxes with it."""
    if result.mask is not None:
        result = dataclasses.replace(result, mask=cv2.resize(result.mask, size, interpolation=cv2.INTER_NEAREST))
    if result.objects is not None:
        result = dataclasses.replace(result, objects=result.objects.scaled(factor))
    return result


def run_predict(request: PredictRequest) -> PredictSummary:
    """Open the model, then write results into a fresh folder: earlier results are never overwritten."""
    engine = Engine(request.model, request.device, request.options)
    if engine.features is not None:  # a vector model: SOURCE is a CSV or Parquet table of feature rows
        from edgemtl.commands.predict_table import predict_table

        out_dir = fresh_dir(request.out)
        rows, seconds, written = predict_table(engine, Path(request.source), out_dir, request.format)
        return PredictSummary(rows, out_dir, seconds, written, tuple(engine.providers), "rows")
    summary = predict_source(engine, request.source, fresh_dir(request.out), save_masks=request.masks)
    return replace(summary, providers=tuple(engine.providers))


def predict_source(
    engine: Engine,
    source_uri: str | Path,
    out_dir: Path,
    *,
    save_masks: bool = True,
    on_frame: Callable[[int], None] | None = None,
) -> PredictSummary:
    """Images (file, folder, glob) → overlays/ (and overlays/readable/ for small ones) and masks/ PNGs; a
    video → an annotated video.

    Either way predictions.jsonl holds one line per frame (labels, mask class fractions, objects), appended
    as frames are done, so an interrupted run keeps every result it has; its `image_id` is the frame's position
    (from 0), the id the COCO results files use: per detection task, `<task>.coco.json` holds the task's
    boxes as COCO results (what pycocotools' `loadRes` reads) and `<task>.categories.json` its category ids.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    several_masks = sum(kind_of(t).per_pixel for t in engine.tasks) > 1
    predictions_file = out_dir / "predictions.jsonl"
    frames = 0
    readable_sink: ImageFolderSink | None = None
    coco: dict[str, list[dict]] = {}  # per detection task, its boxes as COCO results
    start = time.perf_counter()
    with open_source(source_uri) as source, predictions_file.open("w") as predictions:
        is_video = not isinstance(source, ImageSource)
        sink: FrameSink
        if is_video:
            sink = VideoFileSink(out_dir / f"{Path(str(source_uri)).stem}_overlay.mp4", source.fps or 30.0)
        else:
            sink = ImageFolderSink(out_dir / "overlays")
        with sink:
            for frame in source:
                prediction = engine.predict(frame.image)
                sink.write(render_overlay(frame.image, prediction), frame.name)
                readable = None if is_video else readable_overlay(frame.image, prediction)
                if readable is not None:
                    readable_sink = readable_sink or ImageFolderSink(out_dir / "overlays" / "readable")
                    readable_sink.write(readable, frame.name)
                for result in prediction.values():
                    if save_masks and not is_video and result.mask is not None:
                        folder = out_dir / "masks" / result.task.name if several_masks else out_dir / "masks"
                        folder.mkdir(parents=True, exist_ok=True)
                        write_mask(folder / f"{frame.name}.png", result.mask, len(result.task.classes))
                line = {"frame": frame.name, "image_id": frames, **prediction.to_dict()}
                predictions.write(jsonfile.dumps(line) + "\n")
                predictions.flush()
                for name, result in prediction.items():
                    if result.objects is not None:
                        coco.setdefault(name, []).extend(result.objects.coco(image_id=frames))
                frames += 1
                if on_frame:
                    on_frame(frame.index)
    for task in engine.tasks:  # written once the source is done: a COCO results file is one JSON array
        if task.name in coco:
            (out_dir / f"{task.name}.coco.json").write_text(jsonfile.dumps(coco[task.name]) + "\n")
            (out_dir / f"{task.name}.categories.json").write_text(jsonfile.dumps(coco_categories(task.classes)) + "\n")
    return PredictSummary(frames, out_dir, time.perf_counter() - start, predictions_file)
