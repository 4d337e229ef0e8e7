"""One table of task kinds: each kind is defined once, in edgemtl.kinds, and the rest of edgemtl reads it.

Three proofs. The source of edgemtl branches on no kind outside the kinds package. Every kind of the
table fills in the whole interface and honours one contract (outputs, prediction, result, meter, loss,
cells, flip). A fifth kind registered here, in the test only, goes through spec checks, metrics,
postprocessing, the dataset format, training, export and the runtime without an edit anywhere else.
"""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import edgemtl
from edgemtl.data import ArrayDataset, load_dataset, make_dataset, write_dataset
from edgemtl.deploy import ExportWrapper, export_onnx
from edgemtl.errors import ConfigError
from edgemtl.kinds import KINDS, KindDef, TaskResult, kind_of
from edgemtl.kinds.boxes import pack_boxes
from edgemtl.kinds.layouts import RowTargets
from edgemtl.kinds.options import AUGMENT_OPTIONS
from edgemtl.kinds.scores import TaskMeter
from edgemtl.metrics import higher_is_better, make_meter, primary_metric
from edgemtl.model import create_model
from edgemtl.plots import plot_predictions
from edgemtl.runtime import Engine, Prediction
from edgemtl.runtime.metadata import task_output_fields
from edgemtl.runtime.overlay import _text_lines
from edgemtl.runtime.scoring import score_engine
from edgemtl.tasks import NAVIGATION_TASKS, TaskKind, TaskSpec, tasks_from_json
from edgemtl.train import TrainConfig, load_checkpoint
from edgemtl.train.losses import labelled_count, task_loss, task_prediction
from tests.helpers import train_split

PACKAGE = Path(edgemtl.__file__).parent
PER_IMAGE_METHODS = ("parse_label", "expected_label", "format_label", "describe")
SIZE = (32, 32)


def kind_branches(source: str) -> list[str]:
    """Where code branches on a kind: a TaskKind.<MEMBER> other than in a TaskSpec(...) declaration, and
    any comparison of a `.kind` (`task.kind is ...`, `t.kind in (...)`), as "line: code"."""
    tree = ast.parse(source)
    exempt = {
        id(argument)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "TaskSpec"
        for argument in [*node.args, *(keyword.value for keyword in node.keywords)]
    }
    found = []
    for node in ast.walk(tree):
        member = isinstance(node, ast.Attribute) and getattr(node.value, "id", None) == "TaskKind"
        compared = isinstance(node, ast.Compare) and any(
            isinstance(operand, ast.Attribute) and operand.attr == "kind" for operand in [node.left, *node.comparators]
        )
        if (member and node.attr.isupper() and id(node) not in exempt) or compared:
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_module_outside_the_kinds_package_branches_on_a_kind():
    modules = sorted(p for p in PACKAGE.rglob("*.py") if PACKAGE / "kinds" not in p.parents)
    assert len(modules) > 40, "the scan reads the whole package"
    found = [f"{p.relative_to(PACKAGE.parent)}:{line}" for p in modules for line in kind_branches(p.read_text())]
    assert found == [], "what a kind means belongs to its definition in edgemtl.kinds:\n" + "\n".join(found)
    source = "\n".join(p.read_text() for p in modules)
    for table in ("is_per_image", "_SCORED_FIELD", "OUTPUT_FIELDS", "_PER_CLASS =", "_METERS", "_PARSERS"):
        assert table not in source, f"a per-kind table is back outside edgemtl.kinds: {table}"


def test_the_scan_finds_branches_and_spares_declarations():
    source = (
        "if task.kind is TaskKind.REGRESSION:\n    pass\n"
        "masks = [t for t in tasks if t.kind in (TaskKind.SEGMENTATION,)]\n"
        "SCENE = TaskSpec('scene', TaskKind.CLASSIFICATION, ('a', 'b'))\n"
        "name = by_kind[TaskKind.SEGMENTATION]\n"
    )
    assert sorted(kind_branches(source)) == [
        "1: TaskKind.REGRESSION",
        "1: task.kind is TaskKind.REGRESSION",
        "3: TaskKind.SEGMENTATION",
        "3: t.kind in (TaskKind.SEGMENTATION,)",
        "5: TaskKind.SEGMENTATION",
    ]


# --- the table and the interface ------------------------------------------------------------------------


def test_the_table_has_one_definition_per_task_kind_in_its_order():
    assert list(KINDS) == [kind.value for kind in TaskKind]
    for value, definition in KINDS.items():
        assert definition.value == value and isinstance(definition, KindDef)
    assert kind_of(NAVIGATION_TASKS[1]) is KINDS["segmentation"]


