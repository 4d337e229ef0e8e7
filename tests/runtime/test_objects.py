"""A frame's objects in every output: JSON, COCO results, the overlay's boxes, Foxglove ImageAnnotations,
their track ids from a source's trackers, and the steady latch on an object class."""

from __future__ import annotations

import itertools
import json
import time

import numpy as np
import pytest
from foxglove_schemas_protobuf.ImageAnnotations_pb2 import ImageAnnotations
from foxglove_schemas_protobuf.PointsAnnotation_pb2 import PointsAnnotation
from mcap.reader import make_reader

from edgemtl.errors import ConfigError
from edgemtl.kinds.objects import Objects, coco_categories, object_colors
from edgemtl.runtime.overlay import Overlay, draw_objects, legend
from edgemtl.runtime.recording import McapSink, image_annotations
from edgemtl.runtime.results_stream import frame_record
from edgemtl.runtime.sources import Frame
from edgemtl.runtime.steady import Steadier, parse_smoothing
from edgemtl.runtime.tracking import SourceTracking
from edgemtl.tasks import NAVIGATION_TASKS
from tests.helpers import assert_one_line
from tests.runtime.objects_kit import CLASSES, boxes_prediction, objects


def test_from_outputs_keeps_the_valid_rows_as_copies():
    boxes = np.zeros((5, 4), np.float32)
    boxes[:2] = [[1, 2, 30, 40], [50, 60, 70, 90]]
    scores, classes = np.array([0.9, 0.4, 0, 0, 0], np.float32), np.array([1, 2, 0, 0, 0], np.int64)
    found = Objects.from_outputs(boxes, scores, classes, np.array([2]), CLASSES)
    boxes[0] = 99  # the graph's buffer is reused for the next frame
    assert len(found) == 2 and found.boxes[0].tolist() == [1, 2, 30, 40]
    assert found.class_names() == ["person", "robot"]
    assert len(Objects.from_outputs(boxes, scores, classes, 0, CLASSES)) == 0


def test_json_and_coco_entries():
    found = objects([[10, 20, 50, 80.04]], [0.87654], [1]).with_track_ids(np.array([3]))
    expected = {
        "class": "person",
        "class_id": 1,
        "score": 0.8765,
        "box": [10, 20, 50, 80.0],
        "track_id": 3,
        "held": False,
    }
    assert found.to_dicts() == [expected]
    assert found.labels() == ["person 0.88 #3"]
    assert objects([[0, 0, 1, 1]]).to_dicts()[0].keys() == {"class", "class_id", "score", "box"}  # not tracked
    assert objects([[0, 0, 1, 1]]).with_track_ids(np.array([-1])).labels() == ["cone 0.90"]  # not yet confirmed
    (entry,) = found.coco(image_id=7)
    assert entry == {"image_id": 7, "category_id": 2, "bbox": [10.0, 20.0, 40.0, 60.04], "score": 0.87654}
    assert coco_categories(CLASSES)[1] == {"id": 2, "name": "person"}


def test_the_coco_entries_load_in_pycocotools():
    pycocotools = pytest.importorskip("pycocotools.coco")
    ground_truth = pycocotools.COCO()
    ground_truth.dataset = {
        "images": [{"id": 0, "width": 64, "height": 48}],
        "annotations": [
            {"id": 1, "image_id": 0, "category_id": 2, "bbox": [10, 20, 40, 20], "area": 800, "iscrowd": 0}
        ],
        "categories": coco_categories(CLASSES),
    }
    ground_truth.createIndex()
    loaded = ground_truth.loadRes(objects([[10, 20, 50, 40]], [0.8], [1]).coco(0))
    assert loaded.loadAnns(loaded.getAnnIds())[0]["bbox"] == [10.0, 20.0, 40.0, 20.0]


