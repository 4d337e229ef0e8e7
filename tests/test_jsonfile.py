"""The shared JSON reader (bounded, one-line errors) and writer (strict: no bare NaN)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgemtl.errors import ConfigError, DataError
from edgemtl.jsonfile import dumps, finite_or_null, read_json
from tests.helpers import strict_loads


def test_read_json_returns_the_contents(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('{"car": "vehicle"}', encoding="utf-8")
    assert read_json(path, "class map", "expected an object") == {"car": "vehicle"}


@pytest.mark.parametrize(
    ("content", "message", "max_bytes"),
    [
        (
            b'{"car": ',
            r"^class map .*a\.json is not valid JSON \(Expecting value at line 1\): expected an object$",
            1024,
        ),
        (b"\xff\xfe{}", r"^cannot read class map .*a\.json \(.*\): expected an object$", 1024),
        (
            b"[" * 100_000 + b"]" * 100_000,
            r"^class map .*a\.json is nested too deeply to read: expected an object$",
            1 << 20,
        ),
        (b" " * 2048 + b"{}", r"^class map .*a\.json is over 1 kB: expected an object$", 1024),
    ],
    ids=["not JSON", "not UTF-8", "nested", "too big"],
)
def test_read_json_fails_in_one_line_of_the_callers_class(tmp_path, content, message, max_bytes):
    path = tmp_path / "a.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as caught:
        read_json(path, "class map", "expected an object", error=ConfigError, max_bytes=max_bytes)
    assert "\n" not in str(caught.value)


def test_read_json_of_a_missing_file_is_a_data_error_by_default(tmp_path):
    with pytest.raises(DataError, match=r"^cannot read box file .*missing\.json \(.*\): expected a list$"):
        read_json(tmp_path / "missing.json", "box file", "expected a list")


def test_read_json_too_big_says_what_fits(tmp_path):
    path = tmp_path / "boxes.json"
    path.write_text("[]" + " " * (2 << 20))
    with pytest.raises(DataError, match=r"is over 1 MiB: expected at most 1000 boxes$"):
        read_json(path, "box file", "expected a list", max_bytes=1 << 20, too_big="expected at most 1000 boxes")


def test_dumps_writes_non_finite_floats_as_null_everywhere():
    value = {
        "miou": math.nan,
        "per_class": [0.5, math.inf, -math.inf],
        "nested": {"score": np.float32("nan"), "mae": np.float64(1.25), "pair": (1, math.nan)},
        "count": 3,
        "flag": True,
        "name": "NaN",
    }
    parsed = strict_loads(dumps(value, indent=2))
    assert parsed == {
        "miou": None,
        "per_class": [0.5, None, None],
        "nested": {"score": None, "mae": 1.25, "pair": [1, None]},
        "count": 3,
        "flag": True,
        "name": "NaN",
    }


def test_finite_or_null_keeps_finite_values_and_types():
    assert finite_or_null({"a": 1, "b": 0.25, "c": None, "d": False}) == {"a": 1, "b": 0.25, "c": None, "d": False}
    assert type(finite_or_null(np.float32(0.5))) is float
    assert type(finite_or_null(np.int64(3))) is np.int64  # integers pass through as they are
