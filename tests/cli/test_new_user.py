"""What a new user met running the README's commands as written (issue 24, item 7): each a one-line answer that
says what to do, instead of a traceback, a silent no-op or a number that means something else."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

from edgemtl.commands.evaluate import EvalRequest, evaluate_on, open_evaluator, run_eval
from edgemtl.data.folder import write_dataset
from edgemtl.data.splits import training_sets
from edgemtl.model.timm_encoder import TIMM_PAIR
from edgemtl.runtime.providers import ort_reason
from edgemtl.tasks import NAVIGATION_TASKS
from tests.helpers import TINY_SIZE, assert_one_line_error, invoke, write_foreign_onnx, write_mjpeg_avi


def _without(monkeypatch, missing: str, *importers: str) -> None:
    """A runtime-only install: `missing` cannot be imported, and the edgemtl modules importing it are not loaded."""
    for name in [missing, *(name for name in sys.modules if name.startswith(f"{missing}."))]:
        monkeypatch.setitem(sys.modules, name, None)  # `import missing(.sub)` raises ModuleNotFoundError
    for name in list(sys.modules):
        if name.startswith(importers):
            monkeypatch.delitem(sys.modules, name)


@pytest.mark.parametrize(
    ("output", "missing", "importers", "extra"),
    [
        ("http://127.0.0.1:0", "aiohttp", ("edgemtl.runtime.viewer",), "viewer"),
        ("run.mcap", "foxglove_schemas_protobuf", ("edgemtl.runtime.recording",), "mcap"),
        ("run.mcap", "mcap", ("edgemtl.runtime.recording",), "mcap"),
    ],
)
def test_an_output_whose_library_is_missing_names_the_extra(
    exported_model, tmp_path, monkeypatch, output, missing, importers, extra
):
    clip = write_mjpeg_avi(tmp_path / "clip.avi", 3)
    monkeypatch.chdir(tmp_path)
    _without(monkeypatch, missing, *importers)
    result = invoke("camera", clip, "-m", exported_model, "-o", output)
    assert_one_line_error(result, output, missing, f"pip install 'edgemtl[{extra}]'")
    assert not (tmp_path / "run.mcap").exists()


@pytest.fixture(scope="module")
def unsplit_folder(tmp_path_factory, tiny_data):
    """40 labelled frames in the folder format, with no split column (as `data import` writes them)."""
    folder = write_dataset(tmp_path_factory.mktemp("unsplit") / "my_dataset", tiny_data.subset(slice(0, 40)))
    assert "split" not in (folder / "labels.csv").read_text().splitlines()[0]
    return folder


@pytest.mark.parametrize(("split", "seed"), [("val", 0), ("val", 3), ("train", 0)])
def test_a_split_the_data_does_not_name_is_the_holdout_training_used(
    exported_model, unsplit_folder, tmp_path, split, seed
):
    result = invoke(
        "eval", unsplit_folder, "-m", exported_model, "--split", split, "--seed", seed, "-o", tmp_path / "e"
    )
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    how = f"{split} split derived as training derives it (it has no split column: seeded holdout, seed {seed})"
    assert f"({how})" in first
    trained, validated = training_sets(
        unsplit_folder, None, size=TINY_SIZE, tasks=NAVIGATION_TASKS, train_count=0, val_count=0, seed=seed
    )
    expected = validated if split == "val" else trained
    assert f", {len(expected)} frames" in first and len(expected) < 40
    # the very frames training held out (or kept): the same metrics as scoring that subset directly
    report = run_eval(EvalRequest(exported_model, str(unsplit_folder), split=split, seed=seed, device="cpu",
                                  out=tmp_path / "api"))  # fmt: skip
    direct = evaluate_on(open_evaluator(exported_model, "cpu"), expected, "x", tmp_path / "direct")
    assert report.metrics == direct.metrics


def test_a_test_split_the_data_does_not_have_is_one_line(exported_model, unsplit_folder, tmp_path):
    result = invoke("eval", unsplit_folder, "-m", exported_model, "--split", "test", "-o", tmp_path / "e")
    assert_one_line_error(result, str(unsplit_folder), "no test split", "--split val", "--split all")
    assert not (tmp_path / "e").exists()


def test_a_split_column_is_still_obeyed_and_all_means_every_frame(exported_model, unsplit_folder, tmp_path):
    folder = shutil.copytree(unsplit_folder, tmp_path / "split")
    lines = (folder / "labels.csv").read_text().splitlines()
    marks = ["val" if i % 5 == 0 else "test" if i % 5 == 1 else "train" for i in range(len(lines) - 1)]
    rows = [lines[0] + ",split"] + [f"{line},{mark}" for line, mark in zip(lines[1:], marks)]
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    for split, count in (("val", 8), ("test", 8), ("all", 40)):
        result = invoke("eval", folder, "-m", exported_model, "--split", split, "-o", tmp_path / split)
        assert result.exit_code == 0, result.output
        name = "all frames" if split == "all" else f"{split} split"
        assert f"({name}), {count} frames" in result.output.splitlines()[0]


def test_an_onnx_runtime_load_error_keeps_its_reason_and_drops_the_cpp_signature(tmp_path):
    model = write_foreign_onnx(tmp_path / "plain.onnx", ir_version=99)  # newer than any onnxruntime reads
    line = assert_one_line_error(invoke("info", model), str(model), "Unsupported model IR version: 99, max supported")
    assert "onnxruntime::" not in line and ".cc:" not in line and "Load model from" not in line, line
    # the message the issue quotes, whole: its reason survives however long the signature before it
    signature = ", ".join(f"const onnxruntime::Option{i}&" for i in range(40))
    message = (
        "[ONNXRuntimeError] : 1 : FAIL : Load model from plain.onnx failed:/onnxruntime_src/onnxruntime/core/graph/"
        f"model.cc:256 onnxruntime::Model::Model(onnx::ModelProto&&, {signature}) Unsupported model IR version: 14, "
        "max supported IR version: 13\n"
    )
    assert ort_reason(RuntimeError(message)) == "Unsupported model IR version: 14, max supported IR version: 13"
    assert ort_reason(RuntimeError("[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Protobuf parsing failed.")) == (
        "Protobuf parsing failed."
    )


@pytest.mark.parametrize("failure", ["missing", "torchvision"])
def test_the_timm_error_names_the_torch_and_torchvision_pair_that_imports(tmp_path, monkeypatch, failure):
    if failure == "missing":
        monkeypatch.setitem(sys.modules, "timm", None)
    else:  # what torchvision raises beside a torch build it was not made for, a line of many
        import builtins

        real_import = builtins.__import__

        def failing(name, *args, **kwargs):
            if name == "timm":
                raise RuntimeError("operator torchvision::nms does not exist\nmore lines")
            return real_import(name, *args, **kwargs)

        monkeypatch.delitem(sys.modules, "timm", raising=False)
        monkeypatch.setattr(builtins, "__import__", failing)
    result = invoke("train", "--encoder", "timm:regnetx_002", "--epochs", 1, "-o", tmp_path / "run")
    line = assert_one_line_error(result, "timm", f'pip install {TIMM_PAIR} -e ".[dev,timm]"')
    assert "pip install edgemtl[timm]" not in line
    # the README installs exactly that pair
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert f'pip install {TIMM_PAIR} -e ".[dev,timm]"' in readme


ROOT = Path(__file__).parents[2]
WIDTH_FIRST = (
    re.compile(r"\{[^{}]*width[^{}]*\}\s?[x×]\s?\{[^{}]*height[^{}]*\}"),  # f"{width}x{height}"
    re.compile(r"\{[^{}]*\[1\][^{}]*\}\s?[x×]\s?\{[^{}]*\[0\][^{}]*\}"),  # f"{shape[1]}x{shape[0]}"
)


def test_sizes_are_written_height_first_as_the_flags_take_them():
    """`bench` wrote "160x96 input" beside "96x160": every size in output and docs is height x width."""
    found = []
    for path in [
        *(ROOT / "edgemtl").rglob("*.py"),
        *(ROOT / "benchmarks").rglob("*.py"),
        *(ROOT / "demos").rglob("*.py"),
    ]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if any(pattern.search(line) for pattern in WIDTH_FIRST):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    for path in (ROOT / "export").rglob("*.cpp"):  # the C++ recipe's own output
        found += [f"{path.relative_to(ROOT)}: {line.strip()}" for line in path.read_text().splitlines()
                  if re.search(r"cols\s*<<\s*\"x\"\s*<<\s*\S*rows", line)]  # fmt: skip
    for path in [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), ROOT / "export" / "README.md"]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for match in re.finditer(r"\b(\d{2,4}) ?[x×] ?(\d{2,4})\b", line):
                if int(match[1]) > int(match[2]):  # camera frames are wider than high: this is width first
                    found.append(f"{path.relative_to(ROOT)}:{number}: {match[0]}")
    assert not found, "sizes written width first (write height x width):\n" + "\n".join(found)
