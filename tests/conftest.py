"""Shared fixtures: one tiny model trained and exported once per session, reused by every test."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from edgemtl.data.synthetic import make_dataset
from edgemtl.tasks import NAVIGATION_TASKS, TaskSpec
from tests.helpers import TINY_SIZE, train_split
from tests.runtime.objects_kit import OBJECTS_TASK

# No test downloads anything: timm and huggingface_hub stay off the network (timm encoders use random init).
os.environ["HF_HUB_OFFLINE"] = "1"


def _share_of_cores() -> int:
    """Under pytest-xdist, a worker's share of the cores: a worker per core each using every core for torch's
    and OpenMP's threads would oversubscribe them (the demo's training, 2 threads beside another worker's 1 on
    2 cores, took 6.5 min an epoch, against 50 s on 1 thread)."""
    return max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))


def pytest_configure(config: pytest.Config) -> None:
    if "PYTEST_XDIST_WORKER" in os.environ:
        import torch

        os.environ["OMP_NUM_THREADS"] = str(_share_of_cores())  # and the commands a test starts
        torch.set_num_threads(_share_of_cores())


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A worker that has run out of tests, or was given none, says so in the folder its run's workers share
    (xdist gives each the run's base temporary folder + its name): `join_idle_cores` counts them."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and session.config.option.basetemp:
        (Path(session.config.option.basetemp).parent / f"{worker}.done").touch()


@pytest.fixture
def join_idle_cores(tmp_path_factory):
    """For a test of minutes (the default demo): a callable (a `log` callback, say) that gives torch this
    worker's share of the cores plus those of the workers that have finished, so the test does not run on one
    core while the other stands idle after the rest of the suite."""
    import torch

    finished = tmp_path_factory.getbasetemp().parent

    def join(*_: object) -> None:
        workers = 1 + len(list(finished.glob("gw*.done")))
        torch.set_num_threads(min(os.cpu_count() or 1, _share_of_cores() * workers))

    yield join
    torch.set_num_threads(_share_of_cores())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest tests first (`@pytest.mark.slow(minutes=N)`, then the other slow ones), so a worker starts
    the default demo at once and the others fill in around it, rather than it starting late and running alone."""

    def minutes(item: pytest.Item) -> float:
        slow = item.get_closest_marker("slow")
        return -1.0 if slow is None else slow.kwargs.get("minutes", 0.0)

    items.sort(key=minutes, reverse=True)


@pytest.fixture
def python_signals():
    """SIGINT on Python's own handler (KeyboardInterrupt) and SIGTERM on the system default, as a program started
    from a terminal has them, for a test that sends itself a signal; what was there is put back after.

    A test must not take them as given: a suite run as a background job (`pytest &` from a script, some CI
    runners) inherits SIGINT ignored, and then Python installs no handler for it."""
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    for number, handler in previous.items():
        if handler is not None:  # None: a handler set from C, which Python cannot put back
            signal.signal(number, handler)


@pytest.fixture(autouse=True, scope="session")
def _verdict_cache(tmp_path_factory):
    """Backend parity verdicts go to a folder of this session's, not the user's ~/.cache/edgemtl."""
    os.environ["EDGEMTL_CACHE_DIR"] = str(tmp_path_factory.mktemp("edgemtl-cache"))


@pytest.fixture(scope="session")
def tiny_data():
    return make_dataset(48, TINY_SIZE, seed=0)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, tiny_data):
    """A nano model trained for one epoch on 32×32 scenes: seconds on a 2-core CPU."""
    from edgemtl.train import TrainConfig

    config = TrainConfig(preset="nano", input_size=TINY_SIZE, epochs=1, batch_size=16, seed=0, device="cpu")
    return train_split(config, NAVIGATION_TASKS, tiny_data, (40, 48), tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="session")
def exported_model(tmp_path_factory, trained_run, tiny_data) -> Path:
    from edgemtl.deploy import export_onnx
    from edgemtl.train import load_checkpoint

    path = tmp_path_factory.mktemp("export") / "tiny.onnx"
    export_onnx(load_checkpoint(trained_run.best_checkpoint), path, verify_data=tiny_data.subset(slice(0, 8)))
    return path


