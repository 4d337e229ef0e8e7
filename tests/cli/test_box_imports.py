"""Issue 22: each box format round-trips import → data check → train 2 epochs → export → eval, on tiny data.

The fixtures are the tools' own formats (tests/data/tool_formats.py, each with the URL of its specification)."""

from __future__ import annotations

import pytest

from tests.data.test_import_boxes import SOURCES
from tests.data.tool_formats import FRAMES, expected_boxes
from tests.helpers import invoke, strict_loads

#: One layout per format: the other layouts of a format (VOC without its class list, YOLO's classes.txt and
#: Roboflow's folders) differ only in what the import reads, which tests/data/test_import_boxes.py reads back
#: through the loader for every layout; training on them again would repeat these steps (CI time).
ROUND_TRIPS = ["coco", "cvat", "labelme", "voc-labelme2voc", "yolo-data-yaml"]


@pytest.mark.slow
@pytest.mark.parametrize("case", ROUND_TRIPS)
def test_each_box_format_round_trips_to_an_exported_model_that_scores_its_boxes(tmp_path, case):
    format_name, writer, classes = SOURCES[case]
    src, data, run = writer(tmp_path / "src"), tmp_path / "data", tmp_path / "run"
    result = invoke("data", "import", format_name, src, data)
    assert result.exit_code == 0 and "objects (detection)" in result.output, result.output
    result = invoke("data", "check", data)
    assert result.exit_code == 0 and "objects (detection)" in result.output, result.output
    # the import applied the loader's rules: nothing is left for the loader to drop or clip
    assert "objects degenerate boxes dropped: 0; boxes clipped at the frame: 0" in result.output, result.output
    train = ["train", "--data", data, "--epochs", 2, "--input-size", 32, "--batch-size", 2]
    result = invoke(*train, "--device", "cpu", "--no-progress", "-o", run)
    assert result.exit_code == 0 and "objects map" in result.output, result.output
    result = invoke("export", run / "best.pt")
    assert result.exit_code == 0, result.output
    for output in ("objects_boxes", "objects_scores"):  # boxes matched one to one with their classes (KindDef.parity)
        assert f"{output}: " in result.output and "ok" in result.output.split(f"{output}: ")[1].split("\n")[0]
    result = invoke("eval", data, "-m", run / "best.onnx", "-o", tmp_path / "eval", "--split", "all")
    assert result.exit_code == 0, result.output
    scores = strict_loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]["objects"]
    names = classes or ["car", "cone"]
    assert set(scores) == {"map", "map_50", "map_75", *(f"ap_{name}" for name in names)}, scores
    present = {box["class"] for i in range(FRAMES) for box in expected_boxes(i)}
    absent = {f"ap_{name}" for name in names if name not in present}  # VOC's class list names road: no box of it
    assert all(scores[key] is None for key in absent), f"nothing to score is NaN (null in JSON), not 0: {scores}"
    assert all(0.0 <= value <= 1.0 for key, value in scores.items() if key not in absent), scores
