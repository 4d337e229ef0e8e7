"""What sources and sinks share: used in a `with` block, leaving it closes them, however the block ends.

That is how a video file is finalized (and stays playable) when a run is interrupted, and how a camera
is released when a pipeline fails.
"""

from __future__ import annotations

from typing import TypeVar

_Self = TypeVar("_Self", bound="Closing")


class Closing:
    """`close()` releases what was opened; `with` calls it on the way out."""

    def close(self) -> None:
        """Nothing to release by default."""

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
