"""The README's training tour, run top to bottom as written (issue 24: its last line evaluated a model of
synthetic scenes on the user's dataset, which cannot work).

The commands are read from the tour's fenced block, whatever lines it holds, and run in order in an empty
folder, in process. Only sizes change, so it takes a minute on 2 cores instead of an hour:

- `train`: `--epochs 1` (a `--resume` run: `--epochs 2`, one more than it trained), and `--train-size 48
  --val-size 16 --batch-size 16 --input-size 32x64 --no-plots --no-progress` added (a resumed run keeps
  its saved settings: only `--no-progress`);
- `eval`: `--frames 16` added (synthetic scenes); `export`: `--verify-frames 16` (int8: `--calib-size 16`);
- `cvat_export/`, the user's labels, is 40 frames in CVAT's format (tests/helpers.write_cvat_masks), and
  `configs/` is the repository's.

Without timm (the CPU torch build has no torchvision), the timm line must fail with the one-line hint that
says what to install; with timm (CI's second environment) it must train.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import shutil
from pathlib import Path

import pytest

from tests.helpers import invoke
from tests.label_files import write_cvat_masks

ROOT = Path(__file__).parents[1]
TINY_TRAIN = ["--train-size", "48", "--val-size", "16", "--batch-size", "16", "--input-size", "32x64", "--no-plots"]


def tour_commands(heading: str = "## Quick tour: training") -> list[list[str]]:
    """The argument lists of the first ```bash block after `heading` in README.md, comments dropped."""
    text = (ROOT / "README.md").read_text()
    block = re.search(re.escape(heading) + r"\n.*?```bash\n(.*?)```", text, re.DOTALL)
    assert block, f"README.md has no {heading!r} with a bash block"
    commands = [shlex.split(line, comments=True) for line in block[1].splitlines()]
    return [command for command in commands if command]


def tiny(args: list[str]) -> list[str]:
    """The substitutions the module docstring lists: sizes only."""
    args = list(args)
    command = args[0]

    def setting(flag: str, value: str) -> None:
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args.extend([flag, value])

    if command == "train":
        setting("--epochs", "2" if "--resume" in args else "1")
        args.extend(["--no-progress"] if "--resume" in args else [*TINY_TRAIN, "--no-progress"])
    elif command == "eval":
        setting("--frames", "16")
    elif command == "export":
        setting("--verify-frames", "16")
        if "int8" in args:
            setting("--calib-size", "16")
    return args


def _has_timm() -> bool:
    try:
        return importlib.util.find_spec("timm") is not None and __import__("timm") is not None
    except Exception:  # timm's import of torchvision fails beside the CPU torch build
        return False


def test_the_tour_is_read_whole_from_the_readme():
    commands = tour_commands()
    assert all(command[0] == "edgemtl" for command in commands), commands
    names = [command[1] for command in commands]
    assert {"train", "eval", "export", "data"} <= set(names) and len(commands) >= 10
    assert tiny(["train", "--epochs", "12"])[:3] == ["train", "--epochs", "1"]


@pytest.mark.slow
def test_the_training_tour_runs_top_to_bottom(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    write_cvat_masks(tmp_path / "cvat_export", 40)
    monkeypatch.chdir(tmp_path)
    timm = _has_timm()
    for command in tour_commands():
        args = tiny(command[1:])
        result = invoke(*args)
        shown = " ".join(command)
        if "--encoder" in args and args[args.index("--encoder") + 1].startswith("timm:") and not timm:
            assert result.exit_code == 1 and "torchvision" in result.stderr, (shown, result.output)
            continue
        assert result.exit_code == 0, f"{shown}\n{result.output}"
    # the user's model scored on the user's frames that training held out, named as such
    assert "val split derived as training derives it" in result.output, result.output
    for path in ("nav.onnx", "nav.int8.onnx", "cam.onnx", "mine.onnx", "runs/eval/mine/metrics.json"):
        assert (tmp_path / path).is_file(), path