def _interface_attributes() -> list[str]:
    return [name for cls in reversed(KindDef.__mro__) for name in getattr(cls, "__annotations__", {})]


@pytest.mark.parametrize("value", list(KINDS))
def test_every_kind_provides_the_whole_interface(value: str):
    kind = KINDS[value]
    missing = [name for name in _interface_attributes() if not hasattr(kind, name)]
    assert missing == [], f"{value} does not set {missing}"
    assert not type(kind).__abstractmethods__
    if kind.per_image:
        assert kind.label_problem
        for method in PER_IMAGE_METHODS:
            assert getattr(type(kind), method) is not getattr(KindDef, method), f"{value} lacks {method}"
    if kind.options:
        assert type(kind).check_option is not KindDef.check_option
    assert kind.scored_field in kind.outputs and kind.exact_outputs <= set(kind.outputs)
    assert kind.flip_option in AUGMENT_OPTIONS and kind.min_classes >= 0
    assert issubclass(kind.meter, TaskMeter) and kind.primary_metric == kind.meter.primary
    if kind.per_class_score:
        assert kind.higher_is_better, "per-class scores are plotted as bars from 0 to 1"


def _task(kind: KindDef) -> TaskSpec:
    return TaskSpec("t", kind.value, tuple(f"c{i}" for i in range(max(kind.min_classes, 2))))


def _targets(task: TaskSpec, count: int) -> np.ndarray:
    """Labelled targets of a kind for `count` 8×8 frames, the first one missing (partial labels)."""
    kind = kind_of(task)
    rng = np.random.default_rng(0)
    if kind.head == "detection":  # padded box rows: one box per image, the second labelled with none
        target = np.stack([pack_boxes([(1, (1.0, 2.0, 6.0, 7.0))]) for _ in range(count)])
        target[1] = pack_boxes([])
        target[0] = kind.missing
        return target
    shape = (count,) if kind.per_image else (count, 8, 8)
    if kind.target_dtype == np.float32:
        target = rng.integers(0, 2, (count, task.num_outputs)).astype(np.float32)
    else:
        target = rng.integers(0, task.num_outputs, shape).astype(kind.target_dtype)
    target[0] = kind.missing
    return target


@pytest.mark.parametrize("value", list(KINDS))
def test_every_kind_keeps_the_contract(value: str):
    """Outputs in their order, prediction = the scored output, results, meters and losses, cells, flip."""
    kind, count = KINDS[value], 4
    task = _task(kind)
    logits = _raw_output(kind, task, count)
    constants = {name: torch.tensor(v) for name, v in kind.constants(task).items()}
    outputs = kind.postprocess(task, logits, constants)
    assert len(outputs) == len(kind.outputs) and all(len(output) == count for output in outputs)
    scored = kind.scored(task, dict(zip(kind.outputs, outputs)))
    assert torch.equal(task_prediction(task, logits), scored)

    frame = {field: output[0].numpy() for field, output in zip(kind.outputs, outputs)}
    result = kind.result(task, frame, (8, 8))
    assert isinstance(result, TaskResult) and result.task is task
    assert json.loads(json.dumps(result.to_dict())) == result.to_dict()
    assert (result.overlay_text() is None) == (result.mask is not None) == kind.per_pixel

    target = _targets(task, count)
    ArrayDataset(np.zeros((count, 8, 8, 3), np.uint8), {task.name: target}).check_against((task,))
    meter = make_meter(task)
    meter.update(scored.numpy(), target)
    assert next(iter(meter.compute())) == primary_metric(task) and higher_is_better(task) == kind.higher_is_better
    missing = torch.from_numpy(np.full_like(target, kind.missing))
    assert labelled_count(task, missing) == 0 and task_loss(task, logits, missing).item() == 0
    labelled = len(target) - 1 if kind.head == "detection" else target[1:].size  # images, not entries
    assert labelled_count(task, torch.from_numpy(target)) == labelled
    assert math.isfinite(task_loss(task, logits, torch.from_numpy(target)).item())

    if kind.per_image:
        assert kind.format_label(task, target[0]) == "" and np.array_equal(
            kind.parse_label(task, ""), target[0], equal_nan=True
        )
        assert np.array_equal(kind.parse_label(task, kind.format_label(task, target[1])), target[1])
        assert kind.describe(task, target[1])
    assert kind.flip(task, target, np.ones(count, bool)) is target, "nothing declared: a flip changes no target"


