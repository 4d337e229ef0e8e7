"""Each frame's results for a controller (`--results SINK`): one JSON line per frame, schema version 2.

    path.jsonl        appended to a file
    -                 stdout (the CLI then keeps its own text on stderr, and only with -v)
    udp://HOST:PORT   one datagram per line, fire and forget
    zmq://HOST:PORT   a ZeroMQ PUB socket bound there (pyzmq, imported only then): several subscribers

A controller that is slow or gone never stalls the camera: UDP and ZeroMQ sends never block (a line
that cannot go now is dropped and counted), and a file or stdout is written by a thread from a bounded
queue (full: the line is dropped and counted). A write that fails is reported once, as one log line,
and the run goes on without results. Masks travel only when asked (`mask="rle"` or `"png"`).
The line's fields are documented in docs/runtime.md#results-schema; `decode_rle` reads a mask back.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import queue
import socket
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

from edgemtl import jsonfile
from edgemtl.errors import ConfigError, OutputError
from edgemtl.runtime.closing import Closing
from edgemtl.runtime.results import Prediction
from edgemtl.runtime.sources import Frame

log = logging.getLogger("edgemtl")

#: 2: a detection task's result carries its objects (class, score, box in frame pixels, and with --track
#: track_id and held), its steadied result the object latch. 1: the first.
SCHEMA_VERSION = 2
RESULTS_SCHEMES = ("a file path (.jsonl)", "- (stdout)", "udp://HOST:PORT", "zmq://HOST:PORT")
MASK_ENCODINGS = ("rle", "png")
_QUEUE_LINES = 1024  # lines a file or stdout may fall behind before new ones are dropped
_UDP_MAX = 65507  # the largest UDP payload over IPv4
_CLOSE_WAIT_S = 5.0  # how long closing waits for a file or pipe to take the queued lines


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """Row-major runs of a class-id mask: `values[i]` repeated `counts[i]` times fills `shape` (H, W)."""
    flat = np.ascontiguousarray(mask).ravel()
    if flat.size == 0:
        return {"encoding": "rle", "shape": list(mask.shape), "values": [], "counts": []}
    starts = np.flatnonzero(np.r_[True, flat[1:] != flat[:-1]])
    counts = np.diff(np.r_[starts, flat.size])
    return {"encoding": "rle", "shape": list(mask.shape), "values": flat[starts].tolist(), "counts": counts.tolist()}


def decode_rle(encoded: Mapping[str, Any]) -> np.ndarray:
    """The (H, W) uint8 mask `encode_rle` described."""
    flat = np.repeat(np.asarray(encoded["values"], np.uint8), np.asarray(encoded["counts"], np.int64))
    return flat.reshape(encoded["shape"])


def encode_png(mask: np.ndarray) -> dict[str, Any]:
    """A class-id mask as a grey 8-bit PNG, base64 text: what an image tool opens."""
    ok, data = cv2.imencode(".png", mask)
    if not ok:
        raise OutputError(f"cannot encode a {mask.shape} mask as PNG")
    return {"encoding": "png", "shape": list(mask.shape), "data": base64.b64encode(data.tobytes()).decode("ascii")}


_ENCODERS = {"rle": encode_rle, "png": encode_png}


def frame_record(
    frame: Frame,
    prediction: Prediction,
    steady: Prediction | None,
    latency_s: float,
    *,
    source: str,
    source_index: int = 0,
    mask: str | None = None,
) -> dict[str, Any]:
    """One line of the results stream (schema version 2); see docs/runtime.md#results-schema."""
    tasks = {}
    for name, result in prediction.items():
        entry = result.to_dict()
        if mask is not None and result.mask is not None:
            entry["mask"] = _ENCODERS[mask](result.mask)
        tasks[name] = entry
    captured = time.time() - (time.perf_counter() - frame.timestamp)  # the capture moment on the wall clock
    return {
        "schema": SCHEMA_VERSION,
        "source": source,
        "source_index": source_index,
        "frame": frame.index,
        "name": frame.name,
        "captured": round(captured, 6),
        "latency_ms": round(latency_s * 1e3, 3),
        "tasks": tasks,
        "steady": steady.to_dict() if steady else {},
    }


class ResultsSink(Closing):
    """Where the JSON lines go; `send` never blocks on the receiver. `dropped` counts lines not sent."""

    uri: str
    dropped = 0

    def __init__(self, uri: str, mask: str | None = None) -> None:
        if mask is not None and mask not in MASK_ENCODINGS:
            raise ConfigError(f"results mask {mask!r} is not known: expected one of {', '.join(MASK_ENCODINGS)}")
        self.uri, self.mask = uri, mask
        self.failed = False

    def send(self, record: Mapping[str, Any]) -> None:
        if not self.failed:
            self._send((jsonfile.dumps(record, separators=(",", ":")) + "\n").encode())

    def _send(self, line: bytes) -> None:
        raise NotImplementedError

    def _fail(self, why: str) -> None:
        """Said once; the run goes on without results."""
        if not self.failed:
            self.failed = True
            log.warning("results %s: %s; the run goes on without results", self.uri, why)


