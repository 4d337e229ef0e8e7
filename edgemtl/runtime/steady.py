"""Steady decisions: a label that does not flip on one noisy frame, and a "blocked" that is believed at once.

A frame's scene label flips whenever two classes' probabilities cross, which a controller acting on it
turns into jitter. Per classification or multilabel task, three optional settings steady it:

    ema=A       exponential moving average of the probabilities: s = A·s + (1 − A)·p (0: off, the default);
                larger A is steadier and slower
    margin=M    hysteresis: a challenger replaces the held class only when its smoothed probability beats
                the held one's by more than M (multilabel: a label turns on above threshold + M and off
                below threshold − M)
    dwell=D     the new decision must hold D frames in a row before it is reported (1: at once, the default)
    latch=C:N   class (or label) C is reported on the first frame the raw result says it, and stays on
                until N frames in a row have not said it — for the decision that must never be late

A detection task's objects take a latch only: `objects:latch=person:5` reports "person" once a person was
detected in 5 frames in a row, and keeps reporting it until 5 frames in a row had none (a box that flickers
for a frame or two neither starts nor ends it).

The spec is one string per task, `scene:ema=0.6,dwell=3,latch=blocked:5` (`parse_smoothing`), or a
`Smoothing` built in code. Both results are kept: a `Steadier` returns the steadied Prediction beside
the raw one. Torch-free, like the rest of the runtime.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgemtl.errors import ConfigError
from edgemtl.kinds import TaskResult, kind_of
from edgemtl.runtime.results import Prediction
from edgemtl.runtime.tracking import has_boxes
from edgemtl.tasks import TaskSpec

SPEC_FORMAT = "TASK:ema=0.6,margin=0.1,dwell=3,latch=CLASS:N (each key optional)"


@dataclass(frozen=True)
class Smoothing:
    """How one task's decision is steadied (see the module's docstring for what each setting does)."""

    task: str
    ema: float = 0.0
    margin: float = 0.0
    dwell: int = 1
    latch: str | None = None
    latch_frames: int = 0

    def __post_init__(self) -> None:
        where = f"smoothing of task {self.task!r}"
        if not 0 <= self.ema < 1:
            raise ConfigError(f"{where}: ema={self.ema!r}, expected a number in [0, 1) (0: off)")
        if not 0 <= self.margin < 1:
            raise ConfigError(f"{where}: margin={self.margin!r}, expected a number in [0, 1) (0: off)")
        if self.dwell < 1:
            raise ConfigError(f"{where}: dwell={self.dwell!r}, expected a whole number of frames ≥ 1 (1: at once)")
        if self.latch is not None and self.latch_frames < 1:
            raise ConfigError(f"{where}: latch={self.latch}:{self.latch_frames}, expected CLASS:N with N ≥ 1")

    def change_delay(self) -> int:
        """Frames a classification's steady label lags a clean change: after class A was held long, the
        raw probabilities switch to a confident B; this many B frames still report A (latches aside).

        The EMA needs k frames until B's smoothed probability beats A's by the margin (1 − 2·A^k > M), then
        the candidate must hold `dwell` frames: k + dwell − 2.
        """
        return ema_lag(self.ema, (1 - self.margin) / 2) + self.dwell - 2


def ema_lag(ema: float, level: float) -> int:
    """The first k ≥ 1 with ema^k < level: frames until a settled average of 1 falls below `level`."""
    if ema == 0:
        return 1
    k = max(1, math.ceil(math.log(level) / math.log(ema)))
    while ema**k >= level:  # ceil on a log can land one short when ema^k is level to rounding
        k += 1
    return k


def parse_smoothing(spec: str) -> Smoothing:
    """`scene:ema=0.6,dwell=3,latch=blocked:5` → Smoothing; a malformed spec is a one-line ConfigError."""
    task, _, settings = spec.partition(":")
    if not task or not settings:
        raise ConfigError(f"smoothing spec {spec!r} is not understood: expected {SPEC_FORMAT}")
    values: dict[str, object] = {}
    for item in settings.split(","):
        key, _, value = item.partition("=")
        key = key.strip()
        try:
            if key == "latch":
                name, _, frames = value.partition(":")
                values["latch"], values["latch_frames"] = name.strip(), int(frames)
            elif key in ("ema", "margin"):
                values[key] = float(value)
            elif key == "dwell":
                values[key] = int(value)
            else:
                raise ConfigError(
                    f"smoothing spec {spec!r} has unknown key {key!r}: expected ema, margin, dwell or latch"
                )
        except ValueError:
            raise ConfigError(f"smoothing spec {spec!r}: {item!r} is not understood: expected {SPEC_FORMAT}") from None
    return Smoothing(task.strip(), **values)  # type: ignore[arg-type]


def check_smoothing(settings: Sequence[Smoothing], tasks: Sequence[TaskSpec], model: str = "the model") -> None:
    """Every setting names a task of the model that has a decision, once, and its latch one of its classes."""
    by_name = {task.name: task for task in tasks}
    steady = [task.name for task in tasks if kind_of(task).steady or has_boxes(task)]
    seen: set[str] = set()
    for setting in settings:
        task = by_name.get(setting.task)
        if task is None:
            raise ConfigError(
                f"smoothing names task {setting.task!r}, which {model} does not have: expected one of "
                f"{', '.join(steady) or '(no classification, multilabel or detection task)'}"
            )
        if not (kind_of(task).steady or has_boxes(task)):
            raise ConfigError(
                f"smoothing names task {setting.task!r}, a {task.kind.value} task with no label to steady: "
                f"expected a classification, multilabel or detection task: {', '.join(steady) or '(none here)'}"
            )
        if has_boxes(task) and (setting.latch is None or setting.ema or setting.margin or setting.dwell != 1):
            raise ConfigError(
                f"smoothing of task {setting.task!r} ({describe_smoothing(setting)}): a detection task's objects "
                f"take a latch only: expected {setting.task}:latch=CLASS:N"
            )
        if setting.task in seen:
            raise ConfigError(f"smoothing names task {setting.task!r} twice: expected one spec per task")
        seen.add(setting.task)
        if setting.latch is not None and setting.latch not in task.classes:
            raise ConfigError(
                f"smoothing of task {setting.task!r} latches {setting.latch!r}, which is not one of its "
                f"{kind_of(task).class_noun} names: expected one of {', '.join(task.classes)}"
            )


class _Hold:
    """A decision (one value per slot) that takes a new value only after it was proposed `dwell` frames
    in a row."""

    def __init__(self, dwell: int) -> None:
        self.dwell = dwell
        self.value: np.ndarray | None = None
        self.candidate: np.ndarray | None = None
        self.run: np.ndarray | None = None

    def update(self, proposed: np.ndarray) -> np.ndarray:
        if self.value is None:
            self.value, self.candidate = proposed.copy(), proposed.copy()
            self.run = np.zeros(proposed.shape, np.int64)
            return self.value.copy()
        assert self.candidate is not None and self.run is not None
        same = proposed == self.candidate
        self.run = np.where(same, self.run + 1, 1)
        self.candidate = proposed.copy()
        change = (proposed != self.value) & (self.run >= self.dwell)
        self.value = np.where(change, proposed, self.value)
        self.run = np.where(proposed == self.value, 0, self.run)
        return self.value.copy()


class _TaskSteadier:
    """One task's moving average, hold and latch."""

    def __init__(self, task: TaskSpec, setting: Smoothing) -> None:
        self.task, self.setting, self.kind = task, setting, kind_of(task)
        self.latch_index = task.classes.index(setting.latch) if setting.latch is not None else None
        self.average: np.ndarray | None = None
        self.hold = _Hold(setting.dwell)
        self.latched_for = 0  # frames the latch still holds on

    def update(self, result: TaskResult) -> TaskResult:
        probabilities = np.asarray(result.probabilities, np.float64)  # type: ignore[attr-defined]
        a = self.setting.ema
        self.average = probabilities if self.average is None else a * self.average + (1 - a) * probabilities
        held = self.hold.update(self._proposal(self.average))
        raw = self.kind.decide(self.task, probabilities)
        if self.latch_index is not None and self._latched(raw):
            if self.kind.steady == "one":
                held = np.asarray(self.latch_index)
            else:
                held[self.latch_index] = 1
        return self.kind.steadied(result, self.average, held)

    def _latched(self, raw: np.ndarray) -> bool:
        """On from the first frame whose raw decision says the latch class through N frames that do not."""
        said = bool(raw == self.latch_index) if self.kind.steady == "one" else bool(raw[self.latch_index])
        if said:
            self.latched_for = self.setting.latch_frames
            return True
        if self.latched_for > 0:
            self.latched_for -= 1
            return True
        return False

    def _proposal(self, average: np.ndarray) -> np.ndarray:
        """What the smoothed probabilities propose, with the hysteresis margin in favour of what is held."""
        margin, held = self.setting.margin, self.hold.value
        if self.kind.steady == "one":
            best = self.kind.decide(self.task, average)
            if held is not None and average[best] - average[held] <= margin:
                return held.copy()
            return best
        rising = self.kind.decide(self.task, average - margin)  # off → on above threshold + margin
        staying = self.kind.decide(self.task, average + margin)  # on stays on above threshold − margin
        return rising if held is None else np.where(held == 1, staying, rising)


