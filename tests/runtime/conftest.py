"""Fixtures of the runtime's tests."""

from __future__ import annotations

import pytest

from edgemtl.tasks import TaskSpec
from tests.runtime.objects_kit import standin_task


@pytest.fixture
def objects_task(monkeypatch: pytest.MonkeyPatch) -> TaskSpec:
    """A task with boxes (the detection contract's outputs) named "objects": cone, person, robot."""
    return standin_task(monkeypatch)