class _WriterThread(ResultsSink):
    """A file-like target written from a thread, so a slow disk or a full pipe only drops lines."""

    def __init__(self, uri: str, target: IO[bytes], mask: str | None, *, owned: bool) -> None:
        super().__init__(uri, mask)
        self.target, self.owned = target, owned
        self.lines: queue.Queue[bytes | None] = queue.Queue(maxsize=_QUEUE_LINES)
        self.thread = threading.Thread(target=self._write, name=f"edgemtl-results {uri}", daemon=True)
        self.thread.start()

    def _send(self, line: bytes) -> None:
        try:
            self.lines.put_nowait(line)
        except queue.Full:
            self.dropped += 1

    def _write(self) -> None:
        while (line := self.lines.get()) is not None:
            if self.failed:
                continue
            try:
                self.target.write(line)
                self.target.flush()
            except (OSError, ValueError) as exc:  # a full disk, a closed pipe, a closed file
                self._fail(getattr(exc, "strerror", None) or str(exc) or type(exc).__name__)

    def close(self) -> None:
        """Write what is queued, waiting at most `_CLOSE_WAIT_S` for a reader that stopped reading."""
        with contextlib.suppress(queue.Full):
            self.lines.put(None, timeout=_CLOSE_WAIT_S)  # after every queued line: written before close returns
        self.thread.join(_CLOSE_WAIT_S)
        if self.thread.is_alive():
            self._fail(f"its reader stopped reading; {self.lines.qsize()} lines were not written")
            return  # the blocked write still holds the target: it is left to the daemon thread
        if self.owned:
            try:
                self.target.close()
            except OSError as exc:
                self._fail(exc.strerror or str(exc))


class UdpResults(ResultsSink):
    """One datagram per line, from a non-blocking socket: a line that cannot be sent at once is dropped."""

    def __init__(self, uri: str, host: str, port: int, mask: str | None = None) -> None:
        super().__init__(uri, mask)
        try:
            family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        except (OSError, UnicodeError) as exc:
            raise OutputError(
                f"results {uri}: cannot resolve host {host!r} ({exc}): expected udp://HOST:PORT"
            ) from None
        self.address = address
        self.socket = socket.socket(family, kind, proto)
        self.socket.setblocking(False)

    def _send(self, line: bytes) -> None:
        if len(line) > _UDP_MAX:
            self.dropped += 1
            log.debug("results line of %d bytes is too large for a datagram; dropped", len(line))
            return
        try:
            self.socket.sendto(line, self.address)
        except OSError:  # the buffer is full, or the receiver's port said no (ICMP): fire and forget
            self.dropped += 1

    def close(self) -> None:
        self.socket.close()


class ZmqResults(ResultsSink):
    """A ZeroMQ PUB socket bound at tcp://HOST:PORT; subscribers that fall behind lose lines (ZeroMQ's HWM)."""

    def __init__(self, uri: str, host: str, port: int, mask: str | None = None) -> None:
        super().__init__(uri, mask)
        try:
            import zmq
        except ModuleNotFoundError:
            raise OutputError(f"results {uri} needs pyzmq: pip install 'edgemtl[zmq]'") from None
        self.zmq = zmq
        self.context = zmq.Context.instance()
        self.socket = self.context.socket(zmq.PUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        try:
            self.socket.bind(f"tcp://{host}:{port}")
        except zmq.ZMQError as exc:
            self.socket.close()
            raise OutputError(f"results {uri}: cannot bind ({exc}): choose a free port on a local address") from None

    def _send(self, line: bytes) -> None:
        try:
            self.socket.send(line.rstrip(b"\n"), self.zmq.NOBLOCK)
        except self.zmq.Again:
            self.dropped += 1

    def close(self) -> None:
        self.socket.close()


def _host_port(uri: str) -> tuple[str, int]:
    address = uri.split("://", 1)[1].rstrip("/")
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        scheme = uri.split("://", 1)[0]
        raise OutputError(
            f"results {uri!r} has no HOST:PORT: expected {scheme}://HOST:PORT, e.g. {scheme}://127.0.0.1:5600"
        )
    return host.strip("[]"), int(port)


def open_results(uri: str | Path, mask: str | None = None) -> ResultsSink:
    """A results sink from its URI (see the module's docstring); a bad URI fails here, before any work."""
    text = str(uri)
    if text == "-":
        return _WriterThread(text, sys.stdout.buffer, mask, owned=False)
    if text.startswith("udp://"):
        return UdpResults(text, *_host_port(text), mask)
    if text.startswith(("zmq://", "tcp://")):
        return ZmqResults(text, *_host_port(text), mask)
    if "://" in text:
        raise OutputError(f"results {text!r} has an unknown scheme: expected {', '.join(RESULTS_SCHEMES)}")
    path = Path(text)
    if path.is_dir():
        raise OutputError(f"results {path} is a folder: expected a file path (.jsonl) to append lines to")
    try:
        target = path.open("ab")
    except OSError as exc:
        raise OutputError(f"cannot write results {path}: {exc.strerror or exc}") from None
    return _WriterThread(text, target, mask, owned=True)
