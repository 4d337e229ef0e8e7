"""Steady decisions on a synthetic drive: a known label sequence with single-frame noise injected.

The steadied label flips less, and lags each real change by exactly what the settings say (the bound is
computed from the settings, not measured)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgemtl.errors import ConfigError
from edgemtl.kinds.classification import ClassificationResult
from edgemtl.kinds.multilabel import MultilabelResult
from edgemtl.runtime.results import Prediction
from edgemtl.runtime.steady import Smoothing, Steadier, describe_smoothing, ema_lag, parse_smoothing
from edgemtl.tasks import NAVIGATION_TASKS, TaskKind, TaskSpec
from tests.helpers import assert_one_line

SCENE = NAVIGATION_TASKS[0]  # left, straight, right, blocked
FLAGS = TaskSpec("flags", TaskKind.MULTILABEL, ("person", "car"))
TASKS = (*NAVIGATION_TASKS, FLAGS)
LEFT, STRAIGHT, RIGHT, BLOCKED = range(4)

# The drive: (class, frames). Noise frames are injected well inside segments (never next to a change).
SEGMENTS = [(STRAIGHT, 40), (LEFT, 30), (STRAIGHT, 30), (BLOCKED, 20), (STRAIGHT, 30), (RIGHT, 30)]
NOISE_AT = {10: RIGHT, 20: LEFT, 55: RIGHT, 85: BLOCKED, 140: LEFT, 175: LEFT}


def drive() -> tuple[list[int], list[int]]:
    """The true label per frame, and the raw label the model gives (the truth with single-frame noise)."""
    truth = [label for label, frames in SEGMENTS for _ in range(frames)]
    raw = [NOISE_AT.get(i, label) for i, label in enumerate(truth)]
    return truth, raw


def scene(index: int) -> Prediction:
    probabilities = np.zeros(4, np.float32)
    probabilities[index] = 1.0  # confident: the clean change the bound is stated for
    return Prediction({"scene": ClassificationResult(SCENE, index, probabilities)})


def steady_labels(setting: Smoothing, raw: list[int]) -> list[int]:
    steadier = Steadier(TASKS, [setting])
    return [steadier.update(scene(label))["scene"].index for label in raw]


def flips(labels: list[int]) -> int:
    return sum(a != b for a, b in itertools.pairwise(labels))


def lag_after(labels: list[int], truth: list[int], change: int) -> int:
    """Frames from a true change at `change` until `labels` shows the new label."""
    return next(i for i in range(change, len(labels)) if labels[i] == truth[change]) - change


def changes(truth: list[int]) -> list[int]:
    return [i for i in range(1, len(truth)) if truth[i] != truth[i - 1]]


@pytest.mark.parametrize(
    "setting",
    [
        Smoothing("scene", dwell=3),
        Smoothing("scene", ema=0.6),
        Smoothing("scene", ema=0.6, dwell=3),
        Smoothing("scene", ema=0.8, margin=0.2, dwell=2),
    ],
    ids=describe_smoothing,
)
def test_fewer_flips_and_each_change_lags_exactly_what_the_settings_say(setting):
    truth, raw = drive()
    labels = steady_labels(setting, raw)
    assert flips(raw) == flips(truth) + 2 * len(NOISE_AT)  # every noise frame is two flips
    assert flips(labels) == flips(truth)  # the steadied label flips only at the real changes
    assert labels[:5] == truth[:5]  # the first frame is believed: there is nothing to steady against
    for change in changes(truth):
        assert lag_after(labels, truth, change) == setting.change_delay(), change
        assert all(label == truth[change - 1] for label in labels[change : change + setting.change_delay()])


def test_the_bound_follows_from_the_settings():
    assert Smoothing("scene").change_delay() == 0  # off: the raw label
    assert Smoothing("scene", dwell=3).change_delay() == 2
    assert ema_lag(0.6, 0.5) == 2 and Smoothing("scene", ema=0.6, dwell=3).change_delay() == 3  # 0.6² < 0.5
    assert ema_lag(0.5, 0.5) == 2  # 0.5¹ is a tie, which the held label wins
    assert ema_lag(0.9, 0.5) == 7  # 0.9⁷ = 0.478


def test_latch_turns_on_at_once_and_off_after_n_quiet_frames():
    _, raw = drive()
    setting = parse_smoothing("scene:ema=0.6,dwell=3,latch=blocked:5")
    labels = steady_labels(setting, raw)
    start = sum(frames for _, frames in SEGMENTS[:3])
    end = start + SEGMENTS[3][1]
    assert labels[start] == BLOCKED  # on the first blocked frame, although ema and dwell delay the others
    assert labels[85] == BLOCKED and labels[85 + 5] == BLOCKED and labels[85 + 6] == STRAIGHT  # noise too: N quiet
    off = max(setting.latch_frames, setting.change_delay())  # held through N quiet frames (or the held lag)
    assert all(label == BLOCKED for label in labels[start : end + off])
    assert labels[end + off] == STRAIGHT
    # elsewhere the latch is the other settings' label
    other = steady_labels(parse_smoothing("scene:ema=0.6,dwell=3"), raw)
    assert labels[:80] == other[:80] and labels[end + off :] == other[end + off :]


def test_multilabel_flags_are_held_and_latched():
    """person flickers off for single frames (noise) and is latched; car flickers on once."""
    person = [1] * 10 + [0] + [1] * 9 + [0] * 20
    car = [0] * 15 + [1] + [0] * 24
    steadier = Steadier(TASKS, [Smoothing("flags", dwell=2, latch="person", latch_frames=3)])
    out = []
    for p, c in zip(person, car):
        probabilities = np.array([0.9 if p else 0.1, 0.9 if c else 0.1], np.float32)
        result = MultilabelResult(FLAGS, (probabilities > 0.5).astype(np.uint8), probabilities)
        out.append(steadier.update(Prediction({"flags": result}))["flags"].flags.tolist())
    assert [f[1] for f in out] == [0] * 40  # car's one frame never reaches dwell 2
    assert [f[0] for f in out] == [1] * 23 + [0] * 17  # person's gap bridged; off 3 quiet frames after the end


@pytest.mark.parametrize(
    ("spec", "fragments"),
    [
        ("sceen:ema=0.6", ["'sceen'", "scene, flags"]),
        ("segmentation:dwell=2", ["'segmentation'", "segmentation task", "scene, flags"]),
        ("scene:latch=blockd:5", ["'blockd'", "left, straight, right, blocked"]),
        ("flags:latch=dog:2", ["'dog'", "label names", "person, car"]),
        ("scene:ema=1.5", ["ema=1.5", "[0, 1)"]),
        ("scene:dwell=0", ["dwell=0"]),
        ("scene:speed=3", ["'speed'", "ema, margin, dwell or latch"]),
        ("scene:latch=blocked", ["'latch=blocked'", "CLASS:N"]),
        ("scene", ["'scene'", "TASK:"]),
    ],
)
def test_bad_specs_are_one_line_naming_the_thing_and_the_choices(spec, fragments):
    with pytest.raises(ConfigError) as error:
        Steadier(TASKS, [parse_smoothing(spec)])
    assert_one_line(error, *fragments)


def test_one_spec_per_task():
    with pytest.raises(ConfigError) as error:
        Steadier(TASKS, [parse_smoothing("scene:dwell=2"), parse_smoothing("scene:ema=0.5")])
    assert_one_line(error, "'scene' twice")


def test_spec_round_trips_through_its_description():
    setting = parse_smoothing("scene:ema=0.6,margin=0.1,dwell=3,latch=blocked:5")
    assert setting == Smoothing("scene", ema=0.6, margin=0.1, dwell=3, latch="blocked", latch_frames=5)
    assert parse_smoothing(describe_smoothing(setting)) == setting


def test_the_overlay_shows_raw_and_steadied_side_by_side():
    from edgemtl.runtime.overlay import _text_lines

    steadier = Steadier(TASKS, [Smoothing("scene", dwell=3)])
    steadier.update(scene(STRAIGHT))
    raw = scene(LEFT)  # one frame of left: the steadied label holds straight
    lines = _text_lines(raw, steadier.update(raw))
    assert lines == ["scene: left 1.00 | steady straight 0.00"]
    assert _text_lines(raw) == ["scene: left 1.00"]
