"""A headless viewer for the benchmarks: a separate process (as a browser is, so it takes CPU but not the
pipeline's GIL) pulling the web viewer's WebSocket stream — state text + JPEG bytes per update — and
reporting how many frames and bytes it got when told to stop.

    python benchmarks/watcher.py http://127.0.0.1:8080     # prints "FRAMES BYTES CPU_SECONDS" after stdin closes
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Watcher:
    """Starts the watching process; `wait_attached(sink)` until the server counts it; `close()` collects."""

    def __init__(self, url: str) -> None:
        self.frames = self.bytes = 0
        self.cpu_s = 0.0  # CPU the watching took (after connecting: its start-up is not a viewer's cost)
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__)), url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def wait_attached(self, sink, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not sink.server.viewers:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("the watcher did not connect")
            time.sleep(0.01)

    def close(self) -> None:
        out, _ = self.process.communicate(input="", timeout=30)
        frames, size, cpu = out.split()
        self.frames, self.bytes, self.cpu_s = int(frames), int(size), float(cpu)


async def _watch(url: str) -> tuple[int, int, float]:
    import aiohttp

    frames = size = 0
    done = asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # stdin closing: stop
    async with aiohttp.ClientSession() as session, session.ws_connect(url.rstrip("/") + "/ws") as ws:
        start = time.process_time()
        while not done.done():
            try:
                message = await ws.receive(timeout=0.5)
            except asyncio.TimeoutError:
                continue
            if message.type == aiohttp.WSMsgType.BINARY:
                frames, size = frames + 1, size + len(message.data)
            elif message.type != aiohttp.WSMsgType.TEXT:
                break
        return frames, size, time.process_time() - start


if __name__ == "__main__":
    print(*asyncio.run(_watch(sys.argv[1])))
