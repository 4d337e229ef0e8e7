"""How a camera frame of any size becomes the model's input, and how a mask goes back: the resize policy.

One definition, read by every place that resizes a frame for a model-size file: the Engine
(`Engine.prepare`, OpenCV) and the C++ recipe (export/cpp/main.cpp, from the policy the file's metadata
records). So a frame is cut, padded and averaged the same way wherever it runs. A frame-sized export
(`--frame-size`) resizes inside its graph with the stretch policy only.

- ``stretch``: the whole frame resized to the input; a frame of another aspect is distorted.
- ``letterbox``: the whole frame scaled to fit inside the input, centred, the rest padded with
  `PAD_VALUE`; nothing is lost or distorted, some input pixels are wasted.
- ``crop``: the centre of the frame with the input's aspect, scaled to fill the input; the frame's
  borders are not seen. Mapped back, a mask's pixels outside the crop take the nearest predicted class.

Resampling is OpenCV's area averaging (`cv2.INTER_AREA`, what training data is resized with).
NumPy (and OpenCV when a frame is resized): the runtime reads this on devices without PyTorch.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass

import numpy as np

from edgemtl.errors import ConfigError

POLICIES = ("stretch", "letterbox", "crop")
DEFAULT_POLICY = "stretch"  # what every file exported before policies existed did
PAD_VALUE = 0  # letterbox padding, on the frame's 0..255 scale (black)

Box = tuple[int, int, int, int]  # (top, left, height, width)


def check_policy(policy: str) -> str:
    """The policy name, or a ConfigError naming the closest valid one."""
    if policy not in POLICIES:
        close = difflib.get_close_matches(str(policy), POLICIES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown resize policy {policy!r}: expected one of {', '.join(POLICIES)}{hint}")
    return policy


@dataclass(frozen=True)
class Fit:
    """Where a frame's pixels go under a policy: `source` (the part of the frame that is used, in frame
    pixels) is resized into `target` (the part of the model input it fills; the rest is padding)."""

    frame_size: tuple[int, int]  # (height, width)
    input_size: tuple[int, int]
    policy: str
    source: Box
    target: Box

    @property
    def identity(self) -> bool:
        return self.frame_size == self.input_size


def fit(frame_size: tuple[int, int], input_size: tuple[int, int], policy: str = DEFAULT_POLICY) -> Fit:
    """The boxes for a frame of `frame_size` fed to a model taking `input_size` under `policy`.

    Sides are rounded to the nearest pixel and offsets floored, so a box is centred to within half a pixel;
    C++ and the graph use these very numbers (the graph's are computed here at export).
    """
    check_policy(policy)
    (frame_h, frame_w), (input_h, input_w) = frame_size, input_size
    whole_frame, whole_input = (0, 0, frame_h, frame_w), (0, 0, input_h, input_w)
    if policy == "letterbox":
        scale = min(input_h / frame_h, input_w / frame_w)
        height, width = min(input_h, _round(frame_h * scale)), min(input_w, _round(frame_w * scale))
        target = ((input_h - height) // 2, (input_w - width) // 2, max(height, 1), max(width, 1))
        return Fit(tuple(frame_size), tuple(input_size), policy, whole_frame, target)
    if policy == "crop":
        scale = max(input_h / frame_h, input_w / frame_w)
        height, width = min(frame_h, _round(input_h / scale)), min(frame_w, _round(input_w / scale))
        source = ((frame_h - height) // 2, (frame_w - width) // 2, max(height, 1), max(width, 1))
        return Fit(tuple(frame_size), tuple(input_size), policy, source, whole_input)
    return Fit(tuple(frame_size), tuple(input_size), policy, whole_frame, whole_input)


def _round(value: float) -> int:
    return math.floor(value + 0.5)


def resize_frame(frame: np.ndarray, where: Fit, out: np.ndarray | None = None) -> np.ndarray:
    """The (H, W, 3) uint8 frame as the model's input under `where`'s policy, into `out` if given."""
    if where.identity:
        return frame
    import cv2  # here, not at the top: the foundation is NumPy only, and the graph's side needs no OpenCV

    top, left, height, width = where.source
    part = frame[top : top + height, left : left + width]
    t_top, t_left, t_height, t_width = where.target
    if (t_height, t_width) == where.input_size:
        return cv2.resize(part, (t_width, t_height), dst=out, interpolation=cv2.INTER_AREA)
    canvas = out if out is not None else np.empty((*where.input_size, 3), np.uint8)
    canvas[:] = PAD_VALUE
    canvas[t_top : t_top + t_height, t_left : t_left + t_width] = cv2.resize(
        part, (t_width, t_height), interpolation=cv2.INTER_AREA
    )
    return canvas


def restore_mask(mask: np.ndarray, where: Fit) -> np.ndarray:
    """A (h, w) class mask at the model's input size → the frame's own size and coordinates.

    The letterbox padding is cut away, the mask resized (nearest: class ids are never blended) onto the
    part of the frame that was seen; under `crop` the unseen borders take the class of the nearest edge
    pixel (edge replication), as the model's view ends there.
    """
    if mask.shape[:2] != where.input_size:
        raise ConfigError(f"mask is {mask.shape[:2]}: expected the model input size {where.input_size}")
    import cv2

    t_top, t_left, t_height, t_width = where.target
    content = np.ascontiguousarray(mask[t_top : t_top + t_height, t_left : t_left + t_width])
    top, left, height, width = where.source
    if content.shape[:2] != (height, width):
        content = cv2.resize(content, (width, height), interpolation=cv2.INTER_NEAREST)
    frame_h, frame_w = where.frame_size
    if (height, width) == (frame_h, frame_w):
        return content
    bottom, right = frame_h - top - height, frame_w - left - width
    return cv2.copyMakeBorder(content, top, bottom, left, right, cv2.BORDER_REPLICATE)


def restore_boxes(boxes: np.ndarray, where: Fit) -> np.ndarray:
    """(k, 4) float x1, y1, x2, y2 in the model input's pixels → the frame's pixels, undoing `where`'s policy:
    the letterbox offset taken away, the scale undone, a crop's offset added back; clipped to the frame.

    The same mapping as the masks' (`restore_mask`): the input's `target` part shows the frame's `source` part.
    """
    boxes = np.asarray(boxes, np.float32)
    if where.identity or not len(boxes):
        return boxes
    top, left, height, width = where.source
    t_top, t_left, t_height, t_width = where.target
    scale = np.array([width / t_width, height / t_height] * 2, np.float32)
    shift_in = np.array([t_left, t_top] * 2, np.float32)
    shift_out = np.array([left, top] * 2, np.float32)
    frame_h, frame_w = where.frame_size
    out = (boxes - shift_in) * scale + shift_out
    return np.clip(out, 0, np.array([frame_w, frame_h] * 2, np.float32)).astype(np.float32)
