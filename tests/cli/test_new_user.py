"""What a new user met running the README's commands as written (issue 24, item 7): each a one-line answer that
says what to do, instead of a traceback, a silent no-op or a number that means something else."""

from __future__ import annotations

import sys

import pytest

from tests.helpers import assert_one_line_error, invoke, write_mjpeg_avi


def _without(monkeypatch, missing: str, *importers: str) -> None:
    """A runtime-only install: `missing` cannot be imported, and the edgemtl modules importing it are not loaded."""
    monkeypatch.setitem(sys.modules, missing, None)  # `import missing` raises ModuleNotFoundError
    for name in list(sys.modules):
        if name.startswith(importers):
            monkeypatch.delitem(sys.modules, name)


@pytest.mark.parametrize(
    ("output", "missing", "importers", "extra"),
    [
        ("http://127.0.0.1:0", "aiohttp", ("edgemtl.runtime.viewer",), "viewer"),
        ("run.mcap", "foxglove_schemas_protobuf", ("edgemtl.runtime.recording",), "mcap"),
        ("run.mcap", "mcap", ("edgemtl.runtime.recording",), "mcap"),
    ],
)
def test_an_output_whose_library_is_missing_names_the_extra(
    exported_model, tmp_path, monkeypatch, output, missing, importers, extra
):
    clip = write_mjpeg_avi(tmp_path / "clip.avi", 3)
    monkeypatch.chdir(tmp_path)
    _without(monkeypatch, missing, *importers)
    result = invoke("camera", clip, "-m", exported_model, "-o", output)
    assert_one_line_error(result, output, missing, f"pip install 'edgemtl[{extra}]'")
    assert not (tmp_path / "run.mcap").exists()