def test_boxes_are_drawn_in_their_class_colour_with_their_label():
    image = np.zeros((120, 160, 3), np.uint8)
    draw_objects(image, objects([[20, 40, 100, 110], [130, 0, 170, 30]], [0.9, 0.6], [1, 2]))  # one past the edge
    person = object_colors(len(CLASSES))[1]
    assert (image[75, 20] == person).all() and (image[75, 100] == person).all()  # the box's left and right sides
    assert (image[75, 60] == 0).all()  # the box's inside is left clear
    assert (image[30:40, 20:60] == person).all(axis=-1).any()  # the label's tab above the box
    assert image[:, 130:].any()  # a box cut by the frame's edge is still drawn
    assert not (object_colors(len(CLASSES)) == 0).all(axis=1).any()  # no class is drawn black


def test_the_overlay_draws_the_objects_of_a_prediction(objects_task):
    frame = np.full((96, 128, 3), 40, np.uint8)
    prediction = boxes_prediction(objects_task, objects([[10, 30, 60, 90]], [0.9], [0]))
    image = Overlay().render(frame, prediction)
    assert (image[60, 10] == object_colors(3)[0]).all()
    assert (frame == 40).all()  # the frame itself is untouched
    assert legend(prediction)[0]["colors"][0] == "#{:02x}{:02x}{:02x}".format(*object_colors(3)[0][::-1])


def test_image_annotations_outline_each_box():
    found = objects([[10, 20, 50, 80], [5, 5, 9, 9]], [0.9, 0.5], [1, 0]).with_track_ids(np.array([4, -1]))
    message = image_annotations(found, 1_000_000_123)
    assert len(message.points) == 2 and len(message.texts) == 2
    outline = message.points[0]
    assert outline.type == PointsAnnotation.Type.LINE_LOOP
    assert [(p.x, p.y) for p in outline.points] == [(10, 20), (50, 20), (50, 80), (10, 80)]
    assert outline.timestamp.ToNanoseconds() == 1_000_000_123
    assert message.texts[0].text == "person 0.90 #4" and message.texts[1].text == "cone 0.50"
    assert len(image_annotations(objects([]), 0).points) == 0


def test_a_recording_holds_one_annotations_message_per_frame(objects_task, tmp_path):
    path = tmp_path / "run.mcap"
    counts = [2, 0, 1]
    with McapSink(path) as sink:
        start = time.perf_counter()  # the frames were captured 0.1 s apart, just now
        for i, n in enumerate(counts):
            frame = Frame(i, f"f{i}", np.zeros((48, 64, 3), np.uint8), timestamp=start + 0.1 * i)
            found = objects([[1 + i, 2, 20, 30]] * n, [0.8] * n, [2] * n)
            sink.write_result(frame.image, frame, boxes_prediction(objects_task, found), {})
    messages = []
    with open(path, "rb") as stream:
        for _, _channel, message in make_reader(stream).iter_messages(topics=["/edgemtl/objects/objects"]):
            messages.append((message.publish_time, ImageAnnotations.FromString(message.data)))
    assert [len(m.points) for _, m in messages] == counts
    stamps = [stamp for stamp, _ in messages]
    assert [round((b - a) / 1e8) for a, b in itertools.pairwise(stamps)] == [1, 1]  # the capture times, 0.1 s apart
    assert all(p.timestamp.ToNanoseconds() == stamp for stamp, m in messages for p in m.points)


# --- tracking a source's predictions ------------------------------------------------------------------------


def test_a_source_s_tracking_puts_ids_on_the_objects(objects_task):
    tracking = SourceTracking([NAVIGATION_TASKS[0], objects_task], "bytetrack")
    assert list(tracking.trackers) == ["objects"]
    for f in range(10):
        prediction = boxes_prediction(objects_task, objects([[10 + 4 * f, 10, 50 + 4 * f, 60]], [0.9], [1]))
        tracked = tracking.update(prediction)
    assert tracked["objects"].objects.track_ids.tolist() == [0]
    assert prediction["objects"].objects.track_ids is None  # the raw prediction is left as it was
    assert json.loads(json.dumps(tracked.to_dict()))["objects"]["objects"][0]["track_id"] == 0


