"""Training augmentation that keeps every task's target consistent with the pixels.

A horizontal flip mirrors the image and every mask, then lets each task's kind do what the task declares
(edgemtl.kinds.options): swap the classes that are mirror images (TaskSpec.extra["flip_pairs"], e.g. the
navigation scene's left ↔ right, in labels, multilabel flags and mask ids) or negate regressed values
that change sign (extra["flip_negate"], e.g. a path curvature).
Random scale and crop zooms each frame in or out by a factor from `scale`, at a random position; image
and masks go through the same affine map, the image bilinear, the masks nearest-neighbour (class ids
are never blended), and pixels zoomed out from beyond the frame are unlabelled (255) in the masks.
Boxes (detection) go through the same map (`KindDef.warp`): mirrored, scaled and shifted, clipped to the
frame, and dropped when less than a quarter of a box stays in it (edgemtl.kinds.boxes).
Colour jitter changes brightness, contrast and saturation, which no target depends on.

Why NumPy/OpenCV on the CPU, per batch: the trainer holds the dataset as uint8 arrays and slices a batch
by index, so augmenting that slice costs one `cv2.warpAffine` per image and mask (flip, scale and crop in
a single resampling) and one `cv2.transform` per image for the colour (jitter composes into one 3×4
colour matrix): about 0.2 ms an image at 128×128 on one core, small beside the training step. It needs no worker
processes, keeps `edgemtl.data` free of PyTorch, and draws from one `numpy.random.Generator`, so a run
is reproducible and the generator's state can be checkpointed for an exact resume.

Per-image targets are not changed by scale and crop, so `scale` is refused unless every per-image task
declares that its target survives a zoom (`AugmentConfig.check_tasks`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edgemtl.errors import ConfigError
from edgemtl.kinds import kind_of
from edgemtl.tasks import IGNORE_PIXEL, TaskSpec

_LUMA_BGR = np.array([0.114, 0.587, 0.299])  # ITU-R BT.601 weights, in OpenCV's order


@dataclass(frozen=True)
class AugmentConfig:
    """What to augment; the defaults change nothing, so augmentation is opt-in."""

    flip: float = 0.0  # probability of a horizontal flip; 0.5 for scenes without a preferred side
    jitter: float = 0.0  # colour jitter strength j: brightness, contrast and saturation each × U(1-j, 1+j)
    scale: tuple[float, float] = (1.0, 1.0)  # zoom range: > 1 crops in, < 1 zooms out (an unlabelled border)

    def __post_init__(self) -> None:
        scale = tuple(self.scale) if isinstance(self.scale, list | tuple) else (self.scale,)
        object.__setattr__(self, "scale", scale)
        if not (isinstance(self.flip, int | float) and 0 <= self.flip <= 1):
            raise ConfigError(f"augment flip {self.flip!r} is not usable: expected a probability in 0..1")
        if not (isinstance(self.jitter, int | float) and 0 <= self.jitter < 1):
            raise ConfigError(f"augment jitter {self.jitter!r} is not usable: expected a strength in 0..1 (e.g. 0.2)")
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in scale)
        if not (len(scale) == 2 and numbers and 0 < scale[0] <= scale[1] <= 4):
            raise ConfigError(
                f"augment scale {self.scale!r} is not usable: expected (low, high) zoom factors with "
                "0 < low ≤ high ≤ 4, e.g. (0.8, 1.2)"
            )

    @property
    def enabled(self) -> bool:
        return self.flip > 0 or self.jitter > 0 or self.scale != (1.0, 1.0)

    def check_tasks(self, tasks: tuple[TaskSpec, ...]) -> None:
        """Refuse scale and crop where it would make a per-image target false.

        Masks move with the pixels, but a label, a set of visible objects or a regressed distance read off
        the whole frame may not survive a zoom (an obstacle cropped away, its base moved up the frame).
        Only tasks that declare `extra["scale_invariant"] = true` may be trained with `scale`.
        """
        if self.scale == (1.0, 1.0):
            return
        broken = [t.name for t in tasks if kind_of(t).per_image and not t.extra.get("scale_invariant", False)]
        if broken:
            raise ConfigError(
                f"augment scale {list(self.scale)} would change the targets of tasks {broken} without updating "
                "them: leave scale at [1, 1], or mark a task whose target survives a zoom with "
                "extra = { scale_invariant = true }"
            )


def _affine(flip: bool, scale: float, offset: np.ndarray, height: int, width: int) -> np.ndarray:
    """(2, 3) map from input to output pixels: zoom by scale about a window at offset, then mirror.

    The window is the part of the input that fills the output, (height, width) / scale, placed at a
    fraction `offset` of the room there is (inside the frame when zooming in, around it when zooming out).
    Pixel centres map to pixel centres, so scale 1 without flip is the identity, exactly.
    """
    y0 = offset[0] * (height - height / scale)
    x0 = offset[1] * (width - width / scale)
    ty = scale * (0.5 - y0) - 0.5
    tx = scale * (0.5 - x0) - 0.5
    if flip:
        return np.array([[-scale, 0.0, width - 1 - tx], [0.0, scale, ty]])
    return np.array([[scale, 0.0, tx], [0.0, scale, ty]])


def _jitter(images: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Brightness b, contrast c (about the mean luminance m) and saturation s (about each pixel's grey).

    All three are linear in the colour, so they compose into one 3×4 matrix per image, applied by one
    cv2.transform (rounded and clipped to uint8): x → c·b·S·x + (1-c)·b·m, with S = s·I + (1-s)·G
    and G the matrix giving each channel the pixel's luminance (S maps grey to itself).
    """
    factors = rng.uniform(1 - strength, 1 + strength, (len(images), 3))
    grey = np.tile(_LUMA_BGR, (3, 1))  # G: (3, 3)
    out = np.empty_like(images)
    for i, (brightness, contrast, saturation) in enumerate(factors):
        mean = float(np.dot(cv2.mean(images[i])[:3], _LUMA_BGR))
        colour = saturation * np.eye(3) + (1 - saturation) * grey
        matrix = np.hstack([contrast * brightness * colour, np.full((3, 1), (1 - contrast) * brightness * mean)])
        out[i] = cv2.transform(images[i], matrix)
    return out


