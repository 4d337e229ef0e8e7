"""`edgemtl eval`: per-task metrics of a checkpoint (in PyTorch) or of an exported .onnx file (in ONNX Runtime)
on a labelled dataset, with the plots training writes: confusion matrices, per-class scores, predictions.

Both kinds of model answer the same two questions (metrics of a dataset, predictions of a few frames), so
the report and the plots are one code path whichever file was given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgemtl import jsonfile
from edgemtl.data import ArrayDataset, TableColumns, VectorDataset, open_dataset
from edgemtl.data.splits import ALL, SYNTHETIC, SYNTHETIC_VAL_SCENES, open_recorded, scored_split
from edgemtl.data.synthetic import labels_all
from edgemtl.errors import ConfigError, DataError, ModelFileError
from edgemtl.features import FeatureSpec
from edgemtl.paths import fresh_dir
from edgemtl.plots import PREDICTION_SAMPLES, engine_predictions, plot_predictions, plot_scores
from edgemtl.tasks import TaskSpec

CHECKPOINT_SUFFIXES = (".pt", ".pth")


class Evaluator(Protocol):
    """A model under evaluation, whatever runs it."""

    path: Path
    tasks: tuple[TaskSpec, ...]
    input_size: tuple[int, int]  # (height, width) the data is loaded at
    batch: int  # frames are evaluated in whole batches of this many (a fixed-batch export)
    description: str  # what runs it, for the report
    validation: dict[str, Any] | None  # the frames that validated the run, where the file records them
    features: FeatureSpec | None  # a vector model's features; None for images

    def metrics(self, data: ArrayDataset) -> dict[str, dict[str, Any]]: ...

    def predictions(self, images: np.ndarray) -> dict[str, np.ndarray]: ...


class CheckpointEvaluator:
    """A checkpoint, run in PyTorch by the very `validate_model` that picked it during training."""

    batch = 1

    def __init__(self, path: Path, device: str) -> None:
        from edgemtl.model import input_preprocess
        from edgemtl.train import load_checkpoint, resolve_device

        self.path = path
        checkpoint = load_checkpoint(path)
        torch_device = resolve_device(device)
        self.model = checkpoint.build_model().to(torch_device)
        self.preprocess = input_preprocess(checkpoint.mean, checkpoint.std, checkpoint.features).to(torch_device)
        self.features = checkpoint.features  # a vector model's; None for images
        self.tasks = checkpoint.tasks
        self.input_size = checkpoint.input_size
        self.description = f"checkpoint of epoch {checkpoint.epoch}, PyTorch on {torch_device}"
        self.validation = checkpoint.validation

    def metrics(self, data: ArrayDataset) -> dict[str, dict[str, Any]]:
        from edgemtl.train import validate_model

        return validate_model(self.model, data, self.preprocess)

    def predictions(self, images: np.ndarray) -> dict[str, np.ndarray]:
        from edgemtl.train.plots import model_predictions

        return model_predictions(self.model, self.preprocess, images)


class OnnxEvaluator:
    """An edgemtl export, run by the runtime's Engine: the numbers a deployment will see."""

    validation = None  # an export's metadata names its tasks, not the frames that validated them

    def __init__(self, path: Path, device: str) -> None:
        from edgemtl.runtime import Engine

        self.path = path
        self.engine = Engine(path, device=device)
        self.tasks = self.engine.tasks
        self.features = self.engine.features  # a vector model's; None for images
        self.input_size = self.engine.input_size
        self.batch = self.engine.metadata.batch or 1
        self.description = f"{self.engine.metadata.precision} export, ONNX Runtime on {self.engine.providers[0]}"

    def metrics(self, data: ArrayDataset) -> dict[str, dict[str, Any]]:
        from edgemtl.runtime.scoring import score_engine

        return score_engine(self.engine, data.inputs, data.targets)

    def predictions(self, images: np.ndarray) -> dict[str, np.ndarray]:
        return engine_predictions(self.engine, images)


def open_evaluator(path: Path, device: str = "auto") -> Evaluator:
    """A checkpoint (.pt) or an export (.onnx), by its suffix; anything else is refused before any work."""
    path = Path(path)
    expected = "expected a checkpoint (.pt) written by `edgemtl train` or an .onnx file written by `edgemtl export`"
    if not path.exists():
        raise ModelFileError(f"model {path} does not exist: {expected}")
    if path.suffix == ".onnx":
        return OnnxEvaluator(path, device)
    if path.suffix in CHECKPOINT_SUFFIXES:
        return CheckpointEvaluator(path, device)
    raise ModelFileError(f"model {path} is neither a checkpoint nor an .onnx file: {expected}")


@dataclass
class EvalReport:
    model: Path
    description: str
    data: str
    frames: int
    tasks: tuple[TaskSpec, ...]
    metrics: dict[str, dict[str, Any]]
    out_dir: Path
    files: list[Path]
    split: str = ""  # which samples of `data` were scored: "test split", "the run's validation split", ...

    def lines(self) -> list[str]:
        """A table: one row per task and metric, the headline metric first (matrices are in the plots)."""
        rows = [
            (task.name, name, f"{value:.4f}")
            for task in self.tasks
            for name, value in self.metrics[task.name].items()
            if isinstance(value, float)
        ]
        task_width = max(len("task"), *(len(row[0]) for row in rows))
        metric_width = max(len("metric"), *(len(row[1]) for row in rows))
        split = f" ({self.split})" if self.split else ""
        lines = [f"{self.model} ({self.description}) on {self.data}{split}, {self.frames} frames"]
        lines.append(f"{'task':<{task_width}}  {'metric':<{metric_width}}  value")
        previous = None
        for task, name, value in rows:
            lines.append(f"{task if task != previous else '':<{task_width}}  {name:<{metric_width}}  {value}")
            previous = task
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": str(self.model),
            "runs_on": self.description,
            "data": self.data,
            "split": self.split,
            "frames": self.frames,
            "metrics": self.metrics,
            "files": [path.name for path in self.files],
        }