def test_an_object_the_detector_misses_is_held_for_a_few_frames_then_dropped(objects_task):
    tracking = SourceTracking([objects_task], "bytetrack", hold=2)
    box = lambda f: [10 + 5 * f, 10, 50 + 5 * f, 60]  # noqa: E731
    for f in range(8):
        tracking.update(boxes_prediction(objects_task, objects([box(f)], [0.9], [1])))
    missed = boxes_prediction(objects_task, objects([]))  # the detector misses it three frames in a row
    held = [tracking.update(missed)["objects"].objects for _ in range(3)]
    first = held[0]
    assert first.track_ids.tolist() == [0] and first.held.tolist() == [True] and first.class_names() == ["person"]
    assert abs(first.boxes[0, 0] - box(8)[0]) < 3  # where the motion model puts it: still moving right
    assert first.to_dicts()[0]["held"] is True and first.labels()[0].endswith("#0 held")
    assert len(held[1]) == 1 and len(held[2]) == 0  # held for `hold` frames, then no longer reported
    again = tracking.update(boxes_prediction(objects_task, objects([box(11)], [0.9], [1])))["objects"].objects
    assert again.track_ids.tolist() == [0] and again.held.tolist() == [False]  # found again: the same id


def test_tracking_refuses_a_model_without_boxes():
    with pytest.raises(ConfigError) as error:
        SourceTracking(NAVIGATION_TASKS, "ocsort", model="nav.onnx")
    assert_one_line(error, "--track needs a detection task", "nav.onnx")


def test_a_results_line_carries_the_objects_their_ids_and_the_latch(objects_task):
    tracking = SourceTracking([objects_task], "bytetrack")
    steadier = Steadier([objects_task], [parse_smoothing("objects:latch=person:2")])
    for f in range(4):
        frame = Frame(f, f"clip_{f}", np.zeros((48, 64, 3), np.uint8), time.perf_counter())
        tracked = tracking.update(boxes_prediction(objects_task, objects([[f, 5, 20 + f, 40]], [0.8], [1])))
        line = json.loads(json.dumps(frame_record(frame, tracked, steadier.update(tracked), 0.01, source="clip")))
    assert line["schema"] == 2
    assert line["tasks"]["objects"]["objects"] == [
        {"class": "person", "class_id": 1, "score": 0.8, "box": [3.0, 5.0, 23.0, 40.0], "track_id": 0, "held": False}
    ]
    assert line["steady"]["objects"] == {"latch": "person", "on": True, "seen_frames": 4}


# --- steady decisions on objects ---------------------------------------------------------------------------


def test_the_latch_turns_on_after_n_frames_with_the_class_and_off_after_n_without(objects_task):
    steadier = Steadier([objects_task], [parse_smoothing("objects:latch=person:3")])
    person, cone = [[10, 10, 40, 60]], [[80, 10, 90, 20]]
    # frames: a one-frame flicker, then a person for 4 frames, a 2-frame gap, 3 frames without
    seen = [1, 0, 0, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0]
    states = []
    for has_person in seen:
        found = objects(person + cone, [0.9, 0.9], [1, 0]) if has_person else objects(cone, [0.9], [0])
        states.append(steadier.update(boxes_prediction(objects_task, found))["objects"].on)
    assert states == [False, False, False, False, False, True, True, True, True, True, True, True, False]


def test_an_unknown_object_class_or_a_setting_objects_do_not_take_is_one_line(objects_task):
    with pytest.raises(ConfigError) as error:
        Steadier([objects_task], [parse_smoothing("objects:latch=persn:5")], "det.onnx")
    assert_one_line(error, "'persn'", "cone, person, robot")
    with pytest.raises(ConfigError) as error:
        Steadier([objects_task], [parse_smoothing("objects:ema=0.5")])
    assert_one_line(error, "latch only", "objects:latch=CLASS:N")
