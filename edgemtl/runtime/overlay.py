"""Draw results on the frame: the mask blended in colour, objects as boxes with their labels and track ids,
labels and confidences as text."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from edgemtl.errors import FrameError
from edgemtl.kinds.objects import Objects, object_colors
from edgemtl.palette import class_colors
from edgemtl.runtime.results import Prediction


@lru_cache(maxsize=32)
def _lookup_table(num_classes: int) -> np.ndarray:
    """class id → BGR colour as a (256, 1, 3) table for cv2.applyColorMap."""
    table = np.zeros((256, 1, 3), dtype=np.uint8)
    table[:num_classes, 0] = class_colors(num_classes)
    return table


def _text_lines(prediction: Prediction, steady: Prediction | None = None) -> list[str]:
    """One line per result drawn as text (each kind words its own, `TaskResult.overlay_text`): the label
    and its confidence, the labels that are on (with their probabilities, "-" when none is), the values.
    A task with a steadied result shows it after the raw one: `scene: left 0.61 | steady straight 0.72`."""
    lines = []
    for name, result in prediction.items():
        text = result.overlay_text()
        if text is not None:
            if steady is not None and name in steady:
                text = f"{text} | steady {steady[name].overlay_text()}"
            lines.append(f"{name}: {text}")
    return lines


_FONT = cv2.FONT_HERSHEY_SIMPLEX
_SMALLEST_SCALE = 0.3  # the smallest legible Hershey scale; a line wider than the image then wraps


def fit_text(lines: list[str], height: int, width: int, x: int = 4) -> tuple[list[str], float, int]:
    """The lines, font scale and thickness that fit an image of `height` × `width` from column `x`.

    The scale follows the image's height (legible from 128 px to 1080p), shrinks until the widest line fits
    the width, and below the smallest legible scale a line wraps at its double spaces (the statistics'
    fields: "12.5 FPS  latency 8.1 ms (p99 9.0)  dropped 0" on a 320-pixel-wide frame).
    """
    scale = max(0.35, height / 480)
    room = max(1, width - 2 * x)

    def wide(line: str, at: float) -> int:
        return cv2.getTextSize(line, _FONT, at, max(1, round(at * 1.5)))[0][0] + int(8 * at)

    widest = max(wide(line, scale) for line in lines)
    while widest > room and scale > _SMALLEST_SCALE:  # thickness and margins are not linear in the scale
        scale = max(_SMALLEST_SCALE, scale * room / widest * 0.98)
        widest = max(wide(line, scale) for line in lines)
    fitted: list[str] = []
    for line in lines:
        parts = line.split("  ")
        current = parts[0]
        for part in parts[1:]:
            if wide(f"{current}  {part}", scale) <= room:
                current = f"{current}  {part}"
            else:
                fitted.append(current)
                current = part
        fitted.append(current)
    return fitted, scale, max(1, round(scale * 1.5))


def draw_text_block(
    image: np.ndarray, lines: list[str], origin: tuple[int, int] = (4, 4), *, bottom: bool = False
) -> None:
    """Text on a dark box, in place, scaled to the image so it stays legible from 128 px to 1080p and fits
    its width (`fit_text`).

    `bottom=True` measures the origin's y from the bottom edge (live statistics go there, clear of the labels).
    """
    if not lines:
        return
    lines, scale, thickness = fit_text(lines, image.shape[0], image.shape[1], origin[0])
    sizes = [cv2.getTextSize(line, _FONT, scale, thickness)[0] for line in lines]
    line_height = max(h for _, h in sizes) + int(8 * scale)
    x, y = origin
    if bottom:
        y = max(0, image.shape[0] - y - line_height * len(lines) - int(4 * scale))
    width = max(w for w, _ in sizes) + int(8 * scale)
    box = image[y : y + line_height * len(lines) + int(4 * scale), x : x + width]
    np.multiply(box, 0.35, out=box, casting="unsafe")  # darken rather than cover: the scene stays visible
    for row, line in enumerate(lines):
        baseline = y + line_height * (row + 1) - int(2 * scale)
        cv2.putText(
            image,
            line,
            (x + int(4 * scale), baseline),
            _FONT,
            scale,
            (255, 255, 255),
            thickness,
            cv2.LINE_AA,
        )


@lru_cache(maxsize=4096)
def _glyph_width(char: str, scale: float) -> int:
    """A character's advance in OpenCV's simplex font at `scale` (getTextSize's width less its 1 px of stroke)."""
    return cv2.getTextSize(char, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] - 1


@lru_cache(maxsize=64)
def _text_height(scale: float) -> tuple[int, int]:
    """(height above the baseline, depth below it) of the simplex font at `scale`."""
    (_, height), base = cv2.getTextSize("Ag#", cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    return height, base


def draw_objects(image: np.ndarray, objects: Objects) -> None:
    """Each object's box in its class's colour, in place, with `class score #track` on a filled tab above it
    (inside the box when the box touches the top edge). Line and text scale with the image like the text.

    Text widths come from cached glyph widths, not getTextSize per label: measuring each label took as long
    as drawing it, and a tracked frame of ten boxes has a budget of about a millisecond."""
    if not len(objects):
        return
    scale = max(0.35, round(image.shape[0] / 960, 2))
    thickness = max(1, round(image.shape[0] / 480))
    text_height, base = _text_height(scale)
    height, width = image.shape[:2]
    boxes = np.rint(objects.boxes).astype(np.int64)
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width - 1)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height - 1)
    for (x1, y1, x2, y2), color, label in zip(boxes.tolist(), objects.colors().tolist(), objects.labels()):
        cv2.rectangle(image, (x1, y1), (x2, y2), color, thickness)
        tab = text_height + base + 2
        top = y1 - tab if y1 >= tab else y1
        text_width = sum(_glyph_width(char, scale) for char in label) + 1
        cv2.rectangle(image, (x1, top), (x1 + text_width + 4, top + tab), color, cv2.FILLED)
        ink = (0, 0, 0) if sum(color) > 382 else (255, 255, 255)  # dark text on a light tab, light on a dark one
        cv2.putText(image, label, (x1 + 2, top + text_height + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, ink, 1, cv2.LINE_AA)


class Overlay:
    """Draws results like `render_overlay`, keeping its image buffers between frames of one size.

    A pipeline draws thousands of frames: reusing the buffers avoids allocating ~4 frame-sized arrays
    each time. The returned image is one of those buffers, valid until the next `render`.
    """

    def __init__(self, alpha: float = 0.5) -> None:
        self.alpha = alpha
        self._buffers: dict[str, np.ndarray] = {}

    def _buffer(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        buffer = self._buffers.get(name)
        if buffer is None or buffer.shape != shape:
            buffer = self._buffers[name] = np.empty(shape, np.uint8)
        return buffer

    def render(self, frame: np.ndarray, prediction: Prediction, steady: Prediction | None = None) -> np.ndarray:
        """Each segmentation mask blended over the frame (class 0 left clear), objects' boxes over that, text on
        top (with the steadied results beside the raw ones, when given)."""
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.size == 0:
            shape = getattr(frame, "shape", type(frame).__name__)
            raise FrameError(f"cannot draw on a frame of shape {shape}: expected (H, W, 3) uint8 BGR, at least 1x1")
        image = self._buffer("image", frame.shape)
        if prediction.overlay is not None and prediction.overlay.shape == frame.shape:
            np.copyto(image, prediction.overlay)  # the graph blended it: only boxes and text are left to draw
            _draw_all_objects(image, prediction)
            draw_text_block(image, _text_lines(prediction))
            return image
        np.copyto(image, frame)
        for result in prediction.values():
            if result.mask is not None:  # a per-pixel result; the others are drawn as text
                # OpenCV kernels throughout: NumPy fancy indexing is ~40x slower on a 480x640 frame.
                table = _lookup_table(len(result.task.classes))
                painted = cv2.applyColorMap(result.mask, table, dst=self._buffer("painted", frame.shape))
                blended = self._buffer("blended", frame.shape)
                cv2.addWeighted(image, 1 - self.alpha, painted, self.alpha, 0, dst=blended)
                # mask > 0 as 0/255; a threshold, not cv2.compare, whose scalar operand is ambiguous for a 1x1 mask
                keep_buffer = self._buffer("keep", result.mask.shape)
                keep = cv2.threshold(result.mask, 0, 255, cv2.THRESH_BINARY, dst=keep_buffer)[1]
                cv2.copyTo(blended, keep, image)  # class 0 stays clear
        _draw_all_objects(image, prediction)
        draw_text_block(image, _text_lines(prediction, steady))
        return image


def _draw_all_objects(image: np.ndarray, prediction: Prediction) -> None:
    for result in prediction.values():
        if result.objects is not None:  # a result with boxes (a detection task)
            draw_objects(image, result.objects)


def legend(prediction: Prediction) -> list[dict[str, Any]]:
    """The model's tasks with their classes and, for a result painted as a mask or drawn as boxes, the colour
    of each class (#rrggbb): what a viewer or a recording shows beside the overlay, read from the task specs."""
    tasks = []
    for name, result in prediction.items():
        painted = result.mask is not None and result.task.classes
        colours = class_colors(len(result.task.classes)).tolist() if painted else []
        if result.objects is not None and result.task.classes:  # boxes: the colour each class's boxes are drawn in
            colours = object_colors(len(result.task.classes)).tolist()
        tasks.append(
            {
                "name": name,
                "kind": result.task.kind.value,
                "classes": list(result.task.classes),
                "colors": ["#{:02x}{:02x}{:02x}".format(*bgr[::-1]) for bgr in colours],
            }
        )
    return tasks


def render_overlay(frame: np.ndarray, prediction: Prediction, alpha: float = 0.5) -> np.ndarray:
    """A new BGR image: each segmentation mask blended over the frame (class 0 left clear), boxes, text on top."""
    return Overlay(alpha).render(frame, prediction)
