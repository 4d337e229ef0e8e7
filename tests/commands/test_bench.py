"""`edgemtl bench`: the table's rows and columns, the pipeline comparison, and the rows it must skip (and why).

Only the shape of the results is tested; the speeds themselves go to benchmarks/, not to pass/fail tests.
"""

from __future__ import annotations

import json

from tests.helpers import assert_one_line_error, invoke

# One thread: PyTorch's OpenMP threads stall at every barrier when the other core is busy (a shared
# machine), which made a tenth of a second take ten.
SMALL = ("--threads", 1, "--runs", 10, "--frame-size", "48x64", "--pipeline-frames", 12)


def test_bench_table_with_pytorch_and_the_pipeline(tmp_path, exported_model, trained_run):
    results = tmp_path / "bench.json"
    checkpoint = trained_run.best_checkpoint
    args = ("bench", "-m", exported_model, "--device", "cpu", "--batch", 1, "--batch", 3, *SMALL)
    result = invoke(*args, "--checkpoint", checkpoint, "--json", results)
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith("Machine: ") and "CPUs" in out and "onnxruntime" in out
    assert "| model | precision | runner | I/O binding | CUDA graphs | threads | measure | batch |" in out

    data = json.loads(results.read_text())
    rows = [(r["runner"], r["measure"], r["batch"]) for r in data["rows"]]
    assert rows == [
        ("CPUExecutionProvider", "engine only, 32x32 input", 1),
        ("CPUExecutionProvider", "engine only, 32x32 input", 3),
        ("CPUExecutionProvider", "predict + overlay, 48x64 frame", 1),
        (rows[3][0], "engine only, 32x32 input", 1),
        (rows[4][0], "engine only, 32x32 input", 3),
    ]
    assert rows[3][0].startswith("PyTorch") and "eager" in rows[3][0]
    for row in data["rows"]:
        assert 0 < row["p50_ms"] <= row["p99_ms"] and row["fps"] > 0
        assert row["model"] in (exported_model.name, checkpoint.name)
    assert [r["io_binding"] for r in data["rows"]] == ["off", "off", "off", "-", "-"]
    assert [r["threads"] for r in data["rows"]] == ["1", "1", "1", "1", "1"]
    assert {r["device"] for r in data["rows"]} == {"cpu"}  # each row is compared on its own kind of device

    (pipeline,) = data["pipelines"]
    assert pipeline["model_alone_fps"] > 0 and pipeline["pipeline_fps"] > 0 and pipeline["frames"] == 12
    assert pipeline["ratio"] == round(pipeline["pipeline_fps"] / pipeline["model_alone_fps"], 4)
    assert "| model alone (FPS) | pipeline on a file (FPS) | pipeline / model |" in out
    speedups = [note for note in data["notes"] if "as fast as PyTorch eager" in note]
    assert len(speedups) == 2 and "batch 1" in speedups[0] and "batch 3" in speedups[1]
    (stages,) = data["stages"]
    assert stages["frame"] == "48x64" and list(stages["ms"]) == [
        "decode",
        "preprocess",
        "inference",
        "postprocess",
        "overlay",
        "write",
    ]
    assert all(ms > 0 for ms in stages["ms"].values()) and "| decode | preprocess | inference |" in out


def test_bench_splits_the_host_path_and_the_in_graph_path_side_by_side(tmp_path, exported_model, frame_sized_model):
    results = tmp_path / "bench.json"
    args = ("bench", "-m", exported_model, "-m", frame_sized_model, "--device", "cpu", *SMALL)
    result = invoke(*args, "--json", results)
    assert result.exit_code == 0, result.output
    data = json.loads(results.read_text())
    host, in_graph = data["stages"]
    assert (host["model"], in_graph["model"]) == (exported_model.name, frame_sized_model.name)
    # The frame-sized file is fed the camera's frame (its engine-only row says so) and needs no host resize.
    assert ("CPUExecutionProvider", "engine only, 48x64 input", 1) in [
        (r["runner"], r["measure"], r["batch"]) for r in data["rows"] if r["model"] == frame_sized_model.name
    ]
    assert set(in_graph["ms"]) == set(host["ms"])  # the same stages, so the two read side by side


def test_bench_says_why_rows_are_missing(exported_model):
    result = invoke(
        "bench", "-m", exported_model, "--device", "cpu", "--device", "cuda", "--pipeline-frames", 0, *SMALL[:6]
    )
    assert result.exit_code == 0, result.output
    assert "PyTorch eager: skipped (an .onnx file holds no PyTorch weights; pass --checkpoint" in result.output
    assert "pipeline on a file" not in result.output
    # No GPU here: the CUDA row is replaced by the reason; where a GPU works, the row is there instead.
    assert "on cuda: skipped (device 'cuda'" in result.output or "| CUDAExecutionProvider |" in result.output


def test_bench_of_several_models(tmp_path, exported_model):
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(exported_model.read_bytes())
    result = invoke("bench", "-m", exported_model, "-m", copy, "--device", "cpu", "--pipeline-frames", 0, *SMALL[:6])
    assert result.exit_code == 0, result.output
    assert result.output.count("| copy.onnx | fp32 | CPUExecutionProvider |") == 2
    assert result.output.count(f"| {exported_model.name} | fp32 | CPUExecutionProvider |") == 2


def test_bench_of_a_missing_model(tmp_path):
    path = tmp_path / "missing.onnx"
    assert_one_line_error(invoke("bench", "-m", path, "--device", "cpu"), str(path), "does not exist")