@dataclass(frozen=True)
class LatchedObjects(TaskResult):
    """A detection task's steadied result: whether its latch class is on, and for how many frames in a row
    it has been detected (0 on a frame without one)."""

    task: TaskSpec
    latch: str
    on: bool
    seen_frames: int

    def to_dict(self) -> dict[str, Any]:
        return {"latch": self.latch, "on": self.on, "seen_frames": self.seen_frames}

    def overlay_text(self) -> str:
        return f"{self.latch} {'on' if self.on else 'off'}"


class _ObjectLatch:
    """One detection task's latch: on after N frames in a row with an object of the class, off after N
    frames in a row without one. Reads the result's `objects` (edgemtl.kinds.objects)."""

    def __init__(self, task: TaskSpec, setting: Smoothing) -> None:
        assert setting.latch is not None  # check_smoothing refused a box task's spec without one
        self.task, self.latch, self.frames = task, setting.latch, setting.latch_frames
        self.index = task.classes.index(setting.latch)
        self.seen = self.unseen = 0
        self.on = False

    def update(self, result: TaskResult) -> TaskResult:
        if result.objects is not None and bool(np.any(result.objects.classes == self.index)):
            self.seen, self.unseen = self.seen + 1, 0
        else:
            self.seen, self.unseen = 0, self.unseen + 1
        if self.seen >= self.frames:
            self.on = True
        elif self.unseen >= self.frames:
            self.on = False
        return LatchedObjects(self.task, self.latch, self.on, self.seen)