def _raw_output(kind: KindDef, task: TaskSpec, count: int) -> Tensor:
    """A head's raw output for `count` 8×8 frames, random: the detection head's is per location."""
    generator = torch.manual_seed(0)
    if kind.head == "detection":
        return create_model("nano", (task,))(torch.randn(count, 3, 32, 32, generator=generator))[task.name].detach()
    return torch.randn(count, task.num_outputs, *(() if kind.per_image else (8, 8)), generator=generator)


# --- a fifth kind, defined here only --------------------------------------------------------------------


@dataclass(frozen=True)
class BinaryResult(TaskResult):
    task: TaskSpec
    on: bool
    probability: float

    def to_dict(self) -> dict[str, Any]:
        return {"on": self.on, "probability": round(self.probability, 4)}

    def overlay_text(self) -> str:
        return f"{'yes' if self.on else 'no'} {self.probability:.2f}"


class BinaryMeter(TaskMeter):
    primary = "accuracy"

    def __init__(self, task: TaskSpec) -> None:
        super().__init__(task)
        self.right = self.count = 0

    def update(self, predicted: np.ndarray, target: np.ndarray) -> None:
        target = np.asarray(target, np.float32).reshape(-1)
        known = ~np.isnan(target)
        self.right += int((np.asarray(predicted).reshape(-1)[known] == (target[known] > 0.5)).sum())
        self.count += int(known.sum())

    def compute(self) -> dict[str, float]:
        return {"accuracy": self.right / self.count if self.count else float("nan")}


class Binary(RowTargets):
    """A yes/no question about the frame (is the door open?): one sigmoid and its decision."""

    value = "binary"
    outputs: ClassVar[dict[str, str]] = {"prob": "(N, 1) float32 sigmoid", "on": "(N,) uint8 prob > 0.5"}
    scored_field = "on"
    exact_outputs = frozenset({"on"})
    categorical = True
    min_classes = 0
    class_noun = "answer"
    flip_option = "flip_pairs"
    meter = BinaryMeter
    label_problem = "answers other than yes or no"
    loss_names = ("bce",)

    def num_outputs(self, task: TaskSpec) -> int:
        return 1

    def parse_row(self, task: TaskSpec, value: Any) -> np.ndarray | None:
        answer = {"yes": 1.0, "no": 0.0}.get(str(value).strip())
        return None if answer is None else np.array([answer], np.float32)

    def expected_label(self, task: TaskSpec) -> str:
        return "expected yes or no, empty if unlabelled"

    def format_row(self, task: TaskSpec, row: np.ndarray) -> str:
        return "yes" if row[0] else "no"

    def describe(self, task: TaskSpec, value: np.ndarray) -> str:
        return "yes" if np.ravel(value)[0] > 0.5 else "no"

    def flip(self, task: TaskSpec, target: np.ndarray, flips: np.ndarray) -> np.ndarray:
        return target  # a mirror image answers the same

    def elementwise_loss(self, task: TaskSpec, output: Tensor, target: Tensor, class_weights=None) -> Tensor:
        return F.binary_cross_entropy_with_logits(output, target, reduction="none")

    def postprocess(self, task: TaskSpec, logits: Tensor, constants: Mapping[str, Tensor]) -> tuple[Tensor, ...]:
        probability = torch.sigmoid(logits)
        return probability, (probability[:, 0] > 0.5).to(torch.uint8)

    def result(self, task: TaskSpec, outputs: Mapping[str, np.ndarray], frame_size: tuple[int, int]) -> TaskResult:
        return BinaryResult(task, bool(outputs["on"]), float(outputs["prob"][0]))


@pytest.fixture
def binary(monkeypatch: pytest.MonkeyPatch) -> TaskSpec:
    """The "binary" kind in the table, and in TaskKind: Python enums are closed, so the test adds the member
    the way an enum holds one; a real new kind is one line in TaskKind."""
    member = str.__new__(TaskKind, "binary")
    member._name_, member._value_ = "BINARY", "binary"
    monkeypatch.setitem(TaskKind._value2member_map_, "binary", member)
    monkeypatch.setitem(TaskKind._member_map_, "BINARY", member)
    monkeypatch.setattr(TaskKind, "_member_names_", [*TaskKind._member_names_, "BINARY"])
    monkeypatch.setitem(KINDS, "binary", Binary())
    return TaskSpec("door", "binary")


