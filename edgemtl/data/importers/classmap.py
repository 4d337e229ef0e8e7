"""The class map of an import: what each source class becomes in the dataset edgemtl trains on.

Labelling tools name classes their own way and often more finely than a robot needs ("car", "truck",
"bus" → "vehicle"), so an import takes a map instead of asking the user to rewrite the labels:

    rename   "person": "pedestrian"
    merge    "car": "vehicle", "truck": "vehicle"          several sources, one target
    drop     "tree": null  (or "-" on the command line)    the class goes; its pixels become the first
                                                            class (background), its image labels vanish
    ignore   "blur": 255   (or "255")                       its pixels become 255: unlabelled, not scored

A source class the map does not name keeps its name. A map naming a class the source does not have is
an error listing the source's classes: a typo must not silently leave a class unmapped.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgemtl.errors import ConfigError
from edgemtl.jsonfile import read_json
from edgemtl.tasks import IGNORE_PIXEL

DROP, IGNORE = "-", "255"  # the command line's words for "drop the class" and "ignore its pixels"
BACKGROUND = "background"
MAX_MAP_BYTES = 1 << 20  # 1 MiB: a map of thousands of classes takes tens of kB
_BACKGROUND_NAMES = ("background", "_background_")  # labelme's converters write `_background_` (COCO id 0)


def is_background(name: str) -> bool:
    """A class named `background` or `_background_`, in any case, is the background class of every import."""
    return str(name).strip().lower() in _BACKGROUND_NAMES


def background_first(names: list[str], add: bool) -> tuple[tuple[str, ...], list[int]]:
    """(classes, new index of each name): every background-named class becomes the one `background`, first.

    Without one, `add` puts `background` first (COCO, labelme), or the names stay as the tool listed them."""
    others = [n for n in names if not is_background(n)]
    has = len(others) < len(names)
    classes = (BACKGROUND, *others) if has or add else tuple(others)
    shift = 1 if has or add else 0
    index, seen = [], 0
    for name in names:
        if is_background(name):
            index.append(0)
        else:
            index.append(seen + shift)
            seen += 1
    return classes, index


@dataclass(frozen=True)
class ClassMap:
    """Source class name → target name, DROP or IGNORE; `where` names the map in messages."""

    entries: dict[str, str] = field(default_factory=dict)
    where: str = "--map"

    @classmethod
    def parse(cls, pairs: tuple[str, ...] = (), path: Path | None = None) -> ClassMap:
        """From a JSON file ({"car": "vehicle", "tree": null, "blur": 255}) and SRC=DST pairs, pairs last."""
        entries: dict[str, str] = {}
        where = "--map"
        if path is not None:
            where = str(path)
            entries.update(_read_map_file(Path(path)))
        for pair in pairs:
            source, sep, target = pair.partition("=")
            if not sep or not source.strip() or not target.strip():
                raise ConfigError(
                    f"class map entry {pair!r} is not SRC=DST: expected e.g. car=vehicle, tree=-, blur=255"
                )
            entries[source.strip()] = target.strip()
        return cls(entries, where)

    def apply(self, classes: tuple[str, ...], also: tuple[str, ...] = ()) -> MappedClasses:
        """The target classes, and for each source class its target id (IGNORE_PIXEL when ignored).

        `also`: the source's other class names (box classes), which the map may name too."""
        self.check_known((*classes, *also))
        targets = [self.entries.get(name, name) for name in classes]
        kept = tuple(dict.fromkeys(t for t in targets if t not in (DROP, IGNORE)))
        if not kept:
            raise ConfigError(f"class map {self.where} drops or ignores every class: expected at least one to keep")
        if targets and targets[0] == DROP:
            raise ConfigError(
                f"class map {self.where} drops {classes[0]!r}, the first class, which dropped pixels become: "
                f"ignore it ({classes[0]}={IGNORE}) or rename it instead"
            )
        ids = [IGNORE_PIXEL if t == IGNORE else 0 if t == DROP else kept.index(t) for t in targets]
        return MappedClasses(classes, kept, np.asarray(ids, dtype=np.int64), tuple(targets))

    def check_known(self, classes: tuple[str, ...]) -> None:
        """A map naming a class the source does not have is a typo, never a class silently left unmapped."""
        unknown = [name for name in self.entries if name not in classes]
        if unknown:
            listed = tuple(dict.fromkeys(classes))
            close = difflib.get_close_matches(unknown[0], listed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                f"class map {self.where} names class {unknown[0]!r}, which the source does not have: {hint}"
                f"expected some of {', '.join(listed)}"
            )

    def box_classes(self, classes: tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, str | None]]:
        """(target box classes, source name → target name or None): a dropped or ignored class's boxes go."""
        how = {name: self.entries.get(name, name) for name in classes}
        targets = {name: None if t in (DROP, IGNORE) else t for name, t in how.items()}
        kept = tuple(dict.fromkeys(t for t in targets.values() if t is not None))
        return kept, targets


@dataclass(frozen=True)
class MappedClasses:
    """A class map applied to a source's classes."""

    source: tuple[str, ...]
    target: tuple[str, ...]
    ids: np.ndarray  # (len(source),) target id per source id; IGNORE_PIXEL for ignored classes
    how: tuple[str, ...]  # per source class: its target name, DROP or IGNORE

    def mask(self, source_ids: np.ndarray) -> np.ndarray:
        """(H, W) uint8 target ids from source ids (-1 where the source itself says unlabelled)."""
        table = np.append(self.ids, IGNORE_PIXEL)  # index -1: unlabelled in the source stays unlabelled
        return table[source_ids].astype(np.uint8)

    def label_names(self, names: list[str]) -> list[str]:
        """Image-level labels named after source classes, mapped: renamed, merged, dropped or ignored ones gone."""
        out = []
        for name in names:
            target = self.how[self.source.index(name)] if name in self.source else name
            if target not in (DROP, IGNORE) and target not in out:
                out.append(target)
        return out

    def lines(self) -> list[str]:
        """What the map did, one line per source class that changed, for the import report."""
        words = {DROP: "dropped (pixels → background)", IGNORE: "ignored (pixels → 255)"}
        return [f"  {s} → {words.get(t, t)}" for s, t in zip(self.source, self.how, strict=True) if s != t]


def _read_map_file(path: Path) -> dict[str, str]:
    expected = 'expected a JSON object {"car": "vehicle", "tree": null, "blur": 255}'
    data = read_json(path, "class map", expected, error=ConfigError, max_bytes=MAX_MAP_BYTES)
    if not isinstance(data, dict):
        raise ConfigError(f'class map {path} is not a JSON object: expected {{"car": "vehicle", "tree": null}}')
    entries = {}
    for source, target in data.items():
        if target is None:
            entries[source] = DROP
        elif target == 255 or target == IGNORE:
            entries[source] = IGNORE
        elif isinstance(target, str) and target.strip():
            entries[source] = target.strip()
        else:
            raise ConfigError(
                f"class map {path} maps {source!r} to {target!r}: expected a class name, null (drop) or 255 (ignore)"
            )
    return entries
