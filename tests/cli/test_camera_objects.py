"""`edgemtl camera --track` on a model with a detection task: the objects and their ids in the results lines,
the latch on an object class, one ImageAnnotations message per frame in the recording, and the one-line
error for a latch on a class the task lacks."""

from __future__ import annotations

import json

from foxglove_schemas_protobuf.ImageAnnotations_pb2 import ImageAnnotations
from mcap.reader import make_reader

from tests.helpers import assert_one_line_error, invoke, write_video


def test_tracked_objects_reach_the_results_and_the_recording(tmp_path, detection_model):
    clip = write_video(tmp_path / "clip.mp4", 8, size=(48, 64))
    results, recording = tmp_path / "r.jsonl", tmp_path / "run.mcap"
    result = invoke(
        "camera", clip, "-m", detection_model, "-o", recording, "--results", results, "--track",
        "--smooth", "obstacles:latch=cone:2",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(lines) == 8 and all(line["schema"] == 2 for line in lines)
    found = [line["tasks"]["obstacles"]["objects"] for line in lines]
    detected = [[obj for obj in objects if not obj["held"]] for objects in found]
    assert all(len(objects) == 5 for objects in detected)  # the export keeps 5 boxes a frame; held ones come after
    for obj in found[-1]:
        assert set(obj) == {"class", "class_id", "score", "box", "track_id", "held"}
        assert 0 <= obj["box"][0] <= obj["box"][2] <= 64 and 0 <= obj["box"][1] <= obj["box"][3] <= 48  # frame px
    ids = [obj["track_id"] for obj in found[-1]]
    assert len(set(ids) - {-1}) >= 3 and len(set(ids)) == len(ids), ids  # still frames: tracks confirmed, distinct
    assert all(line["steady"]["obstacles"]["latch"] == "cone" for line in lines)
    with open(recording, "rb") as stream:
        messages = list(make_reader(stream).iter_messages(topics=["/edgemtl/obstacles/objects"]))
    assert len(messages) == 8
    assert [len(ImageAnnotations.FromString(m.data).points) for _, _, m in messages] == [len(f) for f in found]


def test_a_latch_on_a_class_the_detection_task_lacks_is_one_line(tmp_path, detection_model):
    clip = write_video(tmp_path / "clip.mp4", 2)
    base = ("camera", clip, "-m", detection_model, "-o", "none")
    assert_one_line_error(
        invoke(*base, "--smooth", "obstacles:latch=person:5"), "'person'", "expected one of box, blob, cone"
    )
    assert_one_line_error(invoke(*base, "--smooth", "obstacles:dwell=3"), "latch only", "obstacles:latch=CLASS:N")
    assert_one_line_error(invoke(*base, "--track", "sort"), "'sort'", "bytetrack, ocsort")