@pytest.fixture(scope="session")
def frame_sized_model(tmp_path_factory, trained_run) -> Path:
    """The tiny model exported with --frame-size dynamic: any frame in, masks at its size out."""
    from edgemtl.deploy import ExportOptions, export_onnx
    from edgemtl.train import load_checkpoint

    path = tmp_path_factory.mktemp("export") / "frame-sized.onnx"
    export_onnx(load_checkpoint(trained_run.best_checkpoint), path, ExportOptions(frame_size="dynamic"))
    return path


@pytest.fixture
def frame() -> np.ndarray:
    """A BGR frame of a size the model was not exported at, as a camera would give."""
    return np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)


# --- vector input: a small table of synthetic records, a tiny MLP trained on it once, and its export -------


@pytest.fixture(scope="session")
def vector_table(tmp_path_factory) -> Path:
    from edgemtl.data import write_table
    from edgemtl.data.synthetic.tabular import TABULAR_TASKS, make_table

    table = make_table({"train": 240, "val": 60, "test": 60}, seed=1, labelled_share=0.6)
    return write_table(tmp_path_factory.mktemp("vector") / "table.csv", table, TABULAR_TASKS)


@pytest.fixture(scope="session")
def vector_run(tmp_path_factory, vector_table):
    from edgemtl.commands.train import TrainOptions, run_train
    from edgemtl.data.synthetic.tabular import FEATURE_NAMES, TABULAR_TASKS
    from edgemtl.train import TrainConfig
    from edgemtl.train.config import DataConfig, RunConfig

    config = TrainConfig(input="vector", preset="nano", epochs=2, batch_size=32, plots=False, device="cpu")
    run = RunConfig(train=config, tasks=TABULAR_TASKS, data=DataConfig(train=str(vector_table), features=FEATURE_NAMES))
    return run_train(
        TrainOptions(config=run, out=tmp_path_factory.mktemp("vector_run") / "run", progress=False), log=lambda _: None
    )


@pytest.fixture(scope="session")
def vector_model(tmp_path_factory, vector_run) -> Path:
    from edgemtl.data.splits import open_recorded
    from edgemtl.deploy import export_onnx
    from edgemtl.train import load_checkpoint

    checkpoint = load_checkpoint(vector_run.best_checkpoint)
    rows = open_recorded(checkpoint.validation, size=None, tasks=checkpoint.tasks, features=checkpoint.features)
    path = tmp_path_factory.mktemp("vector_export") / "vector.onnx"
    export_onnx(checkpoint, path, verify_data=rows)
    return path


@pytest.fixture
def objects_task() -> TaskSpec:
    """A detection task named "objects": cone, person, robot (tests/runtime/objects_kit.py)."""
    return OBJECTS_TASK


@pytest.fixture(scope="session")
def detection_model(tmp_path_factory) -> Path:
    """A random-weight nano with a scene and a detection task ("obstacles": box, blob, cone) at 32x32, its class
    scores raised to about 0.9 and exported keeping 5 boxes: confident boxes on every frame (tracks form), for
    the runtime's plumbing."""
    import torch

    from edgemtl.data.synthetic import OBSTACLES_TASK
    from edgemtl.deploy import export_onnx
    from edgemtl.model import DEFAULT_MEAN, DEFAULT_STD, create_model
    from edgemtl.train import Checkpoint

    obstacles = TaskSpec(
        OBSTACLES_TASK.name,
        OBSTACLES_TASK.kind,
        OBSTACLES_TASK.classes,
        extra={**OBSTACLES_TASK.extra, "max_detections": 5, "score_threshold": 0.0},
    )
    tasks = (NAVIGATION_TASKS[0], obstacles)
    torch.manual_seed(0)
    model = create_model("nano", tasks).eval()
    with torch.no_grad():
        model.heads[obstacles.name].classes.bias.fill_(2.0)
    checkpoint = Checkpoint("nano", tasks, TINY_SIZE, DEFAULT_MEAN, DEFAULT_STD, model.state_dict())
    path = tmp_path_factory.mktemp("export") / "detect.onnx"
    export_onnx(checkpoint, path, overwrite=True)
    return path
