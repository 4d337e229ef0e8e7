"""The web viewer's page lists a detection task's objects: class, colour, track id, score, held.

The page's script runs in Node with a few lines of stand-in DOM (the real browser test, tests/cli/
test_browser.py, needs Chromium); skipped where Node is not installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import edgemtl.runtime.viewer

SCRIPT = Path(edgemtl.runtime.viewer.__file__).parent / "static" / "viewer.js"

STAND_IN_DOM = """
class Node {
  constructor(tag) { this.tag = tag; this.children = []; this.className = ""; this.style = {}; this._text = ""; }
  append(...nodes) { this.children.push(...nodes); }
  replaceChildren(...nodes) { this.children = nodes; }
  set textContent(value) { this._text = String(value); this.children = []; }
  get textContent() { return this._text + this.children.map((c) => c.textContent).join(" "); }
}
const nodes = {};
globalThis.document = {
  createElement: (tag) => new Node(tag),
  createTextNode: (text) => { const n = new Node("#text"); n.textContent = text; return n; },
  getElementById: (id) => (nodes[id] ??= new Node("div")),
};
globalThis.location = { search: "", protocol: "http:", host: "localhost" };
globalThis.WebSocket = class { constructor() {} };
globalThis.setTimeout = () => 0;
"""


def run_page(probe: str) -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    code = STAND_IN_DOM + SCRIPT.read_text() + "\n" + probe
    result = subprocess.run([node, "-e", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_page_lists_each_object_with_its_track_id_and_colour():
    objects = [
        {"class": "person", "class_id": 1, "score": 0.87, "box": [1, 2, 30, 40], "track_id": 3, "held": False},
        {"class": "cone", "class_id": 0, "score": 0.5, "box": [5, 5, 9, 9], "track_id": -1, "held": False},
        {"class": "person", "class_id": 1, "score": 0.8, "box": [50, 2, 70, 40], "track_id": 4, "held": True},
    ]
    probe = f"""
const legend = {{ name: "objects", kind: "detection", classes: ["cone", "person"], colors: ["#aa0000", "#00bb00"] }};
meta = {{ tasks: [legend] }};
const box = renderResult("objects", {{ objects: {json.dumps(objects)} }});
const rows = box.children.filter((c) => c.className.startsWith("object"));
console.log(JSON.stringify({{
  header: box.children[1].textContent,
  rows: rows.map((r) => [r.className, r.children.map((c) => c.textContent).join("|"), r.children[0].style.background]),
}}));
"""
    shown = json.loads(run_page(probe))
    assert shown["header"] == "3 objects"
    assert shown["rows"] == [
        ["object", "|person|#3|0.87", "#00bb00"],
        ["object", "|cone|–|0.50", "#aa0000"],
        ["object held", "|person|#4|0.80|held", "#00bb00"],
    ]


def test_untracked_objects_show_no_id():
    probe = """
const box = renderResult("objects", { objects: [{ class: "cone", class_id: 0, score: 0.9, box: [0, 0, 1, 1] }] });
console.log(box.children[2].children.map((c) => c.textContent).join("|"));
"""
    assert run_page(probe).strip() == "|cone||0.90"


def test_a_null_value_shows_as_a_dash():
    """The server writes a NaN as null (JSON has no NaN): the page shows a dash instead of failing on the state."""
    probe = """
const box = renderResult("distance", { values: { metres: null, angle: 1.5 } });
console.log(box.children.slice(1).map((c) => c.textContent).join("|"));
"""
    assert run_page(probe).strip() == "metres: –|angle: 1.500"


def test_each_object_row_names_its_box_in_frame_pixels():
    probe = """
const box = renderResult("objects", { objects: [{ class: "cone", class_id: 0, score: 0.9, box: [1.5, 2, 30, 40.2] }] });
console.log(box.children[2].title);
"""
    assert run_page(probe).strip() == "box 1.5, 2, 30, 40.2 (x1, y1, x2, y2 in frame pixels)"
