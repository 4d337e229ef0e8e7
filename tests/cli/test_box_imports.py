"""Issue 22: each box format round-trips import → data check → train 2 epochs → export → eval, on tiny data.

The fixtures are the tools' own formats (tests/data/tool_formats.py, each with the URL of its specification)."""

from __future__ import annotations

import pytest

from tests.data.test_import_boxes import SOURCES
from tests.helpers import invoke


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(SOURCES))
def test_each_box_format_round_trips_to_an_exported_model_that_scores_its_boxes(tmp_path, case):
    format_name, writer, _ = SOURCES[case]
    src, data, run = writer(tmp_path / "src"), tmp_path / "data", tmp_path / "run"
    result = invoke("data", "import", format_name, src, data)
    assert result.exit_code == 0 and "objects (detection)" in result.output, result.output
    result = invoke("data", "check", data)
    assert result.exit_code == 0, result.output
    train = ["train", "--data", data, "--epochs", 2, "--input-size", 32, "--batch-size", 2]
    result = invoke(*train, "--device", "cpu", "--no-progress", "-o", run)
    assert result.exit_code == 0, result.output
    result = invoke("export", run / "best.pt")
    assert result.exit_code == 0, result.output
    result = invoke("eval", data, "-m", run / "best.onnx", "-o", tmp_path / "eval", "--split", "all")
    assert result.exit_code == 0 and "objects" in result.output, result.output
