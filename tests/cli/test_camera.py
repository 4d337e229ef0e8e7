"""`edgemtl camera` with several sources, `--results` and `--smooth`: what a user types, what comes out, and
the one-line errors for a bad results URI, smoothing spec or `--track`."""

from __future__ import annotations

import json

from tests.helpers import assert_one_line_error, count_frames, invoke, write_video


def test_two_sources_each_get_their_own_video_and_summary(tmp_path, exported_model):
    clips = [write_video(tmp_path / f"{n}.mp4", 6) for n in "ab"]
    result = invoke("camera", *clips, "-m", exported_model, "-o", tmp_path / "out.mp4", "--json", tmp_path / "s.json")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("2 sources, 12 frames") and lines[1].startswith("[0] ") and lines[2].startswith("[1] ")
    assert str(clips[1]) in lines[2] and "out-1.mp4" in lines[2]
    assert [count_frames(tmp_path / f"out-{i}.mp4") for i in range(2)] == [6, 6]
    summary = json.loads((tmp_path / "s.json").read_text())
    assert [s["frames"] for s in summary["sources"]] == [6, 6] and summary["batched"] is True
    assert result.stderr == ""


def test_results_to_stdout_leave_nothing_else_there(tmp_path, exported_model):
    clip = write_video(tmp_path / "clip.mp4", 5)
    result = invoke(
        "camera", clip, "-m", exported_model, "-o", "none", "--frames", 3, "--results", "-", "--smooth", "scene:dwell=2"
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]  # every line is JSON: no summary among them
    assert [line["frame"] for line in lines] == [0, 1, 2] and all(line["steady"]["scene"] for line in lines)
    assert result.stderr == ""
    verbose = invoke("-v", "camera", clip, "-m", exported_model, "-o", "none", "--frames", 2, "--results", "-")
    assert len(verbose.stdout.splitlines()) == 2 and "2 frames in" in verbose.stderr  # -v: the summary on stderr


def test_results_mask_on_the_command_line(tmp_path, exported_model):
    clip = write_video(tmp_path / "clip.mp4", 2)
    out = tmp_path / "r.jsonl"
    result = invoke("camera", clip, "-m", exported_model, "-o", "none", "--results", out, "--results-mask", "rle")
    assert result.exit_code == 0, result.output
    masks = [json.loads(line)["tasks"]["segmentation"]["mask"] for line in out.read_text().splitlines()]
    assert len(masks) == 2 and all(m["encoding"] == "rle" and sum(m["counts"]) == 40 * 48 for m in masks)


def test_bad_results_and_smoothing_are_one_line(tmp_path, exported_model):
    clip = write_video(tmp_path / "clip.mp4", 2)
    base = ("camera", clip, "-m", exported_model, "-o", "none")
    assert_one_line_error(invoke(*base, "--results", "mqtt://broker:1883"), "'mqtt://broker:1883'", "udp://HOST:PORT")
    assert_one_line_error(invoke(*base, "--smooth", "sceen:dwell=2"), "'sceen'", "expected one of scene")
    assert_one_line_error(
        invoke(*base, "--smooth", "scene:latch=blockd:5"), "'blockd'", "left, straight, right, blocked"
    )
    assert_one_line_error(
        invoke(*base, "--smooth", "segmentation:ema=0.5"), "'segmentation'", "classification, multilabel or detection"
    )
    assert_one_line_error(invoke(*base, "--track"), "--track needs a detection task", "scene (classification)")
    assert_one_line_error(invoke(*base, "--track", "deepsort"), "'deepsort'", "expected one of bytetrack, ocsort")
    several = ("camera", clip, clip, "-m", exported_model, "-o", "rtsp://host/out")
    assert_one_line_error(invoke(*several), "'rtsp://host/out'", "takes one source")
