"""The viewer's server: aiohttp on a thread and event loop of its own, fed the newest frame by the pipeline.

The pipeline thread only ever swaps one pending (image, state) pair and wakes the loop; the loop encodes
it as JPEG and each viewer's coroutine sends the newest version it has not seen. A slow viewer skips
frames, a vanished one times out and is dropped, a flood beyond `max_viewers` is answered 503: nothing a
viewer does can make the pipeline wait, and no queue grows.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import socket
import threading
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import cv2
import numpy as np
from aiohttp import WSMsgType, web

from edgemtl import jsonfile
from edgemtl.errors import OutputError

log = logging.getLogger("edgemtl.viewer")


class _Demoted(logging.LoggerAdapter):
    """aiohttp's own log of a request it could not parse (garbage, a port scan) at INFO: a hostile viewer is
    refused, not an error of the run, so it shows with -v only."""

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        super().log(min(level, logging.INFO), msg, *args, **kwargs)


SEND_TIMEOUT_S = 10.0  # a viewer that answers no ping in this long (gone, or not reading) is dropped
MAX_MESSAGE = 1024  # viewers send nothing the server needs; anything bigger closes the connection


def page() -> str:
    """The one page, its script and style inlined (no second request to authorize, nothing from a CDN)."""
    static = resources.files("edgemtl.runtime.viewer") / "static"
    html = (static / "index.html").read_text(encoding="utf-8")
    script = (static / "viewer.js").read_text(encoding="utf-8")
    style = (static / "viewer.css").read_text(encoding="utf-8")
    return html.replace("/*STYLE*/", style).replace("/*SCRIPT*/", script)


class ViewerServer:
    """Serves `/` (the page) and `/ws` (state as JSON text, then the frame as JPEG bytes, per update)."""

    def __init__(
        self, listening: socket.socket, token: str | None, *, max_viewers: int = 16, jpeg_quality: int = 80
    ) -> None:
        self.listening = listening
        self.token = token
        self.max_viewers = max_viewers
        self.jpeg_quality = jpeg_quality
        self.viewers = 0  # read by the pipeline thread: no viewer, no frame is handed over
        self._page = page()
        self._lock = threading.Lock()
        self._pending: tuple[np.ndarray, dict[str, Any]] | None = None
        self._meta = "{}"
        self._jpeg, self._state, self._version = b"", "{}", 0
        self._sockets: set[web.WebSocketResponse] = set()
        self._failure: BaseException | None = None
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="edgemtl-viewer", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._failure is not None or not self._ready.is_set():
            self._thread.join(5)
            raise OutputError(f"the web viewer did not start: {self._failure or 'no answer within 30 s'}")

    # --- the pipeline's side (any thread) -----------------------------------------------------------

    def offer(self, image: np.ndarray, state: dict[str, Any]) -> None:
        """Hand over a frame and its state, both the caller's own to give (JPEG and JSON are made here, on the
        server's thread); a newer one replaces it unsent."""
        with self._lock:
            self._pending = (image, state)
        self.loop.call_soon_threadsafe(self._publish)

    def set_meta(self, meta: dict[str, Any]) -> None:
        text = jsonfile.dumps({"type": "meta", **meta})
        self.loop.call_soon_threadsafe(setattr, self, "_meta", text)

    def close(self) -> None:
        """Viewers are told goodbye, the server stops and its thread ends (bounded: a few seconds)."""
        if self.loop.is_closed() or not self._thread.is_alive():
            return
        with contextlib.suppress(RuntimeError):  # the loop already stopped
            asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop)
        self._thread.join(10)

    # --- the loop's side ------------------------------------------------------------------------------

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._start())
        except Exception as exc:
            self._failure = exc
            self._ready.set()
            self.loop.close()
            return
        self._ready.set()
        self.loop.run_forever()
        self.loop.close()

    async def _start(self) -> None:
        self._changed = asyncio.Event()
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_MESSAGE)
        app.router.add_get("/", self._serve_page)
        app.router.add_get("/ws", self._serve_socket)
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=2.0, logger=_Demoted(log, {})
        )
        await self._runner.setup()
        await web.SockSite(self._runner, self.listening).start()

    async def _shutdown(self) -> None:
        for viewer in list(self._sockets):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(viewer.close(message=b"the pipeline stopped"), 2.0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._runner.cleanup(), 5.0)
        self.listening.close()
        self.loop.stop()

    def _publish(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is None:  # an earlier wake-up already published the newest
            return
        image, state = pending
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            return
        self._jpeg, self._state = encoded.tobytes(), jsonfile.dumps({"type": "state", **state}, default=float)
        self._version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    def _authorized(self, request: web.Request) -> bool:
        if not self.token:
            return True
        given = request.query.get("token") or request.headers.get("X-Edgemtl-Token") or ""
        bearer = request.headers.get("Authorization", "")
        if bearer.startswith("Bearer "):
            given = given or bearer[len("Bearer ") :]
        return hmac.compare_digest(given.encode(), self.token.encode())

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """401 without the token; 403 for a page of another site scripting a connection here."""
        if not self._authorized(request):
            return web.Response(
                status=401, text="401: this viewer needs its token: open /?token=SECRET, or send X-Edgemtl-Token\n"
            )
        origin = request.headers.get("Origin")
        if origin and urlsplit(origin).netloc != request.host:
            return web.Response(status=403, text="403: a page of another origin may not watch this viewer\n")
        return await handler(request)

    async def _serve_page(self, request: web.Request) -> web.Response:
        return web.Response(text=self._page, content_type="text/html", headers={"Cache-Control": "no-store"})

    async def _serve_socket(self, request: web.Request) -> web.StreamResponse:
        if self.viewers >= self.max_viewers:
            return web.Response(status=503, text=f"503: {self.max_viewers} viewers are watching already\n")
        viewer = web.WebSocketResponse(heartbeat=SEND_TIMEOUT_S, max_msg_size=MAX_MESSAGE, compress=False)
        await viewer.prepare(request)
        self.viewers += 1
        self._sockets.add(viewer)
        # Feeding and reading run side by side; whichever ends first (the viewer left, or could not keep up
        # and its heartbeat went unanswered) ends the other.
        tasks = {asyncio.ensure_future(self._feed(viewer)), asyncio.ensure_future(_ignore_incoming(viewer))}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.debug("viewer %s dropped: %s", request.remote, task.exception())
        finally:
            for task in tasks:
                task.cancel()
            self.viewers -= 1
            self._sockets.discard(viewer)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(viewer.close(), 2.0)
        return viewer

    async def _feed(self, viewer: web.WebSocketResponse) -> None:
        """Send each new version (state text, then JPEG bytes) until the viewer leaves. No timer per frame:
        it sleeps on the version's event, and a send only waits when the viewer's buffer is full."""
        seen_version, seen_meta = 0, ""
        while not viewer.closed:
            if self._version == seen_version:
                await self._changed.wait()
                continue
            seen_version, jpeg, state = self._version, self._jpeg, self._state
            if self._meta != seen_meta:
                seen_meta = self._meta
                await viewer.send_str(seen_meta)
            await viewer.send_str(state)
            await viewer.send_bytes(jpeg)


async def _ignore_incoming(viewer: web.WebSocketResponse) -> None:
    """Read (and drop) what a viewer sends, so pings are answered and a close is seen; ends with it."""
    async for message in viewer:
        if message.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
            break
