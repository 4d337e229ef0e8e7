"""`edgemtl camera`: a source through the model to a file, the summary, errors, and Ctrl-C mid-run."""

from __future__ import annotations

import json
import signal
import time

from tests.helpers import assert_one_line_error, count_frames, invoke, popen_edgemtl, write_mjpeg_avi, write_video


def test_camera_to_a_video_file_with_a_json_summary(tmp_path, exported_model):
    source = write_video(tmp_path / "drive.mp4", 8, size=(48, 64))
    output, summary = tmp_path / "out.mp4", tmp_path / "summary.json"
    result = invoke("camera", source, "-m", exported_model, "-o", output, "--device", "cpu", "--json", summary)
    assert result.exit_code == 0, result.output
    assert "8 frames in" in result.stdout and "FPS" in result.stdout and "p50 / p90 / p99" in result.stdout
    assert result.stderr == ""  # not a terminal and no -v: stderr is kept for errors
    assert count_frames(output) == 8
    verbose = invoke("-v", "camera", source, "-m", exported_model, "-o", "none", "--frames", 2, "--device", "cpu")
    assert verbose.exit_code == 0 and "CPUExecutionProvider" in verbose.stderr  # the start line names the engine
    data = json.loads(summary.read_text())
    assert data["frames"] == 8 and data["dropped"] == 0 and not data["interrupted"]
    assert set(data["latency_ms"]) == {"p50", "p90", "p99"}


def test_camera_stops_after_the_frames_asked_for(tmp_path, exported_model):
    source = write_video(tmp_path / "drive.mp4", 8)
    result = invoke("camera", source, "-m", exported_model, "-o", "none", "--frames", 3, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("3 frames in")


def test_camera_refuses_to_replace_a_recording(tmp_path, exported_model):
    source = write_video(tmp_path / "drive.mp4", 3)
    output = tmp_path / "out.mp4"
    output.write_bytes(b"yesterday's recording")
    result = invoke("camera", source, "-m", exported_model, "-o", output, "--device", "cpu")
    assert_one_line_error(result, str(output), "exists")
    assert output.read_bytes() == b"yesterday's recording"
    assert invoke("camera", source, "-m", exported_model, "-o", output, "--overwrite").exit_code == 0
    assert count_frames(output) == 3


def test_camera_display_on_a_headless_machine(tmp_path, exported_model, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    result = invoke("camera", write_video(tmp_path / "drive.mp4", 3), "-m", exported_model)
    assert_one_line_error(result, "display", "write to a file instead")


def test_camera_that_cannot_be_opened(exported_model):
    result = invoke("camera", "/dev/video97", "-m", exported_model, "-o", "none")
    assert_one_line_error(result, "/dev/video97", "cannot open")


def test_ctrl_c_leaves_a_playable_video_with_every_frame_written(tmp_path, exported_model):
    source = write_mjpeg_avi(tmp_path / "camera.avi", 400, fps=40.0)  # a 10 s camera
    output = tmp_path / "out.mp4"
    # -v: the status lines go to stderr only on a terminal or when asked; the child's signal dispositions are
    # its own (popen_edgemtl), so the test passes when the suite runs as a background job too.
    command = ["-v", "camera", source, "-m", exported_model, "-o", output, "--live", "--device", "cpu"]
    process = popen_edgemtl(command)
    try:
        assert "Ctrl-C stops" in process.stderr.readline()  # the pipeline is starting
        deadline = time.monotonic() + 20
        while not (output.exists() and output.stat().st_size > 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # a few more frames
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert stdout.startswith("stopped: "), stdout
    written = int(stdout.split()[1])
    assert 0 < written < 400
    assert count_frames(output) == written, "the file was finalized and holds every frame written"
