"""`make_dataset`: n sampled scenes, rendered, with the targets of the tasks asked for, as an ArrayDataset.

Separate from `drive_sequence` (drives.py) because the two draw scenes differently: a dataset draws each
scene from its own (seed, i) stream with balanced labels, a drive evolves one scene frame by frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgemtl.data.dataset import ArrayDataset, check_image_size
from edgemtl.data.synthetic.render import render_scene
from edgemtl.data.synthetic.sampling import sample_scene_params
from edgemtl.data.synthetic.targets import _IMAGE_TARGETS, _check_synthetic_tasks, image_targets, obstacle_boxes
from edgemtl.data.synthetic.tasks import OBSTACLES_TASK
from edgemtl.errors import ConfigError
from edgemtl.kinds.boxes import MAX_BOXES
from edgemtl.tasks import NAVIGATION_DIRECTIONS, NAVIGATION_TASKS, TaskSpec


def make_dataset(
    n: int, size: tuple[int, int] = (128, 128), seed: int = 0, tasks: Sequence[TaskSpec] = NAVIGATION_TASKS
) -> ArrayDataset:
    """n scenes with targets for `tasks` (any of ALL_SYNTHETIC_TASKS); scene labels cycle left .. blocked.

    Scene i is drawn from its own generator seeded by (seed, i): the same arguments give the same arrays,
    and a larger n extends a smaller one rather than reshuffling it. The tasks only choose which targets are
    kept, never the scenes, so the images are the same whatever tasks are asked for.
    """
    if int(n) < 0 or int(seed) < 0:
        raise ConfigError(f"make_dataset(n={n!r}, seed={seed!r}): expected n ≥ 0 and seed ≥ 0")
    height, width = check_image_size(size, minimum=8)
    tasks = _check_synthetic_tasks(tasks)
    images = np.empty((n, height, width, 3), dtype=np.uint8)
    masks = np.empty((n, height, width), dtype=np.uint8)
    labels = np.empty(n, dtype=np.int64)
    per_image = {t.name: np.empty((n, t.num_outputs), dtype=np.float32) for t in tasks if t.name in _IMAGE_TARGETS}
    boxes = np.empty((n, MAX_BOXES, 5), np.float32) if OBSTACLES_TASK in tasks else None
    for i in range(n):
        params = sample_scene_params(np.random.default_rng([seed, i]), direction=i % len(NAVIGATION_DIRECTIONS))
        images[i], masks[i], labels[i] = render_scene(params, (height, width))
        if boxes is not None:
            boxes[i] = obstacle_boxes(params, (height, width))
        if per_image:
            values = image_targets(params)
            for name, target in per_image.items():
                target[i] = values[name]
    scene, segmentation = NAVIGATION_TASKS  # where to go (the scene label) and what is where (the mask)
    everything = {scene.name: labels, segmentation.name: masks, **per_image, OBSTACLES_TASK.name: boxes}
    return ArrayDataset(images, {task.name: everything[task.name] for task in tasks})