def _door_data(count: int) -> ArrayDataset:
    scenes = make_dataset(count, SIZE, seed=1, tasks=NAVIGATION_TASKS[:1])
    door = (np.arange(count) % 3 == 0).astype(np.float32).reshape(count, 1)
    door[1] = np.nan  # no answer for this frame
    return ArrayDataset(scenes.images, {**scenes.targets, "door": door})


def test_a_new_kind_is_checked_scored_and_postprocessed_from_its_entry_alone(binary: TaskSpec):
    assert binary.kind.value == "binary" and binary.num_outputs == 1
    assert tasks_from_json(json.dumps([binary.to_dict()])) == (binary,)
    with pytest.raises(ConfigError, match=r"\(binary\) has a threshold: only multilabel tasks take one"):
        TaskSpec("door", "binary", extra={"threshold": 0.3})
    with pytest.raises(
        ConfigError, match=r"has a loss: only classification, multilabel, segmentation, regression or detection"
    ):
        TaskSpec("door", "binary", extra={"loss": "huber"})
    with pytest.raises(ConfigError, match=r"flip_negate True: .* of a regression task"):
        TaskSpec("door", "binary", extra={"flip_negate": True})

    assert primary_metric(binary) == "accuracy" and higher_is_better(binary)
    logits = torch.tensor([[2.0], [-1.0], [0.5]])
    assert task_prediction(binary, logits).tolist() == [1, 0, 1]
    target = torch.tensor([[1.0], [float("nan")], [0.0]])
    assert labelled_count(binary, target) == 2
    expected = F.binary_cross_entropy_with_logits(logits[[0, 2]], target[[0, 2]])
    assert torch.allclose(task_loss(binary, logits, target), expected)
    meter = make_meter(binary)
    meter.update(task_prediction(binary, logits).numpy(), target.numpy())
    assert meter.compute() == {"accuracy": 0.5}

    assert task_output_fields(binary, raw_logits=True) == ["prob", "on", "logits"]
    wrapper = ExportWrapper(_Constant((binary,), 2.0), (0, 0, 0), (1, 1, 1), raw_logits=True).eval()
    assert wrapper.output_names == ["door_prob", "door_on", "door_logits"]
    probability, on, raw = wrapper(torch.zeros((2, 8, 8, 3), dtype=torch.uint8))
    assert on.tolist() == [1, 1] and torch.equal(raw, torch.full((2, 1), 2.0)) and probability.shape == (2, 1)


class _Constant(nn.Module):
    """Stands in for a MultiTaskNet: every logit the same."""

    def __init__(self, tasks: tuple[TaskSpec, ...], logit: float) -> None:
        super().__init__()
        self.tasks = tasks
        self.logit = logit

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        return {t.name: torch.full((images.shape[0], t.num_outputs), self.logit) for t in self.tasks}


def test_a_new_kind_goes_from_a_dataset_folder_through_training_and_export_to_the_runtime(
    binary: TaskSpec, tmp_path: Path
):
    tasks = (NAVIGATION_TASKS[0], binary)
    data = _door_data(24)
    loaded = load_dataset(write_dataset(tmp_path / "doors", data, tasks))  # door cells: yes, no, or empty
    assert (tmp_path / "doors" / "labels.csv").read_text().splitlines()[1:3] == [
        "000000.png,left,yes",
        "000001.png,straight,",
    ]
    assert np.array_equal(loaded.targets["door"], data.targets["door"], equal_nan=True)

    config = TrainConfig(preset="nano", input_size=SIZE, epochs=1, batch_size=8, seed=0, device="cpu")
    run = train_split(config, tasks, loaded, (16, 24), tmp_path / "run")
    assert set(run.best_metrics["door"]) == {"accuracy", "loss"}
    assert (tmp_path / "run" / "predictions.png").is_file(), "the plots titled the door answers"

    path = tmp_path / "doors.onnx"
    export_onnx(load_checkpoint(run.best_checkpoint), path, verify_data=loaded.subset(slice(16, 24)))
    engine = Engine(path, device="cpu")
    assert engine.tasks == tasks and engine.metadata.outputs["door"] == {"prob": "door_prob", "on": "door_on"}
    result = engine.predict(loaded.images[0])["door"]
    assert isinstance(result, BinaryResult) and 0 <= result.probability <= 1
    assert _text_lines(Prediction({"door": result}))[0].startswith("door: ")
    scores = score_engine(engine, loaded.images[16:], {k: v[16:] for k, v in loaded.targets.items()})
    assert scores["door"]["accuracy"] == pytest.approx(run.best_metrics["door"]["accuracy"])
    plot_predictions(tmp_path / "p.png", tasks, loaded.images[:4], loaded.targets, loaded.targets)
