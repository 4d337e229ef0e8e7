"""Arrays a camera loop hands back once a frame is written, so that a steady run allocates nothing.

A frame's decoded image, its resized input and its graph outputs each need a fresh buffer while frames
before it are still in flight (queued between the decode, inference and output threads). The pipeline
takes them from a `BufferPool` and gives them back after the frame's output is written; in a steady run
the same few buffers go round. A buffer is handed out again only after it was given back, never while
someone holds it, so the pool's size needs no guess about how many frames are in flight: for a stream
of one frame size it grows to that number and stays there. Frames whose size keeps changing (a folder
of photos through a dynamic frame-sized file) keep free buffers for the last few sizes only. A buffer
that is not given back (an error, a frame held elsewhere) is an ordinary array the garbage collector
frees.
"""

from __future__ import annotations

import collections
import functools
import threading
import weakref

import numpy as np

_KEEP_PER_SHAPE = 64  # free buffers kept per shape and dtype: more frames than any pipeline holds in flight
_KEEP_SHAPES = 16  # shapes whose free buffers are kept, the most recently taken: a frame's arrays, a few sizes

_Key = tuple[tuple[int, ...], np.dtype]


class BufferPool:
    """Reusable NumPy arrays by shape and dtype; `take` and `give_back` from any thread."""

    def __init__(self) -> None:
        self._free: collections.OrderedDict[_Key, list[np.ndarray]] = collections.OrderedDict()  # oldest first
        self._lock = threading.Lock()
        self._made: dict[int, weakref.ref] = {}  # id → the array this pool made (ids of freed arrays leave)
        self.allocated = 0  # arrays this pool created: in a steady run, the frames in flight, not the frames run

    def take(self, shape: tuple[int, ...], dtype: type[np.generic] | np.dtype = np.uint8) -> np.ndarray:
        """A C-contiguous array of this shape and dtype with undefined contents: a given-back one, or a new one."""
        key = (tuple(shape), np.dtype(dtype))
        with self._lock:
            free = self._free.setdefault(key, [])
            self._free.move_to_end(key)
            while len(self._free) > _KEEP_SHAPES:  # a size not seen for a while: its buffers are let go
                self._free.popitem(last=False)
            if free:
                return free.pop()
            self.allocated += 1
        array = np.empty(key[0], key[1])
        with self._lock:
            self._made[id(array)] = weakref.ref(array, functools.partial(self._forget, id(array)))
        return array

    def _forget(self, made: int, ref: weakref.ref) -> None:
        """An array of ours was freed: its id may now name another. (No lock: it can run inside `take`.)"""
        if self._made.get(made) is ref:
            del self._made[made]

    def give_back(self, *arrays: np.ndarray | None) -> None:
        """Return arrays that `take` gave out, once nothing reads them. Anything else (None, an array the
        pool did not make, such as a source's own image) is left alone: it may still be someone's."""
        with self._lock:
            for array in arrays:
                made = self._made.get(id(array)) if array is not None else None
                if made is None or made() is not array:
                    continue
                free = self._free.get((array.shape, array.dtype))
                if free is not None and len(free) < _KEEP_PER_SHAPE and all(array is not held for held in free):
                    free.append(array)