def evaluate_on(evaluator: Evaluator, data: ArrayDataset, data_name: str, out: Path, split: str = "") -> EvalReport:
    """Metrics, plots and metrics.json; the output folder is made (never reused) only once the metrics are in."""
    try:
        data.check_against(evaluator.tasks)
    except DataError as exc:
        raise DataError(f"cannot evaluate {evaluator.path} on {data_name}: {exc}") from None
    usable = len(data) // evaluator.batch * evaluator.batch
    if usable == 0:
        raise DataError(
            f"{data_name} has {len(data)} frames: {evaluator.path} was exported for batches of exactly "
            f"{evaluator.batch}; give at least that many"
        )
    data = data.subset(slice(0, usable))
    metrics = evaluator.metrics(data)
    out_dir = fresh_dir(out)
    samples = data.subset(slice(0, PREDICTION_SAMPLES))
    files = plot_scores(out_dir, evaluator.tasks, metrics)
    if isinstance(samples, ArrayDataset):  # a grid of frames with their predictions; feature rows have no picture
        predictions = evaluator.predictions(samples.images)
        files.append(
            plot_predictions(out_dir / "predictions.png", evaluator.tasks, samples.images, samples.targets, predictions)
        )
    report = EvalReport(
        evaluator.path, evaluator.description, data_name, usable, evaluator.tasks, metrics, out_dir, files, split
    )
    report.files.append(out_dir / "metrics.json")
    (out_dir / "metrics.json").write_text(jsonfile.dumps(report.to_dict(), indent=2) + "\n")
    return report


@dataclass(frozen=True)
class EvalRequest:
    """What `edgemtl eval` is given: a model file and the labelled data to score it on."""

    model: Path  # a checkpoint (.pt) or an export (.onnx)
    # None: the frames that validated a checkpoint trained on a folder or manifest, else the synthetic test
    # scenes; or 'synthetic' or a dataset folder / manifest
    data: str | None = None
    frames: int = SYNTHETIC_VAL_SCENES  # synthetic scenes to score on
    seed: int = 0  # the run's seed: its test scenes are neither its training nor its validation scenes
    device: str = "auto"
    out: Path = field(default_factory=lambda: Path("runs/eval/exp"))
    allow_outside_paths: bool = False  # the dataset's listing may name files outside its folder
    split: str | None = None  # of a folder or manifest with a split column; None: all its frames (synthetic: test)


def evaluation_data(evaluator: Evaluator, request: EvalRequest) -> tuple[ArrayDataset, str, str]:
    """The labelled frames to score, and the names the report gives them: the data, and which split.

    Without data: a checkpoint trained on a folder or manifest scores the frames that validated it; a
    model of the synthetic tasks, the held-out synthetic test scenes; anything else is told to name its data.
    """
    size, tasks = evaluator.input_size, evaluator.tasks
    record = evaluator.validation
    outside = request.allow_outside_paths
    if evaluator.features is not None:
        return _vector_data(evaluator, request)
    if request.data is None and record is not None and record.get("data") != SYNTHETIC:
        return (
            open_recorded(record, size=size, tasks=tasks, allow_outside=outside),
            record["data"],
            "the run's validation split",
        )
    if request.data is None and not labels_all(tasks):
        raise ConfigError(
            f"{evaluator.path} has tasks synthetic scenes do not label ({', '.join(t.name for t in tasks)}) and "
            "records no validation frames: give its labelled data, `edgemtl eval DATA -m MODEL` (or --data DATA), "
            "a dataset folder or manifest"
        )
    spec = request.data or SYNTHETIC
    if spec == SYNTHETIC:
        split = request.split or "test"
        data = open_dataset(spec, split, size=size, tasks=tasks, count=request.frames, seed=request.seed)
        return data, spec, f"{split} split"
    data = open_dataset(spec, ALL, size=size, tasks=tasks, allow_outside=outside)
    data, how = scored_split(data, request.split or ALL, request.seed, spec)
    return data, spec, how


def _vector_data(evaluator: Evaluator, request: EvalRequest) -> tuple[VectorDataset, str, str]:
    """A vector model's rows: the run's validation rows of a checkpoint, else a table's split (all rows)."""
    features, record = evaluator.features, evaluator.validation
    if request.data is None and record is not None:
        rows = open_recorded(record, size=None, tasks=evaluator.tasks, features=features)
        return rows, record["data"], "the run's validation split"
    if request.data is None:
        raise ConfigError(f"{evaluator.path} takes feature vectors: give a CSV table, `edgemtl eval TABLE -m MODEL`")
    columns = TableColumns(features.names, features.missing)
    rows = open_dataset(request.data, ALL, size=None, tasks=evaluator.tasks, columns=columns)
    rows, how = scored_split(rows, request.split or ALL, request.seed, request.data)
    return rows.filled(features), request.data, "all rows" if how == "all frames" else how


def run_eval(request: EvalRequest) -> EvalReport:
    """Open the model, load the data at its input size, and report metrics and plots."""
    evaluator = open_evaluator(request.model, request.device)
    dataset, name, split = evaluation_data(evaluator, request)
    return evaluate_on(evaluator, dataset, name, request.out, split)
