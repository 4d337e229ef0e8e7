"""The web viewer, `-o http://HOST:PORT`: one page showing the live overlay, each task's results, FPS and
latency, and the model's classes. Served by aiohttp on its own thread; imported only when this output is
used, so `import edgemtl.runtime` never loads aiohttp."""

from __future__ import annotations

from edgemtl.runtime.viewer.address import ViewerAddress, parse_address
from edgemtl.runtime.viewer.sink import ViewerSink, open_viewer

__all__ = ["ViewerAddress", "ViewerSink", "open_viewer", "parse_address"]
