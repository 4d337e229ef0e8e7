"""The fault table: bad inputs and faults a hostile user meets edgemtl with, each run as that user would.

Every case runs the `edgemtl` console script in a child process (so stderr is the real file descriptor 2,
OpenCV's and FFmpeg's C-level lines included) with default signal dispositions, in a folder of its own, and
holds it to one contract: exit code as listed (never 0), stderr exactly one line matching the listed
message (`…` stands for any text), no traceback, and every file that existed before byte for byte as it was.

docs/faults.md is this table, rendered: `python -m tests.cli.test_faults > docs/faults.md` writes it, and
`test_the_doc_is_the_table` fails when the two differ.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli import fault_cases_models, fault_cases_runtime, fault_cases_training  # noqa: F401 - see below
from tests.cli.fault_kit import FAULTS, Fault, Kit
from tests.helpers import popen_edgemtl, snapshot

# The case modules register their cases in FAULTS as they are imported, in the table's order.

DOC = Path(__file__).parents[2] / "docs" / "faults.md"


# --- running the table -----------------------------------------------------------------------------------


def _matches(template: str, line: str) -> bool:
    return re.fullmatch(".*".join(re.escape(part) for part in template.split("…")), line) is not None


def _environment(case: Fault) -> dict[str, str]:
    environment = dict(os.environ)
    for name, value in case.environment:
        environment.pop(name, None)
        if value is not None:
            environment[name] = value
    return environment


@pytest.fixture
def kit(request, tmp_path):
    """The case's folder, with the session's export (and checkpoint, for the cases that train or export)."""
    case: Fault = request.node.callspec.params["case"]
    model = request.getfixturevalue("detection_model" if case.uses == "detection" else "exported_model")
    checkpoint = request.getfixturevalue("trained_run").best_checkpoint if case.uses == "checkpoint" else None
    root = tmp_path / "case"
    root.mkdir()
    made = Kit(root, model, checkpoint, [])
    yield made
    for folder in reversed(made.mounts):
        subprocess.run(["umount", "-l", str(folder)], check=False)
    for folder in root.rglob("*"):  # a read-only folder of an unprivileged user: let pytest clean it up
        if folder.is_dir() and not folder.is_symlink():
            folder.chmod(0o755)


def _run(case: Fault, root: Path) -> tuple[int, str, str]:
    """The command in `root`, as a user would type it; a signal is sent once the case says it is running."""
    process = popen_edgemtl(shlex.split(case.command)[1:], cwd=root, env=_environment(case))
    try:
        if case.send is not None:
            assert case.ready is not None
            deadline = time.monotonic() + 60
            while not case.ready(root) and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert process.poll() is None, "the command ended before the signal: " + process.stderr.read()
            time.sleep(0.5)  # a few frames or steps more
            process.send_signal(case.send)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    return process.returncode, stdout, stderr


@pytest.mark.parametrize("case", FAULTS, ids=[case.id for case in FAULTS])
def test_fault(case: Fault, kit: Kit):
    case.setup(kit)
    before = snapshot(kit.root)
    code, stdout, stderr = _run(case, kit.root)
    assert "Traceback" not in stdout + stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    assert _matches(case.message, lines[0]), f"\n{lines[0]}\nis not\n{case.message}"
    assert code == case.exit_code != 0, (code, stderr)
    (kit.root / "stderr.txt").write_text(stderr)
    after = snapshot(kit.root)
    changed = [name for name, data in before.items() if after.get(name) != data]
    assert changed == [], f"files that existed before were changed or removed: {changed}"
    if case.after is not None:
        case.after(kit.root, stdout)


def test_the_table_is_large_and_its_ids_unique():
    ids = [case.id for case in FAULTS]
    assert len(ids) >= 40 and len(set(ids)) == len(ids)


def render() -> str:
    """docs/faults.md: the table, as a page."""
    lines = [
        "# Bad input and faults",
        "",
        "Every row is a case of `tests/cli/fault_cases_*.py`, which CI runs (`tests/cli/test_faults.py`): the",
        "command is run as shown in a folder holding what the row describes, through the installed `edgemtl`",
        "script. Each must print exactly the one line shown on stderr (`…` stands for any text; nothing from",
        "OpenCV, FFmpeg or onnxruntime without `-v`), exit with the code shown, print no traceback, and leave",
        "every file that existed before as it was, besides what the last column names. Cases that need a small",
        "or read-only disk mount a tmpfs, so they run as root (and are skipped, saying so, elsewhere). This page",
        "is generated from the table:",
        "`python -m tests.cli.test_faults > docs/faults.md`.",
        "",
        f"{len(FAULTS)} cases.",
        "",
        "| case | bad input or fault | command | stderr | exit | stays intact |",
        "|---|---|---|---|---|---|",
    ]
    for case in FAULTS:
        cells = [case.id, case.what, f"`{case.command}`", f"`{case.message}`", str(case.exit_code)]
        cells.append(case.intact or "every file there before")
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def test_the_doc_is_the_table():
    assert DOC.read_text() == render(), "docs/faults.md is stale: python -m tests.cli.test_faults > docs/faults.md"


if __name__ == "__main__":
    sys.stdout.write(render())
