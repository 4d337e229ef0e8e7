"""The live statistics drawn on camera frames: figures from the second frame of a fast file on, and a line
that fits a small frame's width (issue 24: a fast file read "measuring..." on every frame, and a 320-pixel
frame cut the line off at the right)."""

from __future__ import annotations

import numpy as np
import pytest

from edgemtl.runtime import Engine, open_source, run_pipeline
from edgemtl.runtime import pipeline as pipeline_module
from edgemtl.runtime.overlay import draw_text_block, fit_text
from edgemtl.runtime.sinks import NullSink
from tests.helpers import write_mjpeg_avi

WIDE = "1234.5 FPS  latency 1234.5 ms (p99 12345.6)  dropped 123456"  # the widest the statistics get


def test_a_fast_file_shows_its_figures_from_the_second_frame_on(exported_model, tmp_path, monkeypatch):
    drawn: list[str] = []
    real = pipeline_module.draw_text_block

    def record(image, lines, *args, **kwargs):
        drawn.extend(lines)
        return real(image, lines, *args, **kwargs)

    monkeypatch.setattr(pipeline_module, "draw_text_block", record)
    clip = write_mjpeg_avi(tmp_path / "clip.avi", 12, size=(48, 64))
    with open_source(clip, live=False) as source:
        stats = run_pipeline(Engine(exported_model, device="cpu"), source, NullSink(draw=True), report=None)
    assert stats.frames == 12 and stats.seconds < 0.5 * 12  # not a paced run: every frame counts
    assert drawn[:2] == ["measuring...", "measuring..."]  # one frame, then the first written: no rate yet
    assert all("FPS" in text and "latency" in text for text in drawn[2:]), drawn


@pytest.mark.parametrize(("height", "width"), [(240, 320), (96, 160), (120, 160), (480, 640), (1080, 1920)])
def test_the_statistics_fit_the_frame_width(height, width):
    lines, scale, _ = fit_text([WIDE], height, width)
    assert scale >= 0.3
    assert "".join(part.replace("  ", "") for part in lines) == WIDE.replace("  ", "")  # wrapped, never cut
    image = np.full((height, width, 3), 255, np.uint8)
    draw_text_block(image, [WIDE], bottom=True)
    assert (image[:, -3:] == 255).all(), "the text box reaches the right edge: the line was cut off"
    assert (image != 255).any()


def test_a_frame_wide_enough_keeps_one_line_at_its_height_scale():
    lines, scale, _ = fit_text(["30.0 FPS  latency 12.3 ms (p99 45.6)  dropped 0"], 1080, 1920)
    assert lines == ["30.0 FPS  latency 12.3 ms (p99 45.6)  dropped 0"] and scale == pytest.approx(1080 / 480)