def augment_batch(
    images: np.ndarray,
    targets: dict[str, np.ndarray],
    tasks: tuple[TaskSpec, ...],
    config: AugmentConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Augment one training batch: images (N, H, W, 3) uint8 BGR, targets as in ArrayDataset.

    Returns new arrays (the inputs are not modified); with a disabled config, the inputs themselves.
    Targets of names not among tasks are returned unchanged. Missing targets (partial labels) stay missing.
    """
    if not config.enabled or len(images) == 0:
        return images, targets
    n, height, width = images.shape[:3]
    flips = rng.random(n) < config.flip
    scales = rng.uniform(*config.scale, n) if config.scale != (1.0, 1.0) else np.ones(n)
    offsets = rng.random((n, 2))
    out_images = images.copy()
    out = dict(targets)
    masks = {t.name: targets[t.name].copy() for t in tasks if kind_of(t).per_pixel}
    for i in np.flatnonzero(flips | (scales != 1.0)):
        matrix = _affine(bool(flips[i]), float(scales[i]), offsets[i], height, width)
        out_images[i] = cv2.warpAffine(
            images[i], matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
        )
        for name, mask in masks.items():
            mask[i] = cv2.warpAffine(
                targets[name][i],
                matrix,
                (width, height),
                flags=cv2.INTER_NEAREST,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=IGNORE_PIXEL,
            )
    out.update(masks)
    moved = {t.name: out[t.name].copy() for t in tasks if not kind_of(t).per_image and not kind_of(t).per_pixel}
    for i in np.flatnonzero(flips | (scales != 1.0)) if moved else ():
        matrix = _affine(bool(flips[i]), float(scales[i]), offsets[i], height, width)
        for task in tasks:
            if task.name in moved:
                kind_of(task).warp(task, moved[task.name], int(i), matrix, (height, width))
    out.update(moved)
    for task in tasks if flips.any() else ():
        out[task.name] = kind_of(task).flip(task, out[task.name], flips)  # masks: mirrored above already
    if config.jitter > 0:
        out_images = _jitter(out_images, config.jitter, rng)
    return out_images, out
