"""A headless viewer for the benchmarks: a thread with its own event loop, pulling the web viewer's
WebSocket stream (state text + JPEG bytes per update) as a browser would, counting what it got."""

from __future__ import annotations

import asyncio
import threading
import time

import aiohttp


class Watcher:
    def __init__(self, url: str) -> None:
        self.url = url.replace("http://", "ws://").rstrip("/") + "/ws"
        self.frames = self.bytes = 0
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._watch()), daemon=True)
        self._thread.start()
        if not self.connected.wait(10):
            raise RuntimeError(f"could not watch {self.url}")

    async def _watch(self) -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(self.url) as socket:
            self.connected.set()
            while not self._stop.is_set():
                try:
                    message = await socket.receive(timeout=0.5)
                except asyncio.TimeoutError:
                    continue
                if message.type == aiohttp.WSMsgType.BINARY:
                    self.frames += 1
                    self.bytes += len(message.data)
                elif message.type != aiohttp.WSMsgType.TEXT:
                    break

    def wait_attached(self, sink, timeout: float = 10.0) -> None:
        """Until the server counts this viewer (its handshake done), so the run is watched from frame one."""
        deadline = time.monotonic() + timeout
        while not sink.server.viewers and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