class Steadier:
    """Steadied results of a stream of predictions, for the tasks that have a `Smoothing` (one per source)."""

    def __init__(self, tasks: Sequence[TaskSpec], settings: Iterable[Smoothing], model: str = "the model") -> None:
        settings = list(settings)
        check_smoothing(settings, tasks, model)
        by_name = {task.name: task for task in tasks}
        self.settings = settings
        self._tasks = {
            s.task: (_ObjectLatch if has_boxes(by_name[s.task]) else _TaskSteadier)(by_name[s.task], s)
            for s in settings
        }

    def __bool__(self) -> bool:
        return bool(self._tasks)

    def update(self, prediction: Prediction) -> Prediction:
        """The steadied results of the configured tasks for the next frame (only those tasks)."""
        return Prediction({name: task.update(prediction[name]) for name, task in self._tasks.items()})


def describe_smoothing(setting: Smoothing) -> str:
    """The spec string that gives `setting` (what `parse_smoothing` reads), for logs and the results stream."""
    parts = [f"{key}={value:g}" for key, value in (("ema", setting.ema), ("margin", setting.margin)) if value]
    if setting.dwell > 1:
        parts.append(f"dwell={setting.dwell}")
    if setting.latch is not None:
        parts.append(f"latch={setting.latch}:{setting.latch_frames}")
    return f"{setting.task}:{','.join(parts) or 'off'}"
