"""The table of task kinds: one definition per TaskKind value, in TaskKind's order."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgemtl.kinds.base import KindDef
from edgemtl.kinds.classification import Classification
from edgemtl.kinds.detection import Detection
from edgemtl.kinds.multilabel import Multilabel
from edgemtl.kinds.regression import Regression
from edgemtl.kinds.segmentation import Segmentation

if TYPE_CHECKING:
    from edgemtl.tasks import TaskSpec

#: TaskKind value → its definition. Keyed by the value, not the enum member: edgemtl.tasks builds on
#: this table, so the table cannot import the enum.
KINDS: dict[str, KindDef] = {
    kind.value: kind for kind in (Classification(), Multilabel(), Segmentation(), Regression(), Detection())
}


def kind_of(task: TaskSpec) -> KindDef:
    """The definition of a task's kind: what to ask instead of branching on `task.kind`."""
    return KINDS[task.kind.value]
