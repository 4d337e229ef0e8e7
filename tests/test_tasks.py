import pytest

from edgemtl.errors import ConfigError, EdgemtlError
from edgemtl.tasks import NAVIGATION_TASKS, TaskKind, TaskSpec, tasks_from_json, tasks_to_json, validate_tasks


def test_json_round_trip_keeps_every_field():
    tasks = (
        *NAVIGATION_TASKS,
        TaskSpec("objects", "multilabel", ("car", "person"), weight=0.5),
        TaskSpec("distance", TaskKind.REGRESSION),
    )
    assert tasks_from_json(tasks_to_json(tasks)) == tasks


def test_kind_is_parsed_from_string():
    assert TaskSpec("a", "classification", ("x", "y")).kind is TaskKind.CLASSIFICATION


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"name": "a", "kind": "keypoints", "classes": ("x", "y")}, "unknown task kind 'keypoints'"),
        ({"name": "a", "kind": "classification", "classes": ()}, "expected at least 2"),
        ({"name": "a", "kind": "segmentation", "classes": ("x",)}, "expected at least 2"),
        ({"name": "a", "kind": "classification", "classes": ("x", "x")}, "repeats class names ['x']"),
        ({"name": "2a", "kind": "classification", "classes": ("x", "y")}, "task name '2a'"),
        ({"name": "a", "kind": "classification", "classes": ("x", "y"), "weight": -1}, "loss weight -1"),
        ({"name": "seg\n", "kind": "segmentation", "classes": ("x", "y")}, "task name 'seg\\n'"),
        ({"name": "a", "kind": "segmentation", "classes": tuple(map(str, range(300)))}, "at most 255"),
    ],
)
def test_invalid_specs_name_the_problem(kwargs, fragment):
    with pytest.raises(ConfigError) as error:
        TaskSpec(**kwargs)
    assert fragment in str(error.value)
    assert "\n" not in str(error.value)


def test_duplicate_task_names_are_rejected():
    with pytest.raises(ConfigError, match="'scene'"):
        validate_tasks((NAVIGATION_TASKS[0], NAVIGATION_TASKS[0]))


def test_empty_task_list_is_rejected():
    with pytest.raises(ConfigError, match="at least one task"):
        validate_tasks(())


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "{}",
        '[{"name": "a"}]',
        '[{"name": "a", "kind": "x", "colour": 1}]',
        '[{"name": "a", "kind": "regression", "extra": 5}]',
    ],
)
def test_bad_json_is_an_edgemtl_error(text):
    with pytest.raises(EdgemtlError):
        tasks_from_json(text)


def test_regression_without_names_has_one_output():
    assert TaskSpec("distance", "regression").num_outputs == 1


def test_a_misspelt_extra_key_is_refused_with_the_closest_one():
    with pytest.raises(ConfigError, match=r"unknown extra key 'flip_pair': did you mean 'flip_pairs'\?"):
        TaskSpec("scene", TaskKind.CLASSIFICATION, ("left", "right"), extra={"flip_pair": [["left", "right"]]})
    with pytest.raises(ConfigError, match="scale_invariant 'yes'"):
        TaskSpec("scene", TaskKind.CLASSIFICATION, ("left", "right"), extra={"scale_invariant": "yes"})
